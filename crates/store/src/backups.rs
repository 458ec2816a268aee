//! Backup bookkeeping and the embedded database's own copy (PLATFORM.md §12.1): `VACUUM INTO` gives a
//! transactionally consistent copy of a live SQLite database; `PRAGMA integrity_check` verifies it.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Statement};
use uuid::Uuid;

use crate::error::StoreError;

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "backup_runs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// BACKUP or RESTORE_TEST.
        pub kind: String,
        pub started_at: ChronoDateTimeUtc,
        pub finished_at: ChronoDateTimeUtc,
        pub file: Option<String>,
        pub size_bytes: Option<i64>,
        pub sha256: Option<String>,
        /// ok or failed.
        pub status: String,
        pub verified: bool,
        pub label: Option<String>,
        pub host: Option<String>,
        pub error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type Run = entity::Model;

/// Records a run; a transient lock (a server writing to the same SQLite file) is retried, so a backup or restore
/// test is not lost to it.
pub async fn record(db: &crate::Db, run: Run) -> Result<(), StoreError> {
    db.write(|tx| {
        let run = run.clone();
        Box::pin(async move {
            entity::Entity::insert(entity::ActiveModel {
                id: Set(run.id),
                kind: Set(run.kind),
                started_at: Set(run.started_at),
                finished_at: Set(run.finished_at),
                file: Set(run.file),
                size_bytes: Set(run.size_bytes),
                sha256: Set(run.sha256),
                status: Set(run.status),
                verified: Set(run.verified),
                label: Set(run.label),
                host: Set(run.host),
                error: Set(run.error),
            })
            .exec_without_returning(&**tx)
            .await?;
            Ok::<_, StoreError>(())
        })
    })
    .await
}

/// The newest successful run of `kind`.
pub async fn last_ok(db: &crate::Db, kind: &str) -> Result<Option<Run>, StoreError> {
    Ok(entity::Entity::find()
        .filter(entity::Column::Kind.eq(kind))
        .filter(entity::Column::Status.eq("ok"))
        .order_by_desc(entity::Column::FinishedAt)
        .one(db.conn())
        .await?)
}

/// The newest run of `kind`, whatever its outcome.
pub async fn last(db: &crate::Db, kind: &str) -> Result<Option<Run>, StoreError> {
    Ok(entity::Entity::find()
        .filter(entity::Column::Kind.eq(kind))
        .order_by_desc(entity::Column::FinishedAt)
        .one(db.conn())
        .await?)
}

pub fn new_run(kind: &str, started_at: DateTime<Utc>) -> Run {
    Run {
        id: Uuid::now_v7(),
        kind: kind.into(),
        started_at,
        finished_at: started_at,
        file: None,
        size_bytes: None,
        sha256: None,
        status: "failed".into(),
        verified: false,
        label: None,
        host: None,
        error: None,
    }
}

/// `VACUUM INTO` the live embedded database: a consistent copy while the server keeps writing.
pub async fn sqlite_copy(db: &crate::Db, to: &std::path::Path) -> Result<(), StoreError> {
    let target = to.to_string_lossy().replace('\'', "''");
    db.conn().execute_raw(Statement::from_string(db.sea_backend(), format!("VACUUM INTO '{target}'"))).await?;
    Ok(())
}

/// `PRAGMA integrity_check` on a SQLite file, opened read-only: `Ok(())` when it answers `ok`.
pub async fn sqlite_verify(path: &std::path::Path) -> Result<(), String> {
    let url = format!("sqlite://{}?mode=ro", path.display());
    let conn = sea_orm::Database::connect(&url).await.map_err(|e| format!("copie illisible : {e}"))?;
    let row = conn
        .query_one_raw(Statement::from_string(sea_orm::DbBackend::Sqlite, "PRAGMA integrity_check"))
        .await
        .map_err(|e| format!("vérification impossible : {e}"))?;
    let verdict: String = row.and_then(|r| r.try_get_by_index(0).ok()).unwrap_or_default();
    let _ = conn.close().await;
    if verdict == "ok" { Ok(()) } else { Err(format!("contrôle d'intégrité : {verdict}")) }
}
