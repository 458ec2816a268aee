//! Sync events and the operators' retry on both backends (PLATFORM.md §7.3, runbook INC-005): the runbook's reset
//! `UPDATE sync_events SET status = 'PENDING' WHERE status = 'FAILED' …` is a complete retry (the trigger clears the
//! attempts, the due time and the failure class), and `manchengo sync list|retry` does the same from the CLI.

use chrono::{Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::support::{Kind, on_both};

/// A user and a registered device, through the store.
async fn device(db: &store::Db) -> (Uuid, Uuid) {
    let actor = store::audit::Actor::system("test");
    let now = Utc::now();
    db.write(|tx| {
        let actor = actor.clone();
        Box::pin(async move {
            let user = store::identity::create_user(
                &**tx,
                store::identity::NewUser {
                    email: format!("karim.{}@fromagerie.dz", Uuid::now_v7().simple()),
                    first_name: "Karim".into(),
                    last_name: "Livreur".into(),
                    role: domain::identity::Role::Commercial,
                    password_hash: "x".into(),
                    must_change_password: false,
                },
                &actor,
                now,
                false,
            )
            .await?;
            let info = store::identity::DeviceInfo {
                id: Uuid::now_v7(),
                name: "Téléphone de Karim".into(),
                platform: "android".into(),
                app_version: "1.0.0".into(),
            };
            let (d, _) = store::identity::register_device(&**tx, user.id, info, &actor, now).await?;
            Ok::<_, store::OpError>((user.id, d.id))
        })
    })
    .await
    .unwrap()
}

/// An event received (PENDING) then failed with `code`, created `age` ago.
async fn failed(db: &store::Db, user: Uuid, device: Uuid, age: Duration, code: &str) -> store::sync::Event {
    let r = store::sync::Received {
        client_event_id: Uuid::now_v7(),
        device_id: device,
        user_id: user,
        entity_type: "PAYMENT".into(),
        entity_id: Uuid::now_v7().to_string(),
        action: "PAYMENT_RECORDED".into(),
        payload: json!({"amount": 150_000, "method": "ESPECES", "note": "réglé"}),
        occurred_at: Utc::now() - age,
        batch_id: Uuid::now_v7(),
        batch_index: 0,
    };
    let code = code.to_string();
    db.write(|tx| {
        let (r, code) = (r.clone(), code.clone());
        Box::pin(async move {
            let e = store::sync::receive(&**tx, r, Utc::now() - age).await?;
            store::sync::fail(&**tx, e.id, &code, "Montant supérieur au reste à payer.", "business", 3).await?;
            Ok::<_, store::OpError>(e)
        })
    })
    .await
    .unwrap()
}

async fn status_of(db: &store::Db, id: Uuid) -> store::sync::Event {
    store::sync::list(db.conn(), None, None).await.unwrap().into_iter().find(|e| e.id == id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_event_reset_by_the_runbook_sql_or_the_cli_is_requeued_whole() {
    on_both(|t| async move {
        let db = t.migrated().await;
        let (user, device) = device(&db).await;
        let recent = failed(&db, user, device, Duration::hours(2), "MONTANT_SUPERIEUR_RESTANT").await;
        let old = failed(&db, user, device, Duration::hours(30), "MONTANT_SUPERIEUR_RESTANT").await;
        assert_eq!(recent.payload, r#"{"amount":150000,"method":"ESPECES","note":"réglé"}"#, "canonical text");
        assert_eq!(recent.payload_hash, domain::sync::checksum(&json!({"amount": 150000, "method": "ESPECES", "note": "réglé"})));
        assert_eq!(old.receipt_seq, recent.receipt_seq + 1, "numbered in arrival order");
        let e = status_of(&db, recent.id).await;
        assert_eq!((e.status.as_str(), e.attempts, e.failure_class.as_deref()), ("FAILED", 3, Some("business")));

        // The runbook's reset, verbatim on PostgreSQL (SQLite has no INTERVAL: the CLI is its way, below).
        use sea_orm::ConnectionTrait;
        if t.kind == Kind::Postgres {
            let sql = "UPDATE sync_events SET status = 'PENDING' WHERE status = 'FAILED' AND created_at > NOW() - INTERVAL '24 hours';";
            let r = db.conn().execute_unprepared(sql).await.unwrap();
            assert_eq!(r.rows_affected(), 1, "the event of 30 hours ago stays FAILED");
        } else {
            assert_eq!(store::sync::retry_failed(db.conn(), Utc::now() - Duration::hours(24)).await.unwrap(), 1);
        }
        let e = status_of(&db, recent.id).await;
        assert_eq!(
            (e.status.as_str(), e.attempts, e.failure_class.as_deref(), e.next_attempt_at),
            ("PENDING", 0, None, None),
            "the trigger makes it due now with a fresh count"
        );
        assert_eq!(e.error_code.as_deref(), Some("MONTANT_SUPERIEUR_RESTANT"), "kept until the next attempt");
        assert_eq!(status_of(&db, old.id).await.status, "FAILED");
        // A PENDING event is not retried again; an unknown one is not found.
        let again = db.write(|tx| Box::pin(async move { store::sync::retry(&**tx, recent.id).await })).await;
        assert!(matches!(again, Err(store::OpError::Rejected(r)) if r.code == "TRANSITION_INVALIDE"));
        db.close().await;

        // The CLI: list the failed ones, then requeue the old one by its client id, and all of the last 48 h.
        let cli = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_manchengo"))
                .arg("sync")
                .args(args)
                .env("DATABASE_URL", &t.url)
                .env("DATA_DIR", t.dir.path())
                .output()
                .unwrap()
        };
        let out = cli(&["list", "--status", "FAILED"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.starts_with("id\tclient_event_id\tdevice\tuser\taction\tentity\tstatus\tattempts\terror_code\tcreated_at\n"));
        assert!(text.contains(&old.id.to_string()) && !text.contains(&recent.id.to_string()), "{text}");
        assert!(text.contains("PAYMENT_RECORDED") && text.ends_with("1 événement(s)\n"), "{text}");
        let out = cli(&["retry", &old.client_event_id.to_string()]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1 événement(s) remis en file\n");
        let out = cli(&["retry", &old.client_event_id.to_string()]);
        assert_eq!(out.status.code(), Some(1), "no longer FAILED");
        assert!(String::from_utf8_lossy(&out.stderr).contains("Transition impossible de PENDING vers PENDING."));
        let out = cli(&["retry", "--all-failed", "--since", "48h"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "0 événement(s) remis en file\n");
        let out = cli(&["retry", "--all-failed", "--since", "hier"]);
        assert_eq!(out.status.code(), Some(2));
        let db = t.open().await;
        let e = status_of(&db, old.id).await;
        assert_eq!((e.status.as_str(), e.attempts), ("PENDING", 0));
        db.close().await;
    })
    .await;
}
