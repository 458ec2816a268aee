//! The sync API for devices (PLATFORM.md §7): push, pull, bootstrap, status, ack; and its operations for ADMIN
//! (events by status, retry). Every device route asks for a device session whose device is registered and active,
//! answers `401 DEVICE_REVOKED` for a revoked one (never a 403), and counts in the device's own rate limiter.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Ctx, Identity};
use crate::platform::errors::{ApiError, ApiJson};
use crate::state::AppState;
use crate::sync::{Incoming, Outcome};

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn not_registered() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "DEVICE_NOT_REGISTERED",
        "Appareil non enregistré : appelez /api/devices/register avant de synchroniser.",
    )
}

/// The checks every device route makes (§7): protocol version, device session matching `X-Device-Id`, registered,
/// active, owned by the caller, recent enough; then the device's limiter.
async fn device_of(
    st: &AppState,
    id: &Identity,
    headers: &HeaderMap,
    limiter: &str,
    max: u64,
) -> Result<store::identity::Device, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(v) = header("x-sync-protocol")
        && v != "1"
    {
        return Err(ApiError::validation(format!(
            "Version du protocole de synchronisation non prise en charge : {v}."
        ))
        .with_details(json!({"fields": [{"field": "X-Sync-Protocol", "code": "HORS_LIMITES",
                                             "message": "Valeur attendue : 1."}]})));
    }
    let Some(did) = id.device_id else { return Err(not_registered()) };
    if header("x-device-id").and_then(|v| Uuid::parse_str(v).ok()) != Some(did) {
        return Err(ApiError::validation("L'en-tête X-Device-Id doit être l'identifiant de l'appareil de la session.")
            .with_details(json!({"fields": [{"field": "X-Device-Id", "code": "INVALIDE",
                                             "message": "Identifiant de l'appareil de la session attendu."}]})));
    }
    let device = store::identity::device(st.dbmon.db().conn(), did).await?.ok_or_else(not_registered)?;
    if !device.is_active {
        return Err(crate::auth::device_revoked());
    }
    if device.user_id != id.user.id {
        return Err(store::identity::device_owned_by_other().into());
    }
    if let Some(min) = &st.config.min_device_app_version
        && domain::sync::app_too_old(&device.app_version, min)
    {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "APP_VERSION_UNSUPPORTED",
            format!("Mettez l'application à jour (version {min} au moins)."),
        )
        .with_details(json!({"minAppVersion": min, "appVersion": device.app_version})));
    }
    let d = st.limiter.hit(limiter, &format!("device:{did}"), max, Duration::from_secs(60)).await;
    if !d.allowed {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            format!("Trop de synchronisations. Réessayez dans {} s.", d.retry_after_secs),
        )
        .with_details(json!({"limiter": limiter, "limit": d.limit, "windowSeconds": 60}))
        .with_retry_after(d.retry_after_secs));
    }
    Ok(device)
}

