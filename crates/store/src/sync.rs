//! Sync (PLATFORM.md §7): the events devices pushed with their outcome and the operators' retry (runbook INC-005),
//! the claim of an event for applying it (row locks, so pushes, instances and the worker never apply one twice), the
//! device feed `change_log` numbered in commit order, the feed epoch, and the proofs kept by their hash.

use chrono::{DateTime, Utc};
use domain::rejection::Rejection;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{OpError, StoreError};
use crate::stock::stmt;

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
    /// The payload as stored: binaries already replaced by their attachment (`{"attachment":"sha256:…"}`).
    pub payload: Value,
    /// The checksum of the payload as the device sent it (with its binaries).
    pub payload_hash: String,
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
        payload_hash: r.payload_hash,
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

// ---- claiming and outcomes -------------------------------------------------------------------------------------

pub async fn by_client_id<C: ConnectionTrait>(c: &C, client_event_id: Uuid) -> Result<Option<Event>, StoreError> {
    Ok(events::Entity::find().filter(events::Column::ClientEventId.eq(client_event_id)).one(c).await?)
}

const COLUMNS: &str = "id, client_event_id, device_id, user_id, entity_type, entity_id, action, payload, payload_hash, \
     occurred_at, received_at, applied_at, status, attempts, next_attempt_at, error_code, error_message, batch_id, \
     created_at, receipt_seq, batch_index, server_ref, failure_class";

/// Row lock without waiting on PostgreSQL (another push, instance or the worker holds it → `None`); SQLite has one
/// writer, so the caller's write transaction already excludes everyone else.
fn skip_locked(backend: DbBackend) -> &'static str {
    if backend == DbBackend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" }
}

async fn one_event<C: ConnectionTrait>(
    c: &C,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Option<Event>, StoreError> {
    use sea_orm::FromQueryResult;
    let backend = c.get_database_backend();
    match c.query_one_raw(stmt(backend, sql, values)).await? {
        Some(row) => Ok(Some(Event::from_query_result(&row, "")?)),
        None => Ok(None),
    }
}

/// A PENDING event locked for applying it, unless someone else holds it (`None`).
pub async fn claim<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Option<Event>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sync_events WHERE id = $1 AND status = 'PENDING'{}",
        skip_locked(c.get_database_backend())
    );
    one_event(c, &sql, vec![id.into()]).await
}

/// Whether an older PENDING event waits on the same entity (§7.2 step 4: events of an entity apply in arrival order).
pub async fn older_pending<C: ConnectionTrait>(c: &C, e: &Event) -> Result<bool, StoreError> {
    Ok(events::Entity::find()
        .filter(events::Column::Status.eq("PENDING"))
        .filter(events::Column::EntityType.eq(e.entity_type.clone()))
        .filter(events::Column::EntityId.eq(e.entity_id.clone()))
        .filter(events::Column::ReceiptSeq.lt(e.receipt_seq))
        .one(c)
        .await?
        .is_some())
}

/// The worker's next event: the oldest due PENDING one with no older PENDING event on its entity, locked (skipping
/// rows another instance holds).
pub async fn next_due<C: ConnectionTrait>(c: &C, now: DateTime<Utc>) -> Result<Option<Event>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sync_events e WHERE e.status = 'PENDING' \
         AND (e.next_attempt_at IS NULL OR e.next_attempt_at <= $1) \
         AND NOT EXISTS (SELECT 1 FROM sync_events o WHERE o.status = 'PENDING' AND o.entity_type = e.entity_type \
                         AND o.entity_id = e.entity_id AND o.receipt_seq < e.receipt_seq) \
         ORDER BY e.receipt_seq LIMIT 1{}",
        skip_locked(c.get_database_backend())
    );
    one_event(c, &sql, vec![now.into()]).await
}

