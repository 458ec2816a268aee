//! Job leases (PLATFORM.md §8): a job runs once across instances, and a calendar slot runs once even if its holder
//! dies and another instance takes over.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder};

use crate::db::Db;
use crate::error::StoreError;

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "job_leases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub holder: Option<String>,
        pub lease_until: Option<ChronoDateTimeUtc>,
        pub last_run_at: Option<ChronoDateTimeUtc>,
        pub last_status: Option<String>,
        pub last_error: Option<String>,
        pub next_run_at: Option<ChronoDateTimeUtc>,
        pub last_run_key: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{Column, Entity};

pub type JobLease = entity::Model;

/// Makes sure the job has its row (new jobs appear in health before their first run).
pub async fn register(db: &Db, name: &str, next_run_at: DateTime<Utc>) -> Result<(), StoreError> {
    let tx = db.begin_write().await?;
    Entity::insert(entity::ActiveModel {
        name: Set(name.to_string()),
        holder: Set(None),
        lease_until: Set(None),
        last_run_at: Set(None),
        last_status: Set(None),
        last_error: Set(None),
        next_run_at: Set(Some(next_run_at)),
        last_run_key: Set(None),
    })
    .on_conflict_do_nothing_on([Column::Name])
    .exec(&*tx)
    .await?;
    tx.commit().await
}

/// Takes the lease if it is free, expired or already ours, and — for calendar jobs — if `slot` has not run yet.
/// Returns whether this instance may run the job now.
pub async fn try_acquire(
    db: &Db,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    ttl: chrono::Duration,
    slot: Option<&str>,
) -> Result<bool, StoreError> {
    let mut cond = Condition::all().add(Column::Name.eq(name)).add(
        Condition::any()
            .add(Column::LeaseUntil.is_null())
            .add(Column::LeaseUntil.lt(now))
            .add(Column::Holder.eq(holder)),
    );
    if let Some(slot) = slot {
        cond = cond.add(Condition::any().add(Column::LastRunKey.is_null()).add(Column::LastRunKey.ne(slot)));
    }
    let tx = db.begin_write().await?;
    let res = Entity::update_many()
        .col_expr(Column::Holder, Expr::value(holder))
        .col_expr(Column::LeaseUntil, Expr::value(now + ttl))
        .filter(cond)
        .exec(&*tx)
        .await?;
    tx.commit().await?;
    Ok(res.rows_affected == 1)
}

/// Extends a lease we hold; false if it was lost (another instance took it after expiry).
pub async fn renew(db: &Db, name: &str, holder: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
    let tx = db.begin_write().await?;
    let res = Entity::update_many()
        .col_expr(Column::LeaseUntil, Expr::value(until))
        .filter(Column::Name.eq(name))
        .filter(Column::Holder.eq(holder))
        .exec(&*tx)
        .await?;
    tx.commit().await?;
    Ok(res.rows_affected == 1)
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub status: &'static str,
    pub error: Option<String>,
    /// The calendar slot completed (only set on success, so a failed slot is retried).
    pub run_key: Option<String>,
    pub next_run_at: DateTime<Utc>,
}

/// Records the outcome and frees the lease.
pub async fn finish(
    db: &Db,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    outcome: &RunOutcome,
) -> Result<(), StoreError> {
    let tx = db.begin_write().await?;
    let mut update = Entity::update_many()
        .col_expr(Column::Holder, Expr::value(Option::<String>::None))
        .col_expr(Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(Column::LastRunAt, Expr::value(now))
        .col_expr(Column::LastStatus, Expr::value(outcome.status))
        .col_expr(Column::LastError, Expr::value(outcome.error.clone()))
        .col_expr(Column::NextRunAt, Expr::value(outcome.next_run_at));
    if let Some(key) = &outcome.run_key {
        update = update.col_expr(Column::LastRunKey, Expr::value(key.clone()));
    }
    update.filter(Column::Name.eq(name)).filter(Column::Holder.eq(holder)).exec(&*tx).await?;
    tx.commit().await
}

/// Releases every lease this instance holds (shutdown).
pub async fn release_all(db: &Db, holder: &str) -> Result<(), StoreError> {
    let tx = db.begin_write().await?;
    Entity::update_many()
        .col_expr(Column::Holder, Expr::value(Option::<String>::None))
        .col_expr(Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(Column::Holder.eq(holder))
        .exec(&*tx)
        .await?;
    tx.commit().await
}

pub async fn list(db: &Db) -> Result<Vec<JobLease>, StoreError> {
    Ok(Entity::find().order_by_asc(Column::Name).all(db.conn()).await?)
}