async fn synced(st: &AppState, device: Uuid) {
    let now = st.clock.now();
    let r = st
        .dbmon
        .db()
        .write(|tx| Box::pin(async move { store::identity::device_synced(&**tx, device, now).await }))
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "could not record the device's last sync");
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventBody {
    /// Client event id (UUID v4 or v7): exactly-once key.
    pub id: String,
    pub entity_type: String,
    pub entity_id: String,
    /// DELIVERY_VALIDATED, DELIVERY_DELIVERED, DELIVERY_CANCELLED, PAYMENT_RECORDED, INVOICE_DRAFT_CREATED,
    /// CLIENT_CONTACT_UPDATED.
    pub action: String,
    /// RFC 3339, the device's clock.
    pub occurred_at: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Lowercase hex SHA-256 of the RFC 8785 form of `payload`.
    pub checksum: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PushBody {
    pub device_id: Uuid,
    pub batch_id: Uuid,
    /// 1 to 100 events, applied in this order.
    pub events: Vec<EventBody>,
}

fn bad_batch(message: String) -> ApiError {
    ApiError::validation(message)
}

/// The `deviceId` of a body must be the session's device.
fn same_device(body: Uuid, device: Uuid) -> Result<(), ApiError> {
    if body == device {
        Ok(())
    } else {
        Err(bad_batch("deviceId ne correspond pas à l'appareil de la session.".into()))
    }
}

/// The whole-batch checks (§7.1): nothing is stored when one fails.
fn read_push(bytes: &[u8], device: Uuid) -> Result<(Uuid, Vec<Incoming>), ApiError> {
    let body: PushBody =
        serde_json::from_slice(bytes).map_err(|e| bad_batch(format!("Lot de synchronisation illisible : {e}.")))?;
    same_device(body.device_id, device)?;
    let sizes: Vec<(&str, usize)> =
        body.events.iter().map(|e| (e.id.as_str(), domain::canonical::jcs(&e.payload).len())).collect();
    domain::sync::check_batch(&sizes)?;
    let mut out = Vec::with_capacity(body.events.len());
    for (i, e) in body.events.into_iter().enumerate() {
        let id =
            Uuid::parse_str(&e.id).map_err(|_| bad_batch(format!("Identifiant d'événement invalide : {}.", e.id)))?;
        let occurred_at = DateTime::parse_from_rfc3339(&e.occurred_at)
            .map_err(|_| bad_batch(format!("occurredAt invalide pour l'événement {id} (RFC 3339 attendu).")))?
            .with_timezone(&Utc);
        out.push(Incoming {
            id,
            entity_type: e.entity_type,
            entity_id: e.entity_id,
            action: e.action,
            occurred_at,
            payload: e.payload,
            checksum: e.checksum,
            batch_id: body.batch_id,
            batch_index: i as i32,
        });
    }
    Ok((body.batch_id, out))
}

#[utoipa::path(post, path = "/api/sync/push", tag = "sync", request_body = PushBody, responses(
    (status = 200, description = "Un résultat par événement : APPLIED, DUPLICATE, REJECTED (code, message) ou DEFERRED (retryable)"),
    (status = 400, description = "VALIDATION_ERROR : lot illisible, 0 ou plus de 100 événements, identifiants en double"),
    (status = 401, description = "DEVICE_REVOKED"), (status = 409, description = "DEVICE_NOT_REGISTERED"),
    (status = 413, description = "PAYLOAD_TOO_LARGE"), (status = 429, description = "RATE_LIMITED (Retry-After)"),
    (status = 503, description = "DATABASE_UNAVAILABLE")))]
pub async fn push(State(st): State<AppState>, id: Identity, headers: HeaderMap, body: axum::body::Body) -> Response {
    let started = Instant::now();
    let result: Result<Value, ApiError> = async {
        let device = device_of(&st, &id, &headers, "sync-push", st.config.rate_limit_sync_push_max).await?;
        let bytes = axum::body::to_bytes(body, st.config.sync_body_limit).await.map_err(|_| {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "Lot de synchronisation trop volumineux.")
                .with_details(json!({"max": st.config.sync_body_limit}))
        })?;
        let (batch_id, events) = read_push(&bytes, device.id)?;
        let mut results = Vec::with_capacity(events.len());
        let mut stopped = false;
        for (i, ev) in events.into_iter().enumerate() {
            let event_id = ev.id;
            if stopped {
                results.push(not_processed(event_id).json());
                continue;
            }
            match crate::sync::process(&st, device.id, id.user.id, ev).await {
                Ok(o) => results.push(o.json()),
                Err(e) if !e.is_down() => {
                    // Busy for a moment (nothing stored): the device sends it again.
                    tracing::warn!(error = %e.0, event = %event_id, "sync event not processed: database busy");
                    let o =
                        Outcome::deferred(event_id, "TRANSIENT_ERROR", "Serveur occupé : nouvel envoi automatique.");
                    results.push(o.json());
                }
                Err(e) if i == 0 => {
                    tracing::warn!(error = %e.0, "sync push: database unreachable");
                    return Err(ApiError::database_unavailable());
                }
                Err(e) => {
                    tracing::warn!(error = %e.0, "sync push stopped: database unreachable");
                    stopped = true;
                    results.push(not_processed(event_id).json());
                }
            }
        }
        synced(&st, device.id).await;
        Ok(json!({"batchId": batch_id, "serverTime": rfc3339(st.clock.now()), "results": results}))
    }
    .await;
    metrics::histogram!("sync_push_duration_seconds").record(started.elapsed().as_secs_f64());
    result.map(Json).into_response()
}

