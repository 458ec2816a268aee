//! `manchengo bench sync`: a push of 500 events (five batches of 100, each event in its own transaction with its
//! business write, audit and outcome) and a pull of 5,000 changes, through HTTP with the reference device client,
//! as a phone coming back from a day offline would. Figures, never assertions.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

const PASSWORD: &str = "Banc#Essai2026!";

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

pub async fn sync_bench(database_url: Option<String>, events: usize, changes: usize) -> Result<String, String> {
    let limits = [
        ("RATE_LIMIT_MAX", "1000000"),
        ("RATE_LIMIT_SYNC_PUSH_MAX", "1000000"),
        ("RATE_LIMIT_SYNC_PULL_MAX", "1000000"),
    ];
    let server = crate::bench::BenchServer::start(database_url, &limits).await?;
    let state = server.state.clone();
    let db = state.dbmon.db().clone();
    let now = Utc::now();
    let actor = store::audit::Actor::system("bench");
    let suffix = Uuid::now_v7().simple().to_string()[..8].to_string();
    let email = format!("livreur.{suffix}@essai.dz");

    // A driver and the client whose contact the pushed events change.
    let (driver, client) = db
        .write(|tx| {
            let (actor, email, suffix) = (actor.clone(), email.clone(), suffix.clone());
            Box::pin(async move {
                let user = store::identity::create_user(
                    &**tx,
                    store::identity::NewUser {
                        email,
                        first_name: "Banc".into(),
                        last_name: "Livreur".into(),
                        role: domain::identity::Role::Commercial,
                        password_hash: app::auth::password::hash_now(PASSWORD),
                        must_change_password: false,
                    },
                    &actor,
                    now,
                    false,
                )
                .await?;
                let (party, _) = domain::catalogue::check_party(&domain::catalogue::PartyInput {
                    raison_sociale: format!("Supérette du banc {suffix}"),
                    adresse: Some("1 rue de l'Indépendance".into()),
                    wilaya: Some("16".into()),
                    ..Default::default()
                })?;
                let terms = store::catalogue::ClientTerms {
                    client_type: "SUPERETTE".into(),
                    credit_limit: None,
                    payment_terms_days: 0,
                    default_payment_method: "ESPECES".into(),
                };
                let client = store::catalogue::save_client(&**tx, None, party, terms, None, &actor, now).await?;
                Ok::<_, store::OpError>((user, client))
            })
        })
        .await
        .map_err(|e| format!("{e:?}"))?;
    let base = format!("http://{}", server.addr);
    let phone = device::Client::login(&base, &driver.email, PASSWORD, Uuid::new_v4(), "Banc d'essai")
        .await
        .map_err(|e| e.to_string())?;

    // The push: contact changes of one client (field times, client row, audit chain, outcome and feed rows).
    let mut outbox = device::Outbox::default();
    for i in 0..events {
        outbox.record(
            "CLIENT_CONTACT_UPDATED",
            "CLIENT",
            &client.id.to_string(),
            json!({"phone": format!("0555{:06}", i % 1_000_000), "contactName": format!("Gérant {i}")}),
        );
    }
    let sent = outbox.pending.clone();
    let t = Instant::now();
    let mut batches = Vec::new();
    while !outbox.pending.is_empty() {
        let b = Instant::now();
        phone.push_once(&mut outbox).await.map_err(|e| e.to_string())?;
        batches.push(b.elapsed());
    }
    let push_total = t.elapsed();
    let applied = outbox.outcomes.iter().filter(|o| o.status == "APPLIED").count();
    batches.sort();
    let batch_median = batches[batches.len() / 2];
    // A replay of the first 100 (a phone that lost the answers): every event answers DUPLICATE, nothing is applied.
    let mut replay = device::Outbox { pending: sent.into_iter().take(100).collect(), ..Default::default() };
    let t = Instant::now();
    phone.push_once(&mut replay).await.map_err(|e| e.to_string())?;
    let replay_time = t.elapsed();
    let duplicates = replay.outcomes.iter().filter(|o| o.status == "DUPLICATE").count();

    // The pull: `changes` delivery snapshots in the driver's feed, read from the cursor before them.
    let mut feed = device::Outbox::default();
    phone.bootstrap(&mut feed).await.map_err(|e| e.to_string())?;
    let snapshot = json!({"reference": "LIV-2026-00001", "status": "PENDING", "clientName": client.raison_sociale,
        "clientAddress": client.adresse, "netAPayer": 2_367_800, "remaining": 2_367_800, "paymentMethod": "ESPECES",
        "lines": [{"lineNo": 1, "productCode": "PF-GOUDA-400", "productName": "Gouda 400 g", "quantity": 24_000},
                  {"lineNo": 2, "productCode": "PF-FONDU-800", "productName": "Fondu 800 g", "quantity": 10_000}]});
    let mut written = 0;
    while written < changes {
        let n = (changes - written).min(1_000);
        let (snapshot, me) = (snapshot.clone(), driver.id);
        db.write(|tx| {
            let snapshot = snapshot.clone();
            Box::pin(async move {
                for _ in 0..n {
                    let id = Uuid::now_v7().to_string();
                    store::sync::append(
                        &**tx,
                        "DELIVERY",
                        &id,
                        "upsert",
                        &store::sync::Audience::User(me),
                        Some(snapshot.clone()),
                        now,
                    )
                    .await?;
                }
                Ok::<_, store::StoreError>(())
            })
        })
        .await
        .map_err(|e| e.to_string())?;
        written += n;
    }
    let mut pulls = Vec::new();
    for limit in [500u32, 200] {
        let mut o = feed.clone();
        let t = Instant::now();
        let got = phone.pull_all(&mut o, limit).await.map_err(|e| e.to_string())?;
        pulls.push((limit, got.len(), t.elapsed()));
    }
    let (backend, tag) = (server.backend, server.tag());
    server.stop().await;

    Ok(format!(
        "<!-- bench:sync:{tag} -->\n## Synchronisation, {backend} — {}\n\n\
         Written by `manchengo bench sync` (release build, {} cores, {backend}), over HTTP with the reference device \
         client.\n\n\
         | What | Result |\n|---|---|\n\
         | Push of {events} events (5 batches of 100; `CLIENT_CONTACT_UPDATED`, each in its own transaction: claim, field times, client, audit, outcome and feed rows) | {} in all, {} per batch of 100 (median), {:.0} events/s — {applied} applied |\n\
         | Pull of {} changes (delivery snapshots of ~600 bytes), pages of 500 | {} |\n\
         | Replay of 100 of them (same ids): {duplicates} DUPLICATE | {} |\n\
         | Pull of {} changes, pages of 200 | {} |\n<!-- /bench:sync:{tag} -->\n",
        now.format("%Y-%m-%d"),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        ms(push_total),
        ms(batch_median),
        events as f64 / push_total.as_secs_f64(),
        pulls[0].1,
        ms(pulls[0].2),
        ms(replay_time),
        pulls[1].1,
        ms(pulls[1].2),
    ))
}
