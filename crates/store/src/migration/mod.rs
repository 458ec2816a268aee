//! Forward-only migrations (PLATFORM.md §11.2), one file per migration, embedded in the binary.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::prelude::*;

use crate::db::Db;
use crate::error::StoreError;

mod m20261127_000001_platform;
mod m20261127_000002_identity;
mod m20261128_000003_stock;
mod m20261128_000004_receptions;
mod m20261128_000005_losses_alerts;
mod m20261128_000006_inventory_counts;
mod m20261128_000007_supplier_block;
mod m20261128_000008_idempotency;
mod m20261128_000009_backup_runs;
mod m20261128_000010_purchase_orders;
mod m20261128_000011_production;
mod m20261128_000012_alert_postpone;
mod m20261128_000013_sales;
mod m20261204_000014_demo_flag;
mod m20261204_000015_company_logo;
mod m20261204_000016_sync_events;
mod m20261205_000017_sync_feed;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_platform::Migration),
            Box::new(m20261127_000002_identity::Migration),
            Box::new(m20261128_000003_stock::Migration),
            Box::new(m20261128_000004_receptions::Migration),
            Box::new(m20261128_000005_losses_alerts::Migration),
            Box::new(m20261128_000006_inventory_counts::Migration),
            Box::new(m20261128_000007_supplier_block::Migration),
            Box::new(m20261128_000008_idempotency::Migration),
            Box::new(m20261128_000009_backup_runs::Migration),
            Box::new(m20261128_000010_purchase_orders::Migration),
            Box::new(m20261128_000011_production::Migration),
            Box::new(m20261128_000012_alert_postpone::Migration),
            Box::new(m20261128_000013_sales::Migration),
            Box::new(m20261204_000014_demo_flag::Migration),
            Box::new(m20261204_000015_company_logo::Migration),
            Box::new(m20261204_000016_sync_events::Migration),
            Box::new(m20261205_000017_sync_feed::Migration),
        ]
    }
}

/// Arbitrary constant naming the migration advisory lock on PostgreSQL.
const MIGRATION_LOCK_KEY: i64 = 0x4d43_4d49_4752; // "MCMIGR"

/// One migration's state for `manchengo migrate --status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub name: String,
    pub applied: bool,
}

/// Applies the pending migrations under the migration lock and returns their names. Each migration runs in its own
/// transaction, so a failure leaves the schema at the last complete migration.
pub async fn migrate(db: &Db) -> Result<Vec<String>, StoreError> {
    // The lock: a PostgreSQL transaction-scoped advisory lock held open on one connection while the migrator works on
    // others; on SQLite the single writer is enough (and `serve` holds the data-directory lock).
    let lock = match db.sea_backend() {
        DbBackend::Postgres => {
            let tx = db.begin_write().await?;
            tx.execute_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"),
            ))
            .await?;
            Some(tx)
        }
        _ => None,
    };
    let pending = pending_names(db).await?;
    if !pending.is_empty() {
        Migrator::up(db.conn(), None).await?;
    }
    if let Some(tx) = lock {
        tx.commit().await?;
    }
    Ok(pending)
}

/// The names recorded in SeaORM's `seaql_migrations` (empty before the first migration).
async fn applied_names(db: &Db) -> Result<Vec<String>, StoreError> {
    let rows = db
        .conn()
        .query_all_raw(Statement::from_string(
            db.sea_backend(),
            "SELECT version FROM seaql_migrations ORDER BY version",
        ))
        .await;
    match rows {
        Ok(rows) => Ok(rows.iter().filter_map(|r| r.try_get::<String>("", "version").ok()).collect()),
        // No table yet: nothing applied.
        Err(_) => Ok(Vec::new()),
    }
}

/// Our migrations not applied yet. Migrations applied by a **newer** binary and unknown to this one are allowed
/// (PLATFORM.md §11.3: a rollback runs release N−1 on release N's expanded schema); `schema_meta` is what refuses a
/// binary that is too old. Ours must then all be applied: a newer schema with a gap in ours is refused.
async fn pending_names(db: &Db) -> Result<Vec<String>, StoreError> {
    let applied = applied_names(db).await?;
    let ours: Vec<String> = Migrator::migrations().iter().map(|m| m.name().to_string()).collect();
    let pending: Vec<String> = ours.iter().filter(|n| !applied.contains(n)).cloned().collect();
    let newer: Vec<&String> = applied.iter().filter(|a| !ours.contains(a)).collect();
    if !newer.is_empty() {
        if !pending.is_empty() {
            return Err(StoreError::Other(format!(
                "schéma plus récent que ce binaire ({}) mais sans ses migrations {}",
                newer.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                pending.join(", ")
            )));
        }
        tracing::warn!(newer = ?newer, "schema migrated by a newer release: running on it (expand/contract rule)");
    }
    Ok(pending)
}

pub async fn status(db: &Db) -> Result<Vec<MigrationState>, StoreError> {
    let pending = pending_names(db).await?;
    Ok(Migrator::migrations()
        .iter()
        .map(|m| MigrationState { name: m.name().to_string(), applied: !pending.iter().any(|p| p == m.name()) })
        .collect())
}

/// Number of applied migrations: the `schemaVersion` shown in detailed health.
pub async fn schema_version(db: &Db) -> Result<u32, StoreError> {
    Ok(applied_names(db).await?.len() as u32)
}

/// The oldest binary version that may run on this schema (`schema_meta`, created by the platform migration).
pub async fn min_reader_version(db: &Db) -> Result<Option<String>, StoreError> {
    let row = db
        .conn()
        .query_one_raw(Statement::from_string(
            db.sea_backend(),
            "SELECT min_reader_version FROM schema_meta WHERE id = 1",
        ))
        .await;
    match row {
        Ok(r) => Ok(r.and_then(|r| r.try_get::<String>("", "min_reader_version").ok())),
        // A database not migrated yet: nothing forbids any binary.
        Err(_) => Ok(None),
    }
}