fn not_processed(id: Uuid) -> Outcome {
    Outcome::deferred(id, "NOT_PROCESSED", "Non traité : le serveur a perdu sa base de données, renvoyez plus tard.")
}

#[derive(Deserialize, IntoParams, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct PullQuery {
    /// The last `seq` the device has (0 after a bootstrap of an empty feed).
    pub cursor: Option<i64>,
    /// 1–500, default 200.
    pub limit: Option<u64>,
    /// The feed epoch the device knows; another one → 409 FEED_RESET.
    pub epoch: Option<Uuid>,
}

fn feed_reset() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "FEED_RESET",
        "Le serveur a été restauré : rechargez les données de l'appareil (bootstrap).",
    )
}

fn change_json(c: &store::sync::Change) -> Value {
    json!({"seq": c.seq, "entityType": c.entity_type, "entityId": c.entity_id, "op": c.op, "data": c.data})
}

#[utoipa::path(get, path = "/api/sync/pull", tag = "sync", params(PullQuery), responses(
    (status = 200, description = "Changements visibles par l'utilisateur de l'appareil après le curseur"),
    (status = 409, description = "FEED_RESET (nouvelle époque : bootstrap)"),
    (status = 410, description = "CURSOR_EXPIRED (curseur plus ancien que le journal conservé : bootstrap)")))]
pub async fn pull(
    State(st): State<AppState>,
    id: Identity,
    headers: HeaderMap,
    Query(q): Query<PullQuery>,
) -> Response {
    let result: Result<Value, ApiError> = async {
        let device = device_of(&st, &id, &headers, "sync-pull", st.config.rate_limit_sync_pull_max).await?;
        let limit = q.limit.unwrap_or(200);
        let cursor = q.cursor.unwrap_or(0);
        if !(1..=500).contains(&limit) || cursor < 0 {
            return Err(ApiError::validation("Paramètres de lecture invalides.").with_details(json!({"fields": [
                {"field": "limit", "code": "HORS_LIMITES", "message": "limit de 1 à 500, cursor ≥ 0"}]})));
        }
        let c = st.dbmon.db().conn();
        let epoch = store::sync::epoch(c, st.clock.now()).await?;
        if q.epoch.is_some_and(|e| e != epoch) {
            return Err(feed_reset().with_details(json!({"feedEpoch": epoch})));
        }
        let min = store::sync::min_cursor(c).await?;
        if cursor < min {
            return Err(ApiError::new(
                StatusCode::GONE,
                "CURSOR_EXPIRED",
                "Données de l'appareil trop anciennes : rechargez-les (bootstrap).",
            )
            .with_details(json!({"minCursor": min})));
        }
        // The head first: every row at or below it is committed (rows are numbered in commit order).
        let head = store::sync::head(c).await?;
        let changes = store::sync::changes(c, cursor, head, limit, id.user.id, id.role.code()).await?;
        let full = changes.len() as u64 == limit;
        let next = if full { changes.last().map_or(cursor, |c| c.seq) } else { head.max(cursor) };
        synced(&st, device.id).await;
        Ok(json!({"changes": changes.iter().map(change_json).collect::<Vec<_>>(), "nextCursor": next,
                  "hasMore": full, "serverTime": rfc3339(st.clock.now()), "feedEpoch": epoch}))
    }
    .await;
    result.map(Json).into_response()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BootstrapBody {
    pub device_id: Uuid,
    /// Any of products, prices, clients, deliveries (default all).
    pub entities: Option<Vec<String>>,
}

const ENTITIES: [&str; 4] = ["products", "prices", "clients", "deliveries"];

/// What a device starts from: everything it may see, read in one snapshot with the feed head.
async fn snapshot(st: &AppState, user: &store::identity::User, wanted: &[String]) -> Result<Value, ApiError> {
    let db = st.dbmon.db();
    // The epoch is made on first use, outside the read-only snapshot.
    store::sync::epoch(db.conn(), st.clock.now()).await?;
    let tx = db.snapshot().await?;
    let now = st.clock.now();
    let head = store::sync::head(&tx).await?;
    let epoch = store::sync::epoch(&tx, now).await?;
    let mut out = serde_json::Map::new();
    let want = |k: &str| wanted.iter().any(|w| w == k);
    if want("products") {
        let ps = store::catalogue::pf_products(&tx).await?;
        out.insert("products".into(), ps.iter().map(store::catalogue::product_device_json).collect());
    }
    if want("prices") {
        let lists = store::sales::price_lists_with_items(&tx).await?;
        let v: Vec<Value> = lists.iter().map(|(l, i)| store::sales::price_list_device_json(l, i)).collect();
        out.insert("prices".into(), v.into());
    }
    let deliveries = store::delivery::of_driver(&tx, user.id, now - chrono::Duration::days(7)).await?;
    if want("clients") {
        let mut ids: Vec<Uuid> = deliveries.iter().map(|d| d.client_id).collect();
        ids.sort();
        ids.dedup();
        let mut v = Vec::new();
        for cid in ids {
            if let Some(cl) = store::catalogue::client_by_id(&tx, cid).await? {
                v.push(store::catalogue::client_device_json(&cl));
            }
        }
        out.insert("clients".into(), v.into());
    }
    if want("deliveries") {
        let mut v = Vec::new();
        for d in &deliveries {
            v.push(store::delivery::device_snapshot(&tx, d).await?);
        }
        out.insert("deliveries".into(), v.into());
    }
    let _ = tx.rollback().await;
    Ok(json!({"feedEpoch": epoch, "cursor": head, "serverTime": rfc3339(now), "snapshot": out}))
}

#[utoipa::path(post, path = "/api/sync/bootstrap", tag = "sync", request_body = BootstrapBody, responses(
    (status = 200, description = "Instantané (produits, tarifs, clients, livraisons de l'utilisateur) et curseur du journal")))]
