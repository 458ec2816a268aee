//! Schema and storage primitives on both backends.

use std::collections::BTreeMap;

use crate::support::{Kind, TestDb, on_both};

/// PLATFORM.md §11.2: both schemas built from empty are equivalent, and equal to the committed snapshot.
#[tokio::test]
async fn both_schemas_built_from_empty_are_equivalent_and_match_the_snapshot() {
    let mut snapshots = BTreeMap::new();
    for kind in [Kind::Sqlite, Kind::Postgres] {
        let Some(t) = TestDb::new(kind).await else { continue };
        let db = t.migrated().await;
        snapshots.insert(format!("{kind:?}"), store::schema::introspect(&db).await.unwrap());
    }
    let sqlite = &snapshots["Sqlite"];
    assert!(sqlite.tables.contains_key("job_leases"), "{:?}", sqlite.tables.keys());
    if let Some(pg) = snapshots.get("Postgres") {
        assert_eq!(sqlite.portable(), pg.portable(), "SQLite and PostgreSQL schemas differ");
    }
    // The committed snapshot is PostgreSQL's (it tells `bigint` from `integer`); SQLite must match its portable form.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema/snapshot.json");
    if let Some(pg) = snapshots.get("Postgres") {
        let current = serde_json::to_string_pretty(pg).unwrap() + "\n";
        if std::env::var("UPDATE_SNAPSHOT").is_ok() {
            std::fs::write(path, &current).unwrap();
        }
        let committed =
            std::fs::read_to_string(path).expect("schema/snapshot.json is committed (UPDATE_SNAPSHOT=1 writes it)");
        assert_eq!(committed, current, "schema changed: review it, then run the tests with UPDATE_SNAPSHOT=1");
    }
    let committed: store::schema::Snapshot =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("readable snapshot");
    assert_eq!(committed.portable(), sqlite.portable(), "SQLite schema differs from the committed snapshot");
}

/// PLATFORM.md §11.3: the schema of every recorded release is still readable by its binary — the current schema only
/// expanded it (no table or column dropped, no type changed, no NOT NULL added). A release records its schema with
/// `cp schema/snapshot.json schema/releases/<version>.json`.
#[test]
fn the_schema_only_expands_over_the_recorded_releases() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema");
    let current: store::schema::Snapshot =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/snapshot.json")).unwrap()).unwrap();
    let mut releases = 0;
    for entry in std::fs::read_dir(format!("{dir}/releases")).unwrap() {
        let path = entry.unwrap().path();
        let release: store::schema::Snapshot = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let changes = store::schema::contract_changes(&release, &current);
        assert!(changes.is_empty(), "{} cannot run on this schema: {changes:?}", path.display());
        releases += 1;
    }
    assert!(releases >= 1);
}

#[tokio::test]
async fn migrating_twice_applies_nothing_the_second_time() {
    on_both(|t| async move {
        let db = t.open().await;
        let first = store::migration::migrate(&db).await.unwrap();
        assert_eq!(
            first,
            vec![
                "m20261127_000001_platform",
                "m20261127_000002_identity",
                "m20261128_000003_stock",
                "m20261128_000004_receptions",
                "m20261128_000005_losses_alerts",
                "m20261128_000006_inventory_counts",
                "m20261128_000007_supplier_block",
                "m20261128_000008_idempotency",
                "m20261128_000009_backup_runs",
                "m20261128_000010_purchase_orders",
                "m20261128_000011_production",
                "m20261128_000012_alert_postpone",
                "m20261128_000013_sales",
                "m20261204_000014_demo_flag",
                "m20261204_000015_company_logo",
                "m20261204_000016_sync_events",
                "m20261205_000017_sync_feed"
            ]
        );
        assert!(store::migration::migrate(&db).await.unwrap().is_empty());
        assert_eq!(store::migration::schema_version(&db).await.unwrap(), 17);
        let status = store::migration::status(&db).await.unwrap();
        assert!(status.iter().all(|m| m.applied));
    })
    .await;
}