/// APPLIED, with the server's reference of what it made (a payment number, a BL reference…).
pub async fn applied<C: ConnectionTrait>(
    c: &C,
    id: Uuid,
    server_ref: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    events::Entity::update_many()
        .col_expr(events::Column::Status, Expr::value("APPLIED"))
        .col_expr(events::Column::AppliedAt, Expr::value(Some(now)))
        .col_expr(events::Column::ServerRef, Expr::value(server_ref))
        .col_expr(events::Column::NextAttemptAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(events::Column::ErrorCode, Expr::value(Option::<String>::None))
        .col_expr(events::Column::ErrorMessage, Expr::value(Option::<String>::None))
        .filter(events::Column::Id.eq(id))
        .exec(c)
        .await?;
    Ok(())
}

/// Still PENDING after a transient failure: `attempts` failed attempts so far, due again at `next_attempt_at`.
pub async fn defer<C: ConnectionTrait>(
    c: &C,
    id: Uuid,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    message: &str,
) -> Result<(), StoreError> {
    events::Entity::update_many()
        .col_expr(events::Column::Attempts, Expr::value(attempts))
        .col_expr(events::Column::NextAttemptAt, Expr::value(Some(next_attempt_at)))
        .col_expr(events::Column::ErrorCode, Expr::value("TRANSIENT_ERROR"))
        .col_expr(events::Column::ErrorMessage, Expr::value(message))
        .filter(events::Column::Id.eq(id))
        .filter(events::Column::Status.eq("PENDING"))
        .exec(c)
        .await?;
    Ok(())
}

/// The device has stored these outcomes: its APPLIED events among `ids` become ACKED; the count.
pub async fn ack<C: ConnectionTrait>(c: &C, device_id: Uuid, ids: &[Uuid]) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let r = events::Entity::update_many()
        .col_expr(events::Column::Status, Expr::value("ACKED"))
        .filter(events::Column::DeviceId.eq(device_id))
        .filter(events::Column::Status.eq("APPLIED"))
        .filter(events::Column::ClientEventId.is_in(ids.to_vec()))
        .exec(c)
        .await?;
    Ok(r.rows_affected)
}

/// Counts for health, metrics and the admin pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: i64,
    pub failed: i64,
    pub failed_technical: i64,
    pub oldest_pending: Option<DateTime<Utc>>,
}

/// PENDING events (all), FAILED ones created since `since`, of one device or of all.
pub async fn counts<C: ConnectionTrait>(
    c: &C,
    device_id: Option<Uuid>,
    since: DateTime<Utc>,
) -> Result<Counts, StoreError> {
    let mut q = events::Entity::find().filter(
        events::Column::Status
            .eq("PENDING")
            .or(events::Column::Status.eq("FAILED").and(events::Column::CreatedAt.gt(since))),
    );
    if let Some(d) = device_id {
        q = q.filter(events::Column::DeviceId.eq(d));
    }
    let mut out = Counts::default();
    for e in q.all(c).await? {
        if e.status == "PENDING" {
            out.pending += 1;
            out.oldest_pending = Some(out.oldest_pending.map_or(e.created_at, |o| Ord::min(o, e.created_at)));
        } else {
            out.failed += 1;
            if e.failure_class.as_deref() == Some("technical") {
                out.failed_technical += 1;
            }
        }
    }
    Ok(out)
}

/// Events created since `since` by (status, failure class): the `sync_events` gauge of the metrics.
pub async fn by_status<C: ConnectionTrait>(
    c: &C,
    since: DateTime<Utc>,
) -> Result<Vec<(String, String, i64)>, StoreError> {
    let rows = c
        .query_all_raw(stmt(
            c.get_database_backend(),
            "SELECT status, COALESCE(failure_class, '') AS class, COUNT(*) AS n FROM sync_events \
             WHERE created_at > $1 GROUP BY status, COALESCE(failure_class, '')",
            vec![since.into()],
        ))
        .await?;
    let mut out = Vec::new();
    for r in rows {
        out.push((r.try_get("", "status")?, r.try_get("", "class")?, r.try_get("", "n")?));
    }
    Ok(out)
}