pub async fn bootstrap(
    State(st): State<AppState>,
    id: Identity,
    headers: HeaderMap,
    ApiJson(b): ApiJson<BootstrapBody>,
) -> Response {
    let result: Result<Value, ApiError> = async {
        let device = device_of(&st, &id, &headers, "sync-pull", st.config.rate_limit_sync_pull_max).await?;
        same_device(b.device_id, device.id)?;
        let wanted: Vec<String> = match b.entities {
            Some(e) if !e.is_empty() => e,
            _ => ENTITIES.iter().map(|s| s.to_string()).collect(),
        };
        if let Some(bad) = wanted.iter().find(|w| !ENTITIES.contains(&w.as_str())) {
            return Err(ApiError::validation(format!("Entité inconnue : {bad}.")).with_details(json!({"fields": [
                {"field": "entities", "code": "HORS_LIMITES", "message": "products, prices, clients, deliveries"}]})));
        }
        let v = snapshot(&st, &id.user, &wanted).await?;
        synced(&st, device.id).await;
        Ok(v)
    }
    .await;
    result.map(Json).into_response()
}

#[utoipa::path(get, path = "/api/sync/status", tag = "sync", responses(
    (status = 200, description = "Appareil, événements en attente / en échec, tête et époque du journal")))]
pub async fn status(State(st): State<AppState>, id: Identity, headers: HeaderMap) -> Response {
    let result: Result<Value, ApiError> = async {
        let device = device_of(&st, &id, &headers, "sync-pull", st.config.rate_limit_sync_pull_max).await?;
        let c = st.dbmon.db().conn();
        let now = st.clock.now();
        let counts = store::sync::counts(c, Some(device.id), now - chrono::Duration::days(3650)).await?;
        Ok(json!({
            "serverTime": rfc3339(now),
            "device": {"id": device.id, "isActive": device.is_active, "lastSyncAt": device.last_sync_at.map(rfc3339)},
            "events": {"pending": counts.pending, "failed": counts.failed},
            "feed": {"epoch": store::sync::epoch(c, now).await?, "head": store::sync::head(c).await?,
                     "minCursor": store::sync::min_cursor(c).await?},
            "minAppVersion": st.config.min_device_app_version,
        }))
    }
    .await;
    result.map(Json).into_response()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AckBody {
    pub device_id: Uuid,
    /// At most 500 client event ids whose outcome the device has stored.
    pub event_ids: Vec<Uuid>,
}

#[utoipa::path(post, path = "/api/sync/ack", tag = "sync", request_body = AckBody, responses(
    (status = 200, description = "{\"acked\": n} : les événements APPLIED de l'appareil deviennent ACKED")))]