#[tokio::test]
async fn sqlite_connections_carry_the_durability_pragmas() {
    use sea_orm::{ConnectionTrait, Statement};
    let t = TestDb::new(Kind::Sqlite).await.unwrap();
    let db = t.migrated().await;
    for (pragma, expected) in
        [("journal_mode", "wal"), ("synchronous", "2"), ("foreign_keys", "1"), ("busy_timeout", "5000")]
    {
        // Several connections: every one of the pool must have them.
        for _ in 0..3 {
            let row = db
                .conn()
                .query_one_raw(Statement::from_string(db.sea_backend(), format!("PRAGMA {pragma}")))
                .await
                .unwrap()
                .unwrap();
            let v: String = row
                .try_get_by_index::<String>(0)
                .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
                .unwrap();
            assert_eq!(v, expected, "PRAGMA {pragma}");
        }
    }
}

#[tokio::test]
async fn a_generated_secret_is_created_once_and_shared() {
    on_both(|t| async move {
        let db = t.migrated().await;
        let (a, b) = tokio::join!(
            store::secrets::get_or_create(&db, "JWT_SECRET"),
            store::secrets::get_or_create(&db, "JWT_SECRET")
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a, b, "two instances starting together agree on one secret");
        assert_eq!(a.len(), 64, "32 random bytes in hex");
        let again = store::secrets::get_or_create(&db, "JWT_SECRET").await.unwrap();
        assert_eq!(again, a);
        let qr = store::secrets::get_or_create(&db, "QR_SECRET").await.unwrap();
        assert_ne!(qr, a, "each secret is its own");
    })
    .await;
}

#[tokio::test]
async fn a_lease_is_held_by_one_instance_and_a_slot_runs_once() {
    on_both(|t| async move {
        let db = t.migrated().await;
        let now = chrono::Utc::now();
        let ttl = chrono::Duration::seconds(60);
        store::jobs::register(&db, "nightly", now).await.unwrap();
        let (a, b) = tokio::join!(
            store::jobs::try_acquire(&db, "nightly", "backend", now, ttl, Some("2025-03-15")),
            store::jobs::try_acquire(&db, "nightly", "web", now, ttl, Some("2025-03-15")),
        );
        assert!(a.unwrap() ^ b.unwrap(), "exactly one instance takes the lease");
        let winner = if store::jobs::list(&db).await.unwrap()[0].holder.as_deref() == Some("backend") {
            "backend"
        } else {
            "web"
        };
        let outcome = store::jobs::RunOutcome {
            status: "ok",
            error: None,
            run_key: Some("2025-03-15".into()),
            next_run_at: now + chrono::Duration::days(1),
        };
        store::jobs::finish(&db, "nightly", winner, now, &outcome).await.unwrap();
        // The same slot never runs twice, even once the lease is free.
        assert!(!store::jobs::try_acquire(&db, "nightly", "backend", now, ttl, Some("2025-03-15")).await.unwrap());
        assert!(store::jobs::try_acquire(&db, "nightly", "backend", now, ttl, Some("2025-03-16")).await.unwrap());
        // A dead holder's lease is taken over once expired.
        let later = now + chrono::Duration::seconds(61);
        assert!(!store::jobs::try_acquire(&db, "nightly", "web", now, ttl, Some("2025-03-16")).await.unwrap());
        assert!(store::jobs::try_acquire(&db, "nightly", "web", later, ttl, Some("2025-03-16")).await.unwrap());
        let row = &store::jobs::list(&db).await.unwrap()[0];
        assert_eq!(row.holder.as_deref(), Some("web"));
        assert_eq!(row.last_status.as_deref(), Some("ok"));
        assert_eq!(row.last_run_key.as_deref(), Some("2025-03-15"));
    })
    .await;
}

#[tokio::test]
async fn the_status_check_constraint_refuses_unknown_words() {
    use sea_orm::{ConnectionTrait, Statement};
    on_both(|t| async move {
        let db = t.migrated().await;
        let res = db
            .conn()
            .execute_raw(Statement::from_string(
                db.sea_backend(),
                "INSERT INTO job_leases (name, last_status) VALUES ('x', 'perhaps')".to_string(),
            ))
            .await;
        assert!(res.is_err(), "{:?}: last_status accepts only ok/error/skipped", t.kind);
    })
    .await;
}

