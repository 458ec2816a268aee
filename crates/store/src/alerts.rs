//! Alerts (DOMAIN.md §7.3): at most one open alert per (type, object); a new detection refreshes it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::error::StoreError;

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "alerts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub alert_type: String,
        pub severity: String,
        pub entity_type: String,
        pub entity_id: String,
        pub message: String,
        pub data: Option<String>,
        pub status: String,
        pub first_seen_at: ChronoDateTimeUtc,
        pub last_seen_at: ChronoDateTimeUtc,
        pub acknowledged_by: Option<Uuid>,
        pub acknowledged_at: Option<ChronoDateTimeUtc>,
        pub postponed_until: Option<ChronoDateTimeUtc>,
        pub closed_at: Option<ChronoDateTimeUtc>,
        pub postpone_reason: Option<String>,
        pub postponed_by: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type Alert = entity::Model;

pub struct Raise<'a> {
    pub alert_type: &'a str,
    pub severity: &'a str,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub message: String,
    pub data: serde_json::Value,
}

/// Opens an alert, or refreshes the open one of the same (type, object). Returns whether it is new.
pub async fn raise<C: ConnectionTrait>(c: &C, r: Raise<'_>, now: DateTime<Utc>) -> Result<bool, StoreError> {
    // Two writers raising the same alert at once (a job and the CLI, two instances) must make one row: on PostgreSQL
    // the check-then-insert runs under a transaction lock on the alert's identity (SQLite has a single writer).
    if c.get_database_backend() == sea_orm::DbBackend::Postgres {
        let key = format!("alert|{}|{}|{}", r.alert_type, r.entity_type, r.entity_id);
        c.execute_raw(crate::stock::stmt(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            vec![key.into()],
        ))
        .await?;
    }
    let open = entity::Entity::find()
        .filter(entity::Column::AlertType.eq(r.alert_type))
        .filter(entity::Column::EntityType.eq(r.entity_type))
        .filter(entity::Column::EntityId.eq(r.entity_id))
        .filter(entity::Column::Status.is_in(["OPEN", "ACKNOWLEDGED", "POSTPONED"]))
        .one(c)
        .await?;
    let data = domain::canonical::to_string(&r.data);
    match open {
        Some(a) => {
            entity::Entity::update_many()
                .col_expr(entity::Column::LastSeenAt, Expr::value(now))
                .col_expr(entity::Column::Message, Expr::value(r.message))
                .col_expr(entity::Column::Data, Expr::value(data))
                .col_expr(entity::Column::Severity, Expr::value(r.severity))
                .filter(entity::Column::Id.eq(a.id))
                .exec(c)
                .await?;
            Ok(false)
        }
        None => {
            entity::Entity::insert(entity::ActiveModel {
                id: Set(Uuid::now_v7()),
                alert_type: Set(r.alert_type.into()),
                severity: Set(r.severity.into()),
                entity_type: Set(r.entity_type.into()),
                entity_id: Set(r.entity_id.into()),
                message: Set(r.message),
                data: Set(Some(data)),
                status: Set("OPEN".into()),
                first_seen_at: Set(now),
                last_seen_at: Set(now),
                acknowledged_by: Set(None),
                acknowledged_at: Set(None),
                postponed_until: Set(None),
                closed_at: Set(None),
                postpone_reason: Set(None),
                postponed_by: Set(None),
            })
            .exec_without_returning(c)
            .await?;
            Ok(true)
        }
    }
}

pub async fn open_of_type(db: &crate::Db, alert_type: &str) -> Result<Vec<Alert>, StoreError> {
    Ok(entity::Entity::find()
        .filter(entity::Column::AlertType.eq(alert_type))
        .filter(entity::Column::Status.ne("CLOSED"))
        .order_by_asc(entity::Column::FirstSeenAt)
        .all(db.conn())
        .await?)
}

const ACTIVE: [&str; 3] = ["OPEN", "ACKNOWLEDGED", "POSTPONED"];

/// Closes the active alerts of `alert_type` whose object is not in `still_true` (§7.3: the condition is gone).
/// Returns how many were closed.
pub async fn close_except<C: ConnectionTrait>(
    c: &C,
    alert_type: &str,
    still_true: &[String],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut q = entity::Entity::update_many()
        .col_expr(entity::Column::Status, Expr::value("CLOSED"))
        .col_expr(entity::Column::ClosedAt, Expr::value(Some(now)))
        .filter(entity::Column::AlertType.eq(alert_type))
        .filter(entity::Column::Status.is_in(ACTIVE));
    if !still_true.is_empty() {
        q = q.filter(entity::Column::EntityId.is_not_in(still_true.to_vec()));
    }
    Ok(q.exec(c).await?.rows_affected)
}