/// Events for the admin list: by status (all when `None`), since, of one device; newest first, one page.
pub async fn page<C: ConnectionTrait>(
    c: &C,
    status: Option<&str>,
    since: Option<DateTime<Utc>>,
    device_id: Option<Uuid>,
    offset: u64,
    limit: u64,
) -> Result<(Vec<Event>, u64), StoreError> {
    use sea_orm::{PaginatorTrait, QuerySelect};
    let mut q = events::Entity::find();
    if let Some(s) = status {
        q = q.filter(events::Column::Status.eq(s.to_uppercase()));
    }
    if let Some(t) = since {
        q = q.filter(events::Column::CreatedAt.gt(t));
    }
    if let Some(d) = device_id {
        q = q.filter(events::Column::DeviceId.eq(d));
    }
    let total = q.clone().count(c).await?;
    let items = q.order_by_desc(events::Column::ReceiptSeq).offset(offset).limit(limit).all(c).await?;
    Ok((items, total))
}

pub async fn by_id<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Option<Event>, StoreError> {
    Ok(events::Entity::find_by_id(id).one(c).await?)
}

/// ACKED events older than `before` go (retention, one year).
pub async fn purge_acked<C: ConnectionTrait>(c: &C, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let r = events::Entity::delete_many()
        .filter(events::Column::Status.eq("ACKED"))
        .filter(events::Column::CreatedAt.lt(before))
        .exec(c)
        .await?;
    Ok(r.rows_affected)
}

// ---- the device feed -------------------------------------------------------------------------------------------

/// Who sees a feed row: one user, or every user of a role (`*` = every role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    User(Uuid),
    Role(String),
}

impl Audience {
    pub fn everyone() -> Audience {
        Audience::Role("*".into())
    }
}

/// One change as the feed gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub seq: i64,
    pub entity_type: String,
    pub entity_id: String,
    pub op: String,
    pub data: Option<Value>,
}

/// The key of the transaction-scoped advisory lock every feed writer takes on PostgreSQL before numbering its rows.
const FEED_LOCK: i64 = 0x4d43_4645_4544; // "MCFEED"

/// Takes the feed's transaction-scoped lock on PostgreSQL (SQLite: the single writer already holds everything).
pub async fn lock_feed<C: ConnectionTrait>(c: &C) -> Result<(), StoreError> {
    let backend = c.get_database_backend();
    if backend == DbBackend::Postgres {
        c.execute_raw(stmt(backend, "SELECT pg_advisory_xact_lock($1)", vec![FEED_LOCK.into()])).await?;
    }
    Ok(())
}

/// Appends one change, numbered after every change already committed: the feed lock (and the row lock of the
/// numbering) is held until the writer's commit, so `seq` order is commit order and a reader at head `h` has seen
/// every row `≤ h`. Call it as the last writes of a transaction.
pub async fn append<C: ConnectionTrait>(
    c: &C,
    entity_type: &str,
    entity_id: &str,
    op: &str,
    audience: &Audience,
    data: Option<Value>,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let backend = c.get_database_backend();
    lock_feed(c).await?;
    let seq = crate::stock::next_number(c, "FEED", "seq").await?;
    let (user, role) = match audience {
        Audience::User(u) => (Some(*u), None),
        Audience::Role(r) => (None, Some(r.clone())),
    };
    c.execute_raw(stmt(
        backend,
        "INSERT INTO change_log (seq, entity_type, entity_id, op, audience_user_id, audience_role, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            seq.into(),
            entity_type.into(),
            entity_id.into(),
            op.into(),
            user.into(),
            role.into(),
            data.map(|d| domain::canonical::jcs(&d)).into(),
            now.into(),
        ],
    ))
    .await?;
    Ok(seq)
}

async fn scalar<C: ConnectionTrait>(c: &C, sql: &str) -> Result<i64, StoreError> {
    let row = c.query_one_raw(stmt(c.get_database_backend(), sql, vec![])).await?;
    Ok(row.and_then(|r| r.try_get::<Option<i64>>("", "v").ok().flatten()).unwrap_or(0))
}

/// The last committed `seq` (0 when the feed is empty).
pub async fn head<C: ConnectionTrait>(c: &C) -> Result<i64, StoreError> {
    scalar(c, "SELECT MAX(seq) AS v FROM change_log").await
}

/// The lowest cursor still served: rows at or below it were purged (retention).
pub async fn min_cursor<C: ConnectionTrait>(c: &C) -> Result<i64, StoreError> {
    let min = scalar(c, "SELECT MIN(seq) AS v FROM change_log").await?;
    if min == 0 { head(c).await } else { Ok(min - 1) }
}