/// `Db::write`: a transient conflict replays the whole operation in a fresh transaction (the first attempt's write is
/// rolled back, so nothing is written twice); a conflict that persists surfaces after 3 retries; any other error rolls
/// back at once.
#[tokio::test]
async fn write_retries_transient_conflicts_and_never_half_writes() {
    use std::sync::atomic::{AtomicU32, Ordering};

    use sea_orm::{ActiveValue::Set, EntityTrait, PaginatorTrait};
    use store::StoreError;
    use store::secrets::entity as secrets;

    async fn insert(tx: &store::WriteTx, name: &str) -> Result<(), StoreError> {
        secrets::Entity::insert(secrets::ActiveModel {
            name: Set(name.to_string()),
            value: Set("v".into()),
            created_at: Set(chrono::Utc::now()),
        })
        .exec(&**tx)
        .await?;
        Ok(())
    }

    on_both(|t| async move {
        let db = t.migrated().await;
        let attempts = AtomicU32::new(0);
        let out: Result<u32, StoreError> = db
            .write(|tx| {
                let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                Box::pin(async move {
                    // The same primary key each time: a second insert would fail if the first had survived.
                    insert(tx, "retry").await?;
                    if n < 3 { Err(StoreError::Conflict("40001 could not serialize access".into())) } else { Ok(n) }
                })
            })
            .await;
        assert_eq!(out.unwrap(), 3, "{:?}", t.kind);

        let attempts = AtomicU32::new(0);
        let out: Result<(), StoreError> = db
            .write(|tx| {
                attempts.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    insert(tx, "toujours").await?;
                    Err(StoreError::Conflict("deadlock detected".into()))
                })
            })
            .await;
        assert!(matches!(out, Err(StoreError::Conflict(_))));
        assert_eq!(attempts.load(Ordering::SeqCst), 4, "1 attempt + 3 retries");

        let attempts = AtomicU32::new(0);
        let out: Result<(), StoreError> = db
            .write(|tx| {
                attempts.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    insert(tx, "refus").await?;
                    Err(StoreError::Other("règle métier".into()))
                })
            })
            .await;
        assert!(matches!(out, Err(StoreError::Other(_))));
        assert_eq!(attempts.load(Ordering::SeqCst), 1, "no retry for a non-transient error");

        assert_eq!(secrets::Entity::find().count(db.conn()).await.unwrap(), 1, "only the committed row exists");
    })
    .await;
}

/// No built-in secret: a server started without `JWT_SECRET`/`QR_SECRET` generates them once in the database, and a
/// configured one is never written there.
#[tokio::test]
async fn the_server_generates_missing_secrets_once_and_keeps_configured_ones_out_of_the_database() {
    use sea_orm::EntityTrait;
    use store::secrets::entity as secrets;

    on_both(|t| async move {
        let configured = "q8Jf0c1VbX9mN2pL7rT4sW6yZ3aE5dG8hK1";
        let srv = crate::support::TestServer::start(&t, &[("JWT_SECRET", configured)]).await;
        let loaded = srv.state.secrets.get().cloned().expect("secrets loaded before ready");
        assert_eq!(loaded.jwt, configured);
        srv.stop().await;
        let db = t.open().await;
        let rows = secrets::Entity::find().all(db.conn()).await.unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        // No user yet: the first-run token waits next to the generated QR key.
        assert_eq!(names, vec!["QR_SECRET", "SETUP_TOKEN"], "{:?}", t.kind);
        assert_eq!(rows[0].value, loaded.qr);

        // A restart without configuration generates the JWT key once and keeps the QR key.
        let srv = crate::support::TestServer::start(&t, &[]).await;
        let again = srv.state.secrets.get().cloned().unwrap();
        assert_eq!(again.qr, loaded.qr, "the QR key survives restarts (printed QR codes stay valid)");
        assert_eq!(again.jwt.len(), 64);
        srv.stop().await;
    })
    .await;
}
