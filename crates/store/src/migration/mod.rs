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
    let pending: Vec<String> =
        Migrator::get_pending_migrations(db.conn()).await?.iter().map(|m| m.name().to_string()).collect();
    if !pending.is_empty() {
        Migrator::up(db.conn(), None).await?;
    }
    if let Some(tx) = lock {
        tx.commit().await?;
    }
    Ok(pending)
}

pub async fn status(db: &Db) -> Result<Vec<MigrationState>, StoreError> {
    let pending: Vec<String> =
        Migrator::get_pending_migrations(db.conn()).await?.iter().map(|m| m.name().to_string()).collect();
    Ok(Migrator::migrations()
        .iter()
        .map(|m| MigrationState { name: m.name().to_string(), applied: !pending.iter().any(|p| p == m.name()) })
        .collect())
}

/// Number of applied migrations: the `schemaVersion` shown in detailed health.
pub async fn schema_version(db: &Db) -> Result<u32, StoreError> {
    let applied = Migrator::get_applied_migrations(db.conn()).await?;
    Ok(applied.len() as u32)
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