pub async fn ack(
    State(st): State<AppState>,
    id: Identity,
    headers: HeaderMap,
    ApiJson(b): ApiJson<AckBody>,
) -> Response {
    let result: Result<Value, ApiError> = async {
        let device = device_of(&st, &id, &headers, "sync-push", st.config.rate_limit_sync_push_max).await?;
        same_device(b.device_id, device.id)?;
        if b.event_ids.len() > 500 {
            return Err(bad_batch(format!("Au plus 500 identifiants par accusé ({} reçus).", b.event_ids.len())));
        }
        let ids = b.event_ids;
        let n = st
            .dbmon
            .db()
            .write(|tx| {
                let ids = ids.clone();
                Box::pin(async move { store::sync::ack(&**tx, device.id, &ids).await })
            })
            .await?;
        Ok(json!({"acked": n}))
    }
    .await;
    result.map(Json).into_response()
}

// ---- operations (ADMIN, §7.6) ----------------------------------------------------------------------------------

/// An event for operators: everything but the payload's binaries (kept apart, only named by their hash).
pub fn event_json(e: &store::sync::Event, device: Option<&str>, user: Option<&str>) -> Value {
    json!({
        "id": e.id, "clientEventId": e.client_event_id, "deviceId": e.device_id, "deviceName": device,
        "userId": e.user_id, "userEmail": user, "action": e.action, "entityType": e.entity_type,
        "entityId": e.entity_id, "status": e.status, "attempts": e.attempts, "errorCode": e.error_code,
        "errorMessage": e.error_message, "failureClass": e.failure_class, "serverRef": e.server_ref,
        "occurredAt": rfc3339(e.occurred_at), "createdAt": rfc3339(e.created_at), "appliedAt": e.applied_at.map(rfc3339),
        "nextAttemptAt": e.next_attempt_at.map(rfc3339), "batchId": e.batch_id, "receiptSeq": e.receipt_seq,
        "payload": serde_json::from_str::<Value>(&e.payload).unwrap_or(Value::Null),
    })
}

#[derive(Deserialize, IntoParams, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct EventQuery {
    /// PENDING, APPLIED, ACKED, FAILED.
    pub status: Option<String>,
    /// `24h`, `7d`, `90m`.
    pub since: Option<String>,
    pub device_id: Option<Uuid>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

fn since_of(st: &AppState, since: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    match since.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => domain::sync::parse_since(s)
            .map(|d| Some(st.clock.now() - d))
            .ok_or_else(|| super::admin::field_error("since", "HORS_LIMITES", "Durée attendue : 90m, 24h ou 7d.")),
    }
}

/// The events of a page, with their device's name and user's e-mail.
pub async fn events_page(st: &AppState, q: &EventQuery) -> Result<(Vec<Value>, u64, u64, u64), ApiError> {
    let (page, size) = (super::admin::PageQuery { page: q.page, page_size: q.page_size }).resolve()?;
    let status = q.status.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if status.is_some_and(|s| domain::sync::Stored::parse(&s.to_uppercase()).is_none()) {
        return Err(super::admin::field_error("status", "HORS_LIMITES", "PENDING, APPLIED, ACKED ou FAILED."));
    }
    let since = since_of(st, q.since.as_deref())?;
    let c = st.dbmon.db().conn();
    let (rows, total) = store::sync::page(c, status, since, q.device_id, (page - 1) * size, size).await?;
    let devices = store::identity::all_devices(c).await?;
    let mut items = Vec::with_capacity(rows.len());
    for e in &rows {
        let device = devices.iter().find(|d| d.id == e.device_id).map(|d| d.name.as_str());
        let user = store::identity::user_by_id(c, e.user_id).await?.map(|u| u.email);
        items.push(event_json(e, device, user.as_deref()));
    }
    Ok((items, total, page, size))
}

