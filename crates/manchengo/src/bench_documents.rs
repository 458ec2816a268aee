//! `manchengo bench documents`: the validation of a 40-line invoice (the checks of DOMAIN.md §10.3 in order, prices
//! re-resolved, availability, the number, the identity snapshots and the audit, in one transaction) and the printed
//! documents of §18 (data gathered from the database, then typst layout and PDF writing).

use std::time::{Duration, Instant};

use chrono::Utc;
use uuid::Uuid;

const LINES: usize = 40;

fn row(label: &str, v: Vec<Duration>) -> String {
    let (median, p95) = crate::bench::spread_ms(v);
    format!("| {label} | {median:.1} ms | {p95:.1} ms |\n")
}

pub async fn documents_bench(database_url: Option<String>, samples: usize) -> Result<String, String> {
    let server = crate::bench::BenchServer::start(database_url, &[]).await?;
    let state = server.state.clone();
    let db = state.dbmon.db().clone();
    let now = Utc::now();
    let actor = store::audit::Actor::system("bench");
    let suffix = Uuid::now_v7().simple().to_string()[..6].to_uppercase();

    // The company, one client with its identifiers, 40 PFs each with one large lot.
    let (client, pfs) = db
        .write(|tx| {
            let (actor, suffix) = (actor.clone(), suffix.clone());
            Box::pin(async move {
                let company = domain::catalogue::check_company(&domain::catalogue::CompanyInput {
                    identity: domain::catalogue::PartyInput {
                        raison_sociale: "Fromagerie du banc d'essai".into(),
                        forme_juridique: Some("SARL".into()),
                        adresse: Some("Zone d'activités, lot 1".into()),
                        wilaya: Some("19".into()),
                        commune: Some("Sétif".into()),
                        rc: Some("19 B 0999998 00/19".into()),
                        nif: Some("099919000000011".into()),
                        ai: Some("19099999911".into()),
                        nis: Some("099919000000012".into()),
                        ..Default::default()
                    },
                    capital_social: Some(1_000_000_000),
                    rib: Some("00799999000000000299".into()),
                    bank_name: Some("Banque du banc".into()),
                    invoice_footer: None,
                })?
                .0;
                store::settings::save_company(&**tx, company, &actor, now).await?;
                let (party, _) = domain::catalogue::check_party(&domain::catalogue::PartyInput {
                    raison_sociale: format!("Supérette du banc {suffix}"),
                    forme_juridique: Some("SARL".into()),
                    adresse: Some("1 rue de l'Indépendance".into()),
                    wilaya: Some("16".into()),
                    nif: Some(format!("0999160{}", &Uuid::now_v7().as_u128().to_string()[..8])),
                    rc: Some("16 B 0999101 16/00".into()),
                    ai: Some("16099999101".into()),
                    ..Default::default()
                })?;
                let terms = store::catalogue::ClientTerms {
                    client_type: "GROSSISTE".into(),
                    credit_limit: None,
                    payment_terms_days: 0,
                    default_payment_method: "ESPECES".into(),
                };
                let client = store::catalogue::save_client(&**tx, None, party, terms, None, &actor, now).await?;
                let family = format!("BANC_{suffix}");
                store::settings::save_reference(
                    &**tx,
                    store::settings::RefKind::Family,
                    true,
                    &family,
                    "Banc d'essai",
                    true,
                    &actor,
                    now,
                )
                .await?;
                let mut pfs = Vec::new();
                for i in 0..LINES {
                    let f = domain::catalogue::check_pf(&domain::catalogue::PfInput {
                        code: format!("PF-B{suffix}-{i:02}"),
                        name: format!("Fromage du banc n° {}", i + 1),
                        base_unit: "U".into(),
                        weight_g: Some(400),
                        packaging_type: "SAC_THERMO".into(),
                        storage_type: "REFRIGERE".into(),
                        shelf_life_days: 90,
                        list_price_ht: 50_000 + 1_000 * i as i64,
                        tva_rate: Some(1900),
                        min_stock: Some(0),
                        family: Some(domain::catalogue::RefChoice {
                            code: family.clone(),
                            exists: true,
                            active: true,
                            kept: false,
                        }),
                        brand: None,
                    })?;
                    let p = store::catalogue::save_pf(&**tx, None, f, &actor, now).await?;
                    store::stock::create_lot(
                        &**tx,
                        store::stock::NewLot {
                            number: format!("LB{suffix}-{i:02}"),
                            product_id: p.id,
                            supplier_lot_number: None,
                            lot_origin: "PRODUCTION",
                            quantity: 1_000_000_000,
                            unit_cost: 30_000,
                            dlc: Some(domain::stock::today_algiers(now) + chrono::Duration::days(60)),
                            manufacture_date: Some(domain::stock::today_algiers(now)),
                            status: domain::stock::LotStatus::Available,
                        },
                        &store::stock::Source {
                            origin: "PRODUCTION_IN",
                            source_type: None,
                            source_id: None,
                            reference: None,
                        },
                        format!("BANC:{suffix}:{i}"),
                        &store::stock::Mover { user_id: None, device_id: None, ip: None },
                        now,
                    )
                    .await?;
                    pfs.push(p);
                }
                Ok::<_, store::OpError>((client, pfs))
            })
        })
        .await
        .map_err(|e| format!("{e:?}"))?;

    // 1. Validation of 40-line invoices (the draft is written first, untimed).
    let mut validations = Vec::new();
    let mut references = Vec::new();
    for n in 0..samples {
        let lines = pfs
            .iter()
            .enumerate()
            .map(|(i, p)| store::sales::NewLine {
                product: p.clone(),
                quantity: ((i + n) % 20 + 1) as i64 * 1_000,
                unit_price: None,
                price_reason: None,
                discount: 0,
                rate_bp: None,
            })
            .collect();
        let new = store::sales::NewInvoice { client: client.clone(), method: None, notes: None, lines };
        let draft = db
            .write(|tx| {
                let (new, actor) = (new.clone(), actor.clone());
                Box::pin(async move { store::sales::create_draft(&**tx, new, &actor, now).await })
            })
            .await
            .map_err(|e| format!("{e:?}"))?;
        let key = draft.id.to_string();
        let t = Instant::now();
        let invoice = db
            .write(|tx| {
                let (key, actor) = (key.clone(), actor.clone());
                Box::pin(async move { store::sales::validate(&**tx, &key, None, true, &actor, now).await })
            })
            .await
            .map_err(|e| format!("{e:?}"))?;
        validations.push(t.elapsed());
        references.push(invoice.reference.unwrap_or_default());
    }

    // 2. One delivery note of the 40 lines, validated (lots and DLC printed per line).
    let bl = db
        .write(|tx| {
            let (key, actor) = (references[0].clone(), actor.clone());
            Box::pin(async move {
                let (bl, _) = store::delivery::create(&**tx, &key, None, Default::default(), &actor, now).await?;
                let v = store::delivery::Validation {
                    mode: domain::delivery::ValidationMode::Manuel,
                    note: Some("Banc d'essai".into()),
                    command_id: None,
                };
                store::delivery::validate(&**tx, &bl.reference, v, &actor, now).await?;
                Ok::<_, store::OpError>(bl.reference)
            })
        })
        .await
        .map_err(|e| format!("{e:?}"))?;

    // 3. The documents: the first render loads the engine and the fonts; then gathering and rendering apart.
    let t = Instant::now();
    let first = app::print::invoice(&state, &references[0]).await.map_err(|e| e.message)?;
    let first_pdf = app::print::render_document(first).await.map_err(|e| e.message)?;
    let cold = t.elapsed();
    let (mut gather, mut render, mut bl_render, mut label_render) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in references.iter().cycle().take(samples.max(20)) {
        let t = Instant::now();
        let d = app::print::invoice(&state, r).await.map_err(|e| e.message)?;
        gather.push(t.elapsed());
        let t = Instant::now();
        app::print::render_document(d).await.map_err(|e| e.message)?;
        render.push(t.elapsed());
    }
    let mut bl_size = 0;
    for i in 0..samples.max(20) {
        let d = app::print::delivery_note(&state, &bl).await.map_err(|e| e.message)?;
        let t = Instant::now();
        bl_size = app::print::render_document(d).await.map_err(|e| e.message)?.len();
        bl_render.push(t.elapsed());
        let l = app::print::lot_labels(&state, &format!("LB{suffix}-{:02}", i % LINES)).await.map_err(|e| e.message)?;
        let t = Instant::now();
        let response = app::print::answer_labels(Ok(l)).await;
        label_render.push(t.elapsed());
        if !response.status().is_success() {
            return Err(format!("étiquette : HTTP {}", response.status()));
        }
    }
    let (backend, tag) = (server.backend, server.tag());
    server.stop().await;

    let date = Utc::now().format("%Y-%m-%d");
    let samples_n = validations.len();
    Ok(format!(
        "<!-- bench:documents:{tag} -->\n## Invoices and printed documents, {backend} — {date}\n\nWritten by `manchengo \
         bench documents` (release build, 2 cores). {samples_n} invoices of {LINES} lines (40 PFs, each with its own \
         lot); one delivery note of the {LINES} lines, validated. Rendering = typst layout and PDF writing on the \
         blocking pool, fonts embedded.\n\n| Step | Median | 95th percentile |\n|---|---|---|\n{}{}{}{}{}\nFirst \
         render after start (typst engine, templates and fonts loaded once): {:.0} ms. The {LINES}-line invoice PDF \
         weighs {} KiB, the delivery note {} KiB.\n<!-- /bench:documents:{tag} -->\n",
        row(
            &format!("Validation of a {LINES}-line invoice (checks, prices, stock, number, snapshots, audit)"),
            validations
        ),
        row("Invoice data gathered for print (invoice, lines, products, snapshots)", gather),
        row(&format!("Invoice PDF rendered ({LINES} lines)"), render),
        row(&format!("Delivery-note PDF rendered ({LINES} lines with lots, QR)"), bl_render),
        row("Lot label PDF rendered (100 × 50 mm, QR)", label_render),
        cold.as_secs_f64() * 1000.0,
        first_pdf.len() / 1024,
        bl_size / 1024,
    ))
}
