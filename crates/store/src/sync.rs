//! Sync events (PLATFORM.md §7.3): what devices pushed, their outcome, and the operators' retry (runbook INC-005).
//! The push and the worker that apply them come next (issue 8); this holds the table and its operations.

use chrono::{DateTime, Utc};
use domain::rejection::Rejection;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{OpError, StoreError};

entity!(events, "sync_events", {
    client_event_id: Uuid, device_id: Uuid, user_id: Uuid, entity_type: String, entity_id: String, action: String,
    payload: String, payload_hash: String, occurred_at: ChronoDateTimeUtc, received_at: ChronoDateTimeUtc,
    applied_at: Option<ChronoDateTimeUtc>, status: String, attempts: i32, next_attempt_at: Option<ChronoDateTimeUtc>,
    error_code: Option<String>, error_message: Option<String>, batch_id: Uuid, created_at: ChronoDateTimeUtc,
    receipt_seq: i64, batch_index: i32, server_ref: Option<String>, failure_class: Option<String>,
});

pub type Event = events::Model;

/// An event as received from a device.
#[derive(Debug, Clone)]
pub struct Received {
    pub client_event_id: Uuid,
    pub device_id: Uuid,
    pub user_id: Uuid,
    pub entity_type: String,
    pub entity_id: String,
    pub action: String,
    pub payload: Value,
    pub occurred_at: DateTime<Utc>,
    pub batch_id: Uuid,
    pub batch_index: i32,
}

/// Stores an event PENDING, numbered in arrival order (`receipt_seq`, from the sequences table, so both backends
/// number alike), with the checksum of its canonical payload.
pub async fn receive<C: ConnectionTrait>(c: &C, r: Received, now: DateTime<Utc>) -> Result<Event, StoreError> {
    let seq = crate::stock::next_number(c, "SYNC", "receipt").await?;
    let e = Event {
        id: Uuid::now_v7(),
        client_event_id: r.client_event_id,
        device_id: r.device_id,
        user_id: r.user_id,
        entity_type: r.entity_type,
        entity_id: r.entity_id,
        action: r.action,
        payload_hash: domain::sync::checksum(&r.payload),
        payload: domain::canonical::jcs(&r.payload),
        occurred_at: r.occurred_at,
        received_at: now,
        applied_at: None,
        status: "PENDING".into(),
        attempts: 0,
        next_attempt_at: None,
        error_code: None,
        error_message: None,
        batch_id: r.batch_id,
        created_at: now,
        receipt_seq: seq,
        batch_index: r.batch_index,
        server_ref: None,
        failure_class: None,
    };
    events::Entity::insert(e.clone().into_active_model()).exec_without_returning(c).await?;
    Ok(e)
}

/// Marks an event FAILED with its code, message and class (`business` or `technical`).
pub async fn fail<C: ConnectionTrait>(
    c: &C,
    id: Uuid,
    code: &str,
    message: &str,
    class: &str,
    attempts: i32,
) -> Result<(), StoreError> {
    events::Entity::update_many()
        .col_expr(events::Column::Status, Expr::value("FAILED"))
        .col_expr(events::Column::ErrorCode, Expr::value(code))
        .col_expr(events::Column::ErrorMessage, Expr::value(message))
        .col_expr(events::Column::FailureClass, Expr::value(class))
        .col_expr(events::Column::Attempts, Expr::value(attempts))
        .col_expr(events::Column::NextAttemptAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(events::Column::Id.eq(id))
        .exec(c)
        .await?;
    Ok(())
}

/// Events by status (all when `None`) created since `since`, oldest first.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    status: Option<&str>,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<Event>, StoreError> {
    let mut q = events::Entity::find();
    if let Some(s) = status {
        q = q.filter(events::Column::Status.eq(s.to_uppercase()));
    }
    if let Some(t) = since {
        q = q.filter(events::Column::CreatedAt.gt(t));
    }
    Ok(q.order_by_asc(events::Column::ReceiptSeq).all(c).await?)
}

/// One FAILED event back to PENDING (the trigger clears attempts, due time and failure class); 409 otherwise.
pub async fn retry<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Event, OpError> {
    let e = events::Entity::find()
        .filter(events::Column::Id.eq(id).or(events::Column::ClientEventId.eq(id)))
        .one(c)
        .await?
        .ok_or_else(|| Rejection::non_trouve("Événement de synchronisation"))?;
    if e.status != "FAILED" {
        return Err(Rejection::transition_invalide(&e.status, "PENDING").into());
    }
    events::Entity::update_many()
        .col_expr(events::Column::Status, Expr::value("PENDING"))
        .filter(events::Column::Id.eq(e.id))
        .exec(c)
        .await?;
    Ok(events::Entity::find_by_id(e.id).one(c).await?.unwrap_or(e))
}

/// Every FAILED event created since `since` back to PENDING — what the runbook's `UPDATE` does; the count.
pub async fn retry_failed<C: ConnectionTrait>(c: &C, since: DateTime<Utc>) -> Result<u64, StoreError> {
    let r = events::Entity::update_many()
        .col_expr(events::Column::Status, Expr::value("PENDING"))
        .filter(events::Column::Status.eq("FAILED"))
        .filter(events::Column::CreatedAt.gt(since))
        .exec(c)
        .await?;
    Ok(r.rows_affected)
}