#[utoipa::path(get, path = "/api/admin/sync/events", tag = "sync", params(EventQuery), responses(
    (status = 200, description = "Événements de synchronisation (liste paginée), sans les binaires")))]
pub async fn list_events(State(st): State<AppState>, Query(q): Query<EventQuery>) -> Response {
    events_page(&st, &q)
        .await
        .map(|(items, total, page, size)| Json(json!({"items": items, "total": total, "page": page, "pageSize": size})))
        .into_response()
}

/// One FAILED event back to PENDING (the trigger clears its attempts; the worker applies it within a cycle).
pub async fn retry_one(st: &AppState, id: Uuid, who: &Identity, ctx: &Ctx) -> Result<store::sync::Event, ApiError> {
    let (actor, now) = (who.actor(ctx), st.clock.now());
    let e = st
        .dbmon
        .db()
        .write(|tx| {
            let actor = actor.clone();
            Box::pin(async move {
                let e = store::sync::retry(&**tx, id).await?;
                let change = store::audit::Change::new("SYNC_EVENT_REQUEUED")
                    .entity("sync_event", e.client_event_id)
                    .after(json!({"action": e.action, "entityId": e.entity_id}));
                store::audit::append(&**tx, &actor, change, now).await?;
                Ok::<_, store::OpError>(e)
            })
        })
        .await
        .map_err(|e| crate::auth::session::op_err(st, e))?;
    Ok(e)
}

#[utoipa::path(post, path = "/api/admin/sync/events/{id}/retry", tag = "sync", responses(
    (status = 200, description = "Remis en file (PENDING)"), (status = 409, description = "TRANSITION_INVALIDE : l'événement n'est pas en échec")))]
pub async fn retry(State(st): State<AppState>, ctx: Ctx, who: Identity, Path(id): Path<Uuid>) -> Response {
    match retry_one(&st, id, &who, &ctx).await {
        Ok(e) => Json(json!({"event": event_json(&e, None, None)})).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryBody {
    /// FAILED (the only status that can be re-queued).
    pub status: String,
    /// `24h`, `7d`…
    pub since: String,
}

/// Every FAILED event created since `since` back to PENDING — the runbook's UPDATE; the count, audited.
pub async fn retry_since(st: &AppState, since: &str, who: &Identity, ctx: &Ctx) -> Result<u64, ApiError> {
    let from = since_of(st, Some(since))?
        .ok_or_else(|| super::admin::field_error("since", "OBLIGATOIRE", "Durée attendue : 90m, 24h ou 7d."))?;
    let (actor, now, since) = (who.actor(ctx), st.clock.now(), since.to_string());
    let n = st
        .dbmon
        .db()
        .write(|tx| {
            let (actor, since) = (actor.clone(), since.clone());
            Box::pin(async move {
                let n = store::sync::retry_failed(&**tx, from).await?;
                let change =
                    store::audit::Change::new("SYNC_EVENTS_REQUEUED").after(json!({"since": since, "requeued": n}));
                store::audit::append(&**tx, &actor, change, now).await?;
                Ok::<_, store::StoreError>(n)
            })
        })
        .await?;
    Ok(n)
}

#[utoipa::path(post, path = "/api/admin/sync/events/retry", tag = "sync", request_body = RetryBody, responses(
    (status = 200, description = "{\"requeued\": n}")))]
pub async fn retry_all(
    State(st): State<AppState>,
    ctx: Ctx,
    who: Identity,
    ApiJson(b): ApiJson<RetryBody>,
) -> Response {
    if b.status.trim().to_uppercase() != "FAILED" {
        return super::admin::field_error(
            "status",
            "HORS_LIMITES",
            "Seuls les événements FAILED se remettent en file.",
        )
        .into_response();
    }
    match retry_since(&st, &b.since, &who, &ctx).await {
        Ok(n) => Json(json!({"requeued": n})).into_response(),
        Err(e) => e.into_response(),
    }
}