/// POSTPONED alerts whose end has come go back to OPEN (the scan closed those whose condition is gone first).
pub async fn reopen_due<C: ConnectionTrait>(c: &C, now: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(entity::Entity::update_many()
        .col_expr(entity::Column::Status, Expr::value("OPEN"))
        .col_expr(entity::Column::PostponedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(entity::Column::Status.eq("POSTPONED"))
        .filter(entity::Column::PostponedUntil.lte(now))
        .exec(c)
        .await?
        .rows_affected)
}

/// Every alert not closed, the most severe first, then the oldest.
pub async fn active(db: &crate::Db) -> Result<Vec<Alert>, StoreError> {
    let mut all = entity::Entity::find()
        .filter(entity::Column::Status.is_in(ACTIVE))
        .order_by_asc(entity::Column::FirstSeenAt)
        .all(db.conn())
        .await?;
    let rank = |s: &str| match s {
        "CRITICAL" => 0,
        "WARNING" => 1,
        _ => 2,
    };
    all.sort_by_key(|a| rank(&a.severity));
    Ok(all)
}

pub async fn by_id<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Option<Alert>, StoreError> {
    Ok(entity::Entity::find_by_id(id).one(c).await?)
}

/// OPEN → ACKNOWLEDGED, once (§7.3); the guarded update makes a second click, even concurrent, `ALERTE_DEJA_TRAITEE`.
pub async fn acknowledge<C: ConnectionTrait>(
    c: &C,
    a: &Alert,
    actor: &crate::audit::Actor,
    now: DateTime<Utc>,
) -> Result<(), crate::error::OpError> {
    domain::kpi::check_acknowledge(&a.status)?;
    let r = entity::Entity::update_many()
        .col_expr(entity::Column::Status, Expr::value("ACKNOWLEDGED"))
        .col_expr(entity::Column::AcknowledgedBy, Expr::value(actor.user_id))
        .col_expr(entity::Column::AcknowledgedAt, Expr::value(Some(now)))
        .filter(entity::Column::Id.eq(a.id))
        .filter(entity::Column::Status.eq("OPEN"))
        .exec(c)
        .await?;
    if r.rows_affected != 1 {
        domain::kpi::check_acknowledge("ACKNOWLEDGED")?;
    }
    crate::audit::append(
        c,
        actor,
        crate::audit::Change::new("ALERT_ACKNOWLEDGED")
            .entity("alert", a.id)
            .before(serde_json::json!({"status": a.status}))
            .after(serde_json::json!({"status": "ACKNOWLEDGED", "type": a.alert_type, "object": a.entity_id})),
        now,
    )
    .await?;
    Ok(())
}

/// OPEN or ACKNOWLEDGED → POSTPONED until `until` with a reason (§7.3).
pub async fn postpone<C: ConnectionTrait>(
    c: &C,
    a: &Alert,
    reason: &str,
    until: DateTime<Utc>,
    actor: &crate::audit::Actor,
    now: DateTime<Utc>,
) -> Result<(), crate::error::OpError> {
    let reason = domain::kpi::check_postpone(&a.alert_type, &a.status, reason, until, now)?;
    let r = entity::Entity::update_many()
        .col_expr(entity::Column::Status, Expr::value("POSTPONED"))
        .col_expr(entity::Column::PostponedUntil, Expr::value(Some(until)))
        .col_expr(entity::Column::PostponeReason, Expr::value(Some(reason.clone())))
        .col_expr(entity::Column::PostponedBy, Expr::value(actor.user_id))
        .filter(entity::Column::Id.eq(a.id))
        .filter(entity::Column::Status.is_in(["OPEN", "ACKNOWLEDGED"]))
        .exec(c)
        .await?;
    if r.rows_affected != 1 {
        domain::kpi::check_acknowledge("POSTPONED")?;
    }
    crate::audit::append(
        c,
        actor,
        crate::audit::Change::new("ALERT_POSTPONED")
            .entity("alert", a.id)
            .before(serde_json::json!({"status": a.status}))
            .after(serde_json::json!({"status": "POSTPONED", "until": until, "type": a.alert_type}))
            .reason(reason),
        now,
    )
    .await?;
    Ok(())
}