/// The changes after `cursor` up to `head` visible to the user (their own rows, their role's, everyone's), at most
/// `limit`, in `seq` order.
pub async fn changes<C: ConnectionTrait>(
    c: &C,
    cursor: i64,
    head: i64,
    limit: u64,
    user_id: Uuid,
    role: &str,
) -> Result<Vec<Change>, StoreError> {
    let rows = c
        .query_all_raw(stmt(
            c.get_database_backend(),
            "SELECT seq, entity_type, entity_id, op, data FROM change_log WHERE seq > $1 AND seq <= $2 \
             AND (audience_user_id = $3 OR (audience_user_id IS NULL AND audience_role IN ($4, '*'))) \
             ORDER BY seq LIMIT $5",
            vec![cursor.into(), head.into(), user_id.into(), role.into(), (limit as i64).into()],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let data: Option<String> = r.try_get("", "data")?;
        out.push(Change {
            seq: r.try_get("", "seq")?,
            entity_type: r.try_get("", "entity_type")?,
            entity_id: r.try_get("", "entity_id")?,
            op: r.try_get("", "op")?,
            data: data.and_then(|d| serde_json::from_str(&d).ok()),
        });
    }
    Ok(out)
}

/// Changes older than `before` go (kept 90 days); the oldest cursor served rises with them.
pub async fn purge_feed<C: ConnectionTrait>(c: &C, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let r = c
        .execute_raw(stmt(
            c.get_database_backend(),
            "DELETE FROM change_log WHERE created_at < $1",
            vec![before.into()],
        ))
        .await?;
    Ok(r.rows_affected())
}

/// The feed's epoch, made on first use.
pub async fn epoch<C: ConnectionTrait>(c: &C, now: DateTime<Utc>) -> Result<Uuid, StoreError> {
    let backend = c.get_database_backend();
    let read = "SELECT epoch FROM sync_feed WHERE id = 1";
    if let Some(r) = c.query_one_raw(stmt(backend, read, vec![])).await? {
        return Ok(r.try_get("", "epoch")?);
    }
    c.execute_raw(stmt(
        backend,
        "INSERT INTO sync_feed (id, epoch, reset_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
        vec![Uuid::new_v4().into(), now.into()],
    ))
    .await?;
    let r = c.query_one_raw(stmt(backend, read, vec![])).await?;
    Ok(r.ok_or_else(|| StoreError::Other("sync_feed has no row".into()))?.try_get("", "epoch")?)
}

/// A new epoch (after a restore): every device bootstraps again (`409 FEED_RESET`).
pub async fn reset_epoch<C: ConnectionTrait>(c: &C, now: DateTime<Utc>) -> Result<Uuid, StoreError> {
    let e = Uuid::new_v4();
    c.execute_raw(stmt(
        c.get_database_backend(),
        "INSERT INTO sync_feed (id, epoch, reset_at) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch, reset_at = excluded.reset_at",
        vec![e.into(), now.into()],
    ))
    .await?;
    Ok(e)
}

// ---- attachments -----------------------------------------------------------------------------------------------

/// Keeps a binary once by its SHA-256 and answers its reference `sha256:<hex>`.
pub async fn put_attachment<C: ConnectionTrait>(
    c: &C,
    content_type: &str,
    data: &[u8],
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let hex = domain::sync::sha256_hex(data);
    c.execute_raw(stmt(
        c.get_database_backend(),
        "INSERT INTO attachments (sha256, content_type, size, data, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (sha256) DO NOTHING",
        vec![hex.clone().into(), content_type.into(), (data.len() as i64).into(), data.to_vec().into(), now.into()],
    ))
    .await?;
    Ok(format!("sha256:{hex}"))
}

/// The bytes of `sha256:<hex>`.
pub async fn attachment<C: ConnectionTrait>(c: &C, reference: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    let row = c
        .query_one_raw(stmt(
            c.get_database_backend(),
            "SELECT data FROM attachments WHERE sha256 = $1",
            vec![hex.into()],
        ))
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("", "data")?),
        None => None,
    })
}
