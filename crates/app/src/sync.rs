//! Applying what devices push (PLATFORM.md §7.2–7.3, DOMAIN.md §12.3): each event in its own transaction, exactly
//! once by its client id; a business refusal rolls back to a savepoint taken after the event row, so the refusal is
//! stored with the event; a transient failure leaves it PENDING for the worker, which retries with backoff. The
//! event runs through the same store commands as the web and the API, as its user, with the same role table.

use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use domain::delivery::ValidationMode;
use domain::identity::Role;
use domain::rejection::Rejection;
use domain::sync::{Action, Known, Stored};
use serde_json::{Value, json};
use store::audit::{Actor, Change};
use store::delivery::{Proof, ScanAttempt, Validation};
use store::sync::{Audience, Event, Received};
use store::{ConnectionTrait, OpError, StoreError};
use uuid::Uuid;

use crate::state::AppState;

/// An event as a device sent it, its shape already read.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub id: Uuid,
    pub entity_type: String,
    pub entity_id: String,
    pub action: String,
    pub occurred_at: DateTime<Utc>,
    pub payload: Value,
    pub checksum: String,
    pub batch_id: Uuid,
    pub batch_index: i32,
}

/// The answer for one event (§7.1 `results[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub id: Uuid,
    /// APPLIED, DUPLICATE, REJECTED or DEFERRED.
    pub status: &'static str,
    pub code: Option<String>,
    pub message: Option<String>,
    pub details: Option<Value>,
    pub server_ref: Option<String>,
}

impl Outcome {
    fn new(id: Uuid, status: &'static str) -> Outcome {
        Outcome { id, status, code: None, message: None, details: None, server_ref: None }
    }

    fn with(mut self, code: &str, message: impl Into<String>) -> Outcome {
        self.code = Some(code.to_string());
        self.message = Some(message.into());
        self
    }

    pub fn deferred(id: Uuid, code: &str, message: &str) -> Outcome {
        Outcome::new(id, "DEFERRED").with(code, message)
    }

    /// Whether the device keeps the event (no final outcome yet).
    pub fn retryable(&self) -> bool {
        self.status == "DEFERRED"
    }

    pub fn json(&self) -> Value {
        let mut v = json!({"id": self.id, "status": self.status, "retryable": self.retryable()});
        for (k, x) in [("code", &self.code), ("message", &self.message), ("serverRef", &self.server_ref)] {
            if let Some(x) = x {
                v[k] = json!(x);
            }
        }
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }
}

/// The event could not be processed at all (not even stored): the database is unreachable (the push stops there,
/// §7.2 step 6) or too busy to begin (the device sends it again).
#[derive(Debug)]
pub struct Unreachable(pub StoreError);

fn unreachable(e: StoreError) -> Unreachable {
    Unreachable(e)
}

impl Unreachable {
    /// Whether the database itself is gone (rather than busy for a moment).
    pub fn is_down(&self) -> bool {
        matches!(self.0, StoreError::Unavailable(_))
    }
}

/// How an attempt at applying went, before its outcome is stored.
enum Attempted {
    Final(Outcome),
    /// Rolled back on a transient error: store the attempt in a separate transaction.
    Transient(String),
}

const BINARIES: [(&str, &str, usize); 2] = [
    ("signatureBase64", "image/png", domain::delivery::SIGNATURE_MAX_BYTES),
    ("photoJpegBase64", "image/jpeg", domain::delivery::PHOTO_MAX_BYTES),
];

/// A decoded proof: (payload field, content type, bytes).
type Binary = (&'static str, &'static str, Vec<u8>);

/// Decodes the inline proofs of `DELIVERY_DELIVERED` (§7: photo ≤ 1 MiB, signature ≤ 256 KiB once decoded). They are
/// kept apart, by hash; the stored payload only names them.
fn take_binaries(action: Action, payload: &Value) -> Result<Vec<Binary>, Rejection> {
    let mut out = Vec::new();
    if action != Action::DeliveryDelivered {
        return Ok(out);
    }
    for (field, content_type, max) in BINARIES {
        let Some(text) = payload.get(field).and_then(Value::as_str) else { continue };
        let data = text.split_once(',').filter(|(h, _)| h.starts_with("data:")).map_or(text, |(_, d)| d);
        let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|_| {
            Rejection::new("VALIDATION_ERROR", 400, format!("Données invalides pour {}.", action.code())).with_details(
                json!({"fields": [{"field": field, "code": "TYPE_INVALIDE", "message": "Valeur attendue : du base64."}]}),
            )
        })?;
        if bytes.len() > max {
            return Err(Rejection::new("PAYLOAD_TOO_LARGE", 413, format!("{field} dépasse {} Kio.", max / 1024))
                .with_details(json!({"field": field, "bytes": bytes.len(), "max": max})));
        }
        out.push((field, content_type, bytes));
    }
    Ok(out)
}

/// The payload as it will be stored (proofs replaced by their attachment) and a refusal of its proofs, if any.
async fn keep_binaries(st: &AppState, ev: &Incoming, hash: &str) -> Result<(Value, Option<Rejection>), Unreachable> {
    let mut payload = ev.payload.clone();
    let Some(action) = Action::parse(&ev.action).filter(|a| *a == Action::DeliveryDelivered) else {
        return Ok((payload, None));
    };
    if domain::sync::check_event(&ev.action, &ev.entity_type, &ev.payload).is_err()
        || !ev.checksum.eq_ignore_ascii_case(hash)
    {
        return Ok((payload, None));
    }
    let binaries = match take_binaries(action, &ev.payload) {
        Ok(b) => b,
        Err(r) => return Ok((payload, Some(r))),
    };
    if binaries.is_empty() {
        return Ok((payload, None));
    }
    let now = st.clock.now();
    let kept = binaries.clone();
    st.dbmon
        .db()
        .write(|t| {
            let kept = kept.clone();
            Box::pin(async move {
                for (_, content_type, bytes) in &kept {
                    store::sync::put_attachment(&**t, content_type, bytes, now).await?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .await
        .map_err(unreachable)?;
    for (field, _, bytes) in binaries {
        payload[field] = json!({"attachment": format!("sha256:{}", domain::sync::sha256_hex(&bytes))});
    }
    Ok((payload, None))
}

/// A payload as it may be kept in a failed event: the binaries dropped, their size said.
fn without_binaries(payload: &Value) -> Value {
    let mut p = payload.clone();
    for (field, _, _) in BINARIES {
        if let Some(s) = p.get(field).and_then(Value::as_str).map(str::len) {
            p[field] = json!({"omitted": s});
        }
    }
    p
}

/// Processes one pushed event (§7.2): its outcome, or `Unreachable` when the database is gone.
pub async fn process(st: &AppState, device_id: Uuid, user_id: Uuid, ev: Incoming) -> Result<Outcome, Unreachable> {
    let db = st.dbmon.db();
    let hash = domain::sync::checksum(&ev.payload);
    // Inline proofs are decoded and kept first, in a transaction of their own: when the event's transaction fails
    // transiently and the event is stored again PENDING, the proofs it names are there. Content-addressed, so a
    // repeat is a no-op; one no event names is dropped by the retention job.
    let (stored_payload, binaries_problem) = keep_binaries(st, &ev, &hash).await?;
    // Two pushes of one new id race at the insert: the loser sees the winner's row on its next turn.
    for _ in 0..3 {
        let now = st.clock.now();
        let tx = db.begin_write().await.map_err(unreachable)?;
        let known = store::sync::by_client_id(&*tx, ev.id).await.map_err(unreachable)?;
        if let Some(known) = known {
            let stored = Stored::parse(&known.status).unwrap_or(Stored::Failed);
            let due = known.next_attempt_at.is_none_or(|t| t <= now);
            let outcome = match domain::sync::on_known(stored, known.payload_hash == hash, due) {
                Known::Conflict => Outcome::new(ev.id, "REJECTED").with(
                    "IDEMPOTENCE_CONFLIT",
                    "Cet identifiant d'événement a déjà servi pour un autre contenu : créez un nouvel envoi.",
                ),
                Known::Duplicate => {
                    Outcome { server_ref: known.server_ref.clone(), ..Outcome::new(ev.id, "DUPLICATE") }
                }
                Known::Rejected => rejected_as_stored(&known),
                Known::Deferred => waiting(&known),
                Known::AttemptNow => match store::sync::claim(&*tx, known.id).await.map_err(unreachable)? {
                    None => waiting(&known),
                    Some(row) if store::sync::older_pending(&*tx, &row).await.map_err(unreachable)? => queued(&row),
                    Some(row) => return settle(st, tx, row, now).await,
                },
            };
            let _ = tx.rollback().await;
            return Ok(outcome);
        }

        // A new event: checked, stored, then applied in the same transaction.
        let mut problem = domain::sync::check_event(&ev.action, &ev.entity_type, &ev.payload).err();
        if problem.is_none() && !ev.checksum.eq_ignore_ascii_case(&hash) {
            problem = Some(Rejection::new(
                "CHECKSUM_MISMATCH",
                400,
                "Somme de contrôle incorrecte : le contenu a été altéré pendant l'envoi.",
            ));
        }
        if problem.is_none() {
            problem = binaries_problem.clone();
        }
        let payload = if problem.is_some() { without_binaries(&ev.payload) } else { stored_payload.clone() };

        let received = Received {
            client_event_id: ev.id,
            device_id,
            user_id,
            entity_type: ev.entity_type.clone(),
            entity_id: ev.entity_id.clone(),
            action: ev.action.clone(),
            payload,
            payload_hash: hash.clone(),
            occurred_at: ev.occurred_at,
            batch_id: ev.batch_id,
            batch_index: ev.batch_index,
        };
        let row = match store::sync::receive(&*tx, received, now).await {
            Ok(row) => row,
            Err(e @ StoreError::Unavailable(_)) => return Err(Unreachable(e)),
            Err(_) => {
                // Most likely the unique client id taken by a concurrent push of the same event: look again.
                let _ = tx.rollback().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if let Some(r) = problem {
            let outcome = refuse(&*tx, &row, r, "business", now).await.map_err(unreachable)?;
            tx.commit().await.map_err(unreachable)?;
            return Ok(outcome);
        }
        if store::sync::older_pending(&*tx, &row).await.map_err(unreachable)? {
            tx.commit().await.map_err(unreachable)?;
            return Ok(queued(&row));
        }
        return settle(st, tx, row, now).await;
    }
    Ok(Outcome::deferred(ev.id, "TRANSIENT_ERROR", "Envoi concurrent du même événement : réessayez."))
}

fn rejected_as_stored(e: &Event) -> Outcome {
    let code = e.error_code.clone().unwrap_or_else(|| "INTERNAL_ERROR".into());
    Outcome::new(e.client_event_id, "REJECTED").with(&code, e.error_message.clone().unwrap_or_default())
}

fn waiting(e: &Event) -> Outcome {
    Outcome::deferred(e.client_event_id, "TRANSIENT_ERROR", "Événement en cours de traitement : réessayez plus tard.")
}

fn queued(e: &Event) -> Outcome {
    Outcome::deferred(e.client_event_id, "QUEUED", "En attente d'un événement antérieur sur le même objet.")
}

/// The outcome of a final refusal: stored FAILED with its class, and sent to the user's feed.
async fn refuse<C: ConnectionTrait>(
    c: &C,
    row: &Event,
    r: Rejection,
    class: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    store::sync::fail(c, row.id, r.code, &r.message, class, row.attempts).await?;
    let mut data = json!({"status": "FAILED", "code": r.code, "message": r.message, "action": row.action,
                          "entityType": row.entity_type, "entityId": row.entity_id});
    if !r.details.is_null() {
        data["details"] = r.details.clone();
    }
    store::sync::append(
        c,
        "SYNC_EVENT",
        &row.client_event_id.to_string(),
        "upsert",
        &Audience::User(row.user_id),
        Some(data),
        now,
    )
    .await?;
    let mut o = Outcome::new(row.client_event_id, "REJECTED").with(r.code, r.message);
    o.details = (!r.details.is_null()).then_some(r.details);
    Ok(o)
}

/// Applies a claimed PENDING event in `tx` and stores its outcome: APPLIED, FAILED (business refusal, or a bug), or —
/// on a transient failure — still PENDING with one more failed attempt and its next due time.
pub async fn settle(
    st: &AppState,
    tx: store::db::WriteTx,
    row: Event,
    now: DateTime<Utc>,
) -> Result<Outcome, Unreachable> {
    match attempt(st, &tx, &row, now).await {
        Ok(Attempted::Final(o)) => {
            tx.commit().await.map_err(unreachable)?;
            metrics::counter!("sync_event_outcomes_total", "action" => row.action.clone(), "outcome" => o.status)
                .increment(1);
            Ok(o)
        }
        Ok(Attempted::Transient(message)) => {
            let _ = tx.rollback().await;
            retry_later(st, &row, &message).await
        }
        Err(e) => {
            let _ = tx.rollback().await;
            match e {
                e @ StoreError::Unavailable(_) => Err(Unreachable(e)),
                other => retry_later(st, &row, &other.to_string()).await,
            }
        }
    }
}

/// After a transient failure (the transaction is gone): the event is stored — again, if it was new — PENDING with one
/// more failed attempt, due after the backoff; after the 10th it is FAILED (technical), for an operator.
async fn retry_later(st: &AppState, row: &Event, message: &str) -> Result<Outcome, Unreachable> {
    tracing::warn!(event = %row.client_event_id, action = %row.action, error = %message, "sync event deferred");
    let failed = row.attempts + 1;
    let jitter = (Uuid::new_v4().as_u128() % 401) as i64 - 200;
    let delay = domain::sync::backoff_ms(failed as u32, jitter);
    let (row, message) = (row.clone(), message.to_string());
    let now = st.clock.now();
    let r = st
        .dbmon
        .db()
        .write(|tx| {
            let (row, message) = (row.clone(), message.clone());
            Box::pin(async move {
                if store::sync::by_id(&**tx, row.id).await?.is_none() {
                    let received = Received {
                        client_event_id: row.client_event_id,
                        device_id: row.device_id,
                        user_id: row.user_id,
                        entity_type: row.entity_type.clone(),
                        entity_id: row.entity_id.clone(),
                        action: row.action.clone(),
                        payload: serde_json::from_str(&row.payload).unwrap_or(Value::Null),
                        payload_hash: row.payload_hash.clone(),
                        occurred_at: row.occurred_at,
                        batch_id: row.batch_id,
                        batch_index: row.batch_index,
                    };
                    let stored = store::sync::receive(&**tx, received, now).await?;
                    return retry_stored(
                        &**tx,
                        &Event { attempts: row.attempts, ..stored },
                        failed,
                        delay,
                        &message,
                        now,
                    )
                    .await;
                }
                retry_stored(&**tx, &row, failed, delay, &message, now).await
            })
        })
        .await;
    r.map_err(unreachable)
}

async fn retry_stored<C: ConnectionTrait>(
    c: &C,
    row: &Event,
    failed: i32,
    delay: Option<i64>,
    message: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    match delay {
        Some(ms) => {
            store::sync::defer(c, row.id, failed, now + chrono::Duration::milliseconds(ms), message).await?;
            Ok(Outcome::deferred(
                row.client_event_id,
                "TRANSIENT_ERROR",
                "Erreur passagère du serveur : nouvel essai automatique.",
            ))
        }
        None => {
            let r =
                Rejection::new("INTERNAL_ERROR", 500, "Échec répété de l'application : un opérateur doit intervenir.");
            refuse(c, &Event { attempts: failed, ..row.clone() }, r, "technical", now).await
        }
    }
}

/// Codes of events refused before any attempt: re-queuing them cannot make them valid.
const ARRIVAL_REFUSALS: [&str; 3] = ["VALIDATION_ERROR", "CHECKSUM_MISMATCH", "PAYLOAD_TOO_LARGE"];

/// One attempt in `tx`: a savepoint, the command, then the outcome written (the caller commits).
async fn attempt(
    st: &AppState,
    tx: &store::db::WriteTx,
    row: &Event,
    now: DateTime<Utc>,
) -> Result<Attempted, StoreError> {
    let c: &store::DatabaseTransaction = tx;
    let user = store::identity::user_by_id(c, row.user_id).await?;
    let Some(user) = user else {
        let r = Rejection::non_trouve("Utilisateur");
        return Ok(Attempted::Final(refuse(c, row, r, "business", now).await?));
    };
    let actor = Actor {
        user_id: Some(user.id),
        role: Some(user.role.clone()),
        label: Some(user.email.clone()),
        device_id: Some(row.device_id.to_string()),
        ip: None,
        // The audit trail names the origin and the event (PLATFORM.md §7.2 step 5: origin MOBILE_SYNC).
        request_id: Some(format!("MOBILE_SYNC:{}", row.client_event_id)),
    };
    // Refused on arrival (shape, checksum, size) and re-queued by an operator: still refused, with the same code.
    if let Some(code) = row.error_code.as_deref().filter(|c| ARRIVAL_REFUSALS.contains(c)) {
        let message = row.error_message.clone().unwrap_or_default();
        let r = Rejection::new(
            ARRIVAL_REFUSALS.iter().find(|k| **k == code).copied().unwrap_or("VALIDATION_ERROR"),
            400,
            message,
        );
        return Ok(Attempted::Final(refuse(c, row, r, "business", now).await?));
    }
    let payload: Value = serde_json::from_str(&row.payload).map_err(|e| StoreError::Other(e.to_string()))?;
    let savepoint = tx.savepoint().await?;
    let result = apply(st, &savepoint, row, &payload, &user, &actor, now).await;
    match result {
        Ok(applied) => {
            savepoint.commit().await?;
            store::sync::applied(c, row.id, applied.clone(), now).await?;
            let data = json!({"status": "APPLIED", "serverRef": applied, "action": row.action,
                              "entityType": row.entity_type, "entityId": row.entity_id});
            let me = Audience::User(row.user_id);
            store::sync::append(c, "SYNC_EVENT", &row.client_event_id.to_string(), "upsert", &me, Some(data), now)
                .await?;
            let o = Outcome { server_ref: applied, ..Outcome::new(row.client_event_id, "APPLIED") };
            Ok(Attempted::Final(o))
        }
        Err(OpError::Rejected(r)) => {
            savepoint.rollback().await?;
            let r = explain(c, row, &payload, r).await?;
            after_refusal(c, row, &payload, &actor, &r, now).await?;
            Ok(Attempted::Final(refuse(c, row, r, "business", now).await?))
        }
        Err(OpError::Store(StoreError::Conflict(m))) => Ok(Attempted::Transient(m)),
        Err(OpError::Store(StoreError::Unavailable(m))) => Err(StoreError::Unavailable(m)),
        Err(OpError::Store(StoreError::Other(m))) => {
            // A bug, not the driver's doing: kept FAILED (technical) for operators to re-queue after the fix.
            tracing::error!(event = %row.client_event_id, action = %row.action, error = %m, "sync event failed");
            savepoint.rollback().await?;
            let r = Rejection::new(
                "INTERNAL_ERROR",
                500,
                "Erreur interne du serveur : l'événement sera rejoué après correction.",
            );
            Ok(Attempted::Final(refuse(c, row, r, "technical", now).await?))
        }
    }
}

/// The details a device needs to show a refusal (§7.5): who validated first and when; the invoice's figures.
async fn explain<C: ConnectionTrait>(
    c: &C,
    row: &Event,
    payload: &Value,
    r: Rejection,
) -> Result<Rejection, StoreError> {
    match r.code {
        "LIVRAISON_DEJA_VALIDEE" => {
            let key = delivery_key(qr_delivery_id(payload), row);
            if let Some(d) = store::delivery::find(c, &key).await? {
                let by = match d.validated_by {
                    Some(u) => {
                        store::identity::user_by_id(c, u).await?.map(|u| format!("{} {}", u.first_name, u.last_name))
                    }
                    None => None,
                };
                let details = json!({"validatedBy": by, "validatedAt": d.validated_at, "reference": d.reference});
                let message = domain::sync::deja_validee_message(d.validated_at.map(|t| t.timestamp()), by.as_deref());
                return Ok(Rejection { message, details, ..r });
            }
            Ok(r)
        }
        "MONTANT_SUPERIEUR_RESTANT" => {
            let key = payload["invoiceId"].as_str().unwrap_or_default();
            if let Some(i) = store::sales::find_invoice(c, key).await? {
                let remaining = store::sales::remaining(c, &i).await?;
                let details = json!({"invoiceTotal": i.net, "alreadyPaid": i.net - remaining, "remaining": remaining,
                                     "attempted": payload["amount"]});
                return Ok(Rejection { details, ..r });
            }
            Ok(r)
        }
        _ => Ok(r),
    }
}

/// The scanned QR's BL id, unchecked: only to name the BL in a refusal.
fn qr_delivery_id(payload: &Value) -> Option<String> {
    let token = payload["qrToken"].as_str()?;
    token.split(':').nth(2).map(str::to_string)
}

fn delivery_key(from_qr: Option<String>, row: &Event) -> String {
    from_qr.unwrap_or_else(|| row.entity_id.clone())
}

/// What a refused command leaves besides its stored outcome: a refused validation is in the scan log, a refused QR
/// in the audit too (as online, DOMAIN.md §12.1).
async fn after_refusal<C: ConnectionTrait>(
    c: &C,
    row: &Event,
    payload: &Value,
    actor: &Actor,
    r: &Rejection,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if row.action != Action::DeliveryValidated.code() {
        return Ok(());
    }
    let reference = match payload["qrToken"].as_str() {
        Some(t) => t.split(':').nth(3).map(str::to_string),
        None => payload["reference"].as_str().map(str::to_string),
    };
    store::delivery::log_scan(c, scan_attempt(row, payload, actor, reference.clone(), r.code.to_string()), now).await?;
    if r.code.starts_with("QR_") {
        let change = Change::new("QR_REFUSED")
            .entity("delivery", reference.unwrap_or_default())
            .after(json!({"outcome": r.code, "origin": "MOBILE_SYNC"}));
        store::audit::append(c, actor, change, now).await?;
    }
    Ok(())
}

fn scan_attempt(
    row: &Event,
    payload: &Value,
    actor: &Actor,
    reference: Option<String>,
    outcome: String,
) -> ScanAttempt {
    let gps = match (payload["latitude"].as_f64(), payload["longitude"].as_f64()) {
        (Some(lat), Some(lon)) => Some((lat, lon, None)),
        _ => None,
    };
    ScanAttempt {
        user_id: actor.user_id,
        device_id: Some(row.device_id.to_string()),
        ip: None,
        user_agent: Some("MOBILE_SYNC".into()),
        gps,
        mode: if payload["qrToken"].is_string() { "QR" } else { "MANUEL" },
        payload: payload["qrToken"].as_str().map(str::to_string),
        reference,
        outcome,
    }
}

/// The web/API route whose role rule a device action follows (the same table the guard enforces).
fn route_of(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::DeliveryValidated => ("POST", "/api/deliveries/scan"),
        Action::DeliveryDelivered => ("POST", "/api/deliveries/{key}/deliver"),
        Action::DeliveryCancelled => ("POST", "/api/deliveries/{key}/cancel"),
        Action::PaymentRecorded => ("POST", "/api/invoices/{key}/payments"),
        Action::InvoiceDraftCreated => ("POST", "/api/invoices"),
        Action::ClientContactUpdated => ("PUT", "/api/clients/{code}"),
    }
}

fn text(p: &Value, k: &str) -> Option<String> {
    p.get(k).and_then(Value::as_str).map(str::to_string)
}

fn date(p: &Value, k: &str) -> Option<chrono::NaiveDate> {
    p.get(k).and_then(Value::as_str).and_then(|s| s.parse().ok())
}

async fn assigned<C: ConnectionTrait>(
    c: &C,
    key: &str,
    user: &store::identity::User,
) -> Result<store::delivery::Delivery, OpError> {
    let d = store::delivery::find(c, key)
        .await?
        .ok_or_else(|| Rejection::new("LIVRAISON_INTROUVABLE", 404, "Livraison introuvable."))?;
    let driver = d.driver_user_id.map(|u| u.to_string());
    let is_admin = store::identity::role_of(user) == Role::Admin;
    domain::sync::check_assigned(is_admin, driver.as_deref(), &user.id.to_string(), &d.reference)?;
    Ok(d)
}

/// Runs the event's command as its user; the server's reference of what it made.
async fn apply<C: ConnectionTrait>(
    st: &AppState,
    c: &C,
    row: &Event,
    p: &Value,
    user: &store::identity::User,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<String>, OpError> {
    let action = Action::parse(&row.action).ok_or_else(|| StoreError::Other(format!("action {}", row.action)))?;
    let (method, path) = route_of(action);
    let role = store::identity::role_of(user);
    if crate::access::lookup(method, path).is_none_or(|a| a.check(Some(role)).is_err()) {
        return Err(Rejection::new("ACCES_REFUSE", 403, "Vous n'avez pas les droits pour cette action.").into());
    }
    let command_id = Some(row.client_event_id.to_string());
    match action {
        Action::DeliveryValidated => {
            let secret = st.secrets.get().map(|s| s.qr.clone()).unwrap_or_default();
            let d = match text(p, "qrToken") {
                Some(token) => {
                    // The code is checked first (a forged one is QR_SIGNATURE_INVALIDE), then whose BL it is.
                    if let domain::delivery::Qr::Delivery { uuid, .. } =
                        domain::delivery::parse_qr(&secret, &token, domain::delivery::QrType::Dlv)?
                    {
                        assigned(c, &uuid, user).await?;
                    }
                    store::delivery::validate_scanned(c, &secret, &token, command_id, actor, now).await?
                }
                None => {
                    let key = text(p, "reference").unwrap_or_default();
                    assigned(c, &key, user).await?;
                    let v = Validation { mode: ValidationMode::Manuel, note: text(p, "note"), command_id };
                    store::delivery::validate(c, &key, v, actor, now).await?
                }
            };
            let log = scan_attempt(row, p, actor, Some(d.reference.clone()), "OK".into());
            store::delivery::log_scan(c, log, now).await?;
            Ok(Some(d.reference))
        }
        Action::DeliveryDelivered => {
            let d = assigned(c, &row.entity_id, user).await?;
            let planned: Vec<(String, i64)> = store::delivery::lines_of(c, d.id)
                .await?
                .into_iter()
                .map(|l| (l.product_id.to_string(), l.quantity))
                .collect();
            let delivered: Vec<(String, i64)> = p["lines"]
                .as_array()
                .map(|ls| {
                    ls.iter()
                        .map(|l| {
                            (
                                l["productId"].as_str().unwrap_or_default().to_string(),
                                l["quantityDelivered"].as_i64().unwrap_or(0),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            domain::sync::check_delivered(&planned, &delivered)?;
            let mut binaries = Vec::new();
            for field in ["signatureBase64", "photoJpegBase64"] {
                binaries.push(match p[field]["attachment"].as_str() {
                    Some(r) => store::sync::attachment(c, r).await?,
                    None => None,
                });
            }
            let photo = binaries.pop().flatten();
            let signature = binaries.pop().flatten();
            let at = text(p, "deliveredAt")
                .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                .map(|t| t.with_timezone(&Utc));
            let proof = Proof {
                recipient_name: text(p, "recipientName").unwrap_or_default(),
                signature_png: signature,
                photo_jpeg: photo,
                gps: None,
                at,
            };
            let d = store::delivery::deliver(c, &d.id.to_string(), proof, actor, now).await?;
            Ok(Some(d.reference))
        }
        Action::DeliveryCancelled => {
            let d = assigned(c, &row.entity_id, user).await?;
            let reason = text(p, "reason").unwrap_or_default();
            let d = store::delivery::cancel(c, &d.id.to_string(), &reason, actor, now).await?;
            Ok(Some(d.reference))
        }
        Action::PaymentRecorded => {
            let input = domain::sales::PaymentInput {
                method: text(p, "method").unwrap_or_default(),
                amount: p["amount"].as_i64().unwrap_or(0),
                date: date(p, "date"),
                cheque_number: text(p, "chequeNumber"),
                bank_name: text(p, "bank"),
                cheque_date: date(p, "chequeDate"),
                bank_reference: text(p, "bankReference"),
            };
            let key = text(p, "invoiceId").unwrap_or_default();
            let (payment, invoice) = store::sales::record_payment(c, &key, input, text(p, "note"), actor, now).await?;
            // The payment itself goes to its author's feed only (a driver never sees another's payments).
            let data = json!({"id": payment.id, "reference": payment.reference, "invoiceId": invoice.id,
                              "invoiceReference": invoice.reference, "amount": payment.amount, "method": payment.method,
                              "date": payment.payment_date, "clientEventId": row.client_event_id});
            let me = Audience::User(row.user_id);
            store::sync::append(c, "PAYMENT", &payment.id.to_string(), "upsert", &me, Some(data), now).await?;
            Ok(Some(payment.reference))
        }
        Action::InvoiceDraftCreated => {
            let id = Uuid::parse_str(&row.entity_id).map_err(|_| {
                Rejection::new("VALIDATION_ERROR", 400, "L'identifiant de la facture doit être un UUID.")
                    .with_details(json!({"field": "entityId"}))
            })?;
            let client_id = text(p, "clientId").and_then(|s| Uuid::parse_str(&s).ok()).unwrap_or_default();
            let client =
                store::catalogue::client_by_id(c, client_id).await?.ok_or_else(|| Rejection::non_trouve("Client"))?;
            let mut lines = Vec::new();
            for l in p["lines"].as_array().into_iter().flatten() {
                let pid = l["productId"].as_str().and_then(|s| Uuid::parse_str(s).ok()).unwrap_or_default();
                let product = store::stock::product(c, pid).await?.ok_or_else(|| Rejection::non_trouve("Produit"))?;
                // The server prices every line (DOMAIN.md §12.3): a device's unit price is not trusted.
                lines.push(store::sales::NewLine {
                    product,
                    quantity: l["quantity"].as_i64().unwrap_or(0),
                    unit_price: None,
                    price_reason: None,
                    discount: 0,
                    rate_bp: None,
                });
            }
            let method = text(p, "paymentMethod").and_then(|m| domain::timbre::Method::parse(&m));
            let new = store::sales::NewInvoice { client, method, notes: None, lines };
            let i = match store::sales::find_invoice(c, &id.to_string()).await? {
                Some(_) => store::sales::update_draft(c, &id.to_string(), new, actor, now).await?,
                None => store::sales::create_draft_as(c, id, new, actor, now).await?,
            };
            Ok(i.reference.or(Some(i.id.to_string())))
        }
        Action::ClientContactUpdated => {
            let client = match Uuid::parse_str(&row.entity_id) {
                Ok(id) => store::catalogue::client_by_id(c, id).await?,
                Err(_) => store::catalogue::client_by_code(c, &row.entity_id).await?,
            }
            .ok_or_else(|| Rejection::non_trouve("Client"))?;
            let fields: Vec<(&str, String)> = ["phone", "address", "contactName", "email"]
                .into_iter()
                .filter_map(|f| text(p, f).map(|v| (f, v)))
                .collect();
            let (cl, _) = store::catalogue::update_contact(c, client.id, &fields, row.occurred_at, actor, now).await?;
            Ok(Some(cl.code))
        }
    }
}

// ---- the retry worker (job `sync-worker`, §7.3) ----------------------------------------------------------------

/// One cycle: due events in arrival order until none is left, 50 were applied or 1.5 s went by. The count.
pub async fn work(st: &AppState) -> Result<usize, String> {
    let started = Instant::now();
    let mut done = 0;
    while done < 50 && started.elapsed() < Duration::from_millis(1500) {
        let now = st.clock.now();
        let tx = st.dbmon.db().begin_write().await.map_err(|e| e.to_string())?;
        let Some(row) = store::sync::next_due(&*tx, now).await.map_err(|e| e.to_string())? else {
            let _ = tx.rollback().await;
            break;
        };
        let o = settle(st, tx, row, now).await.map_err(|e| e.0.to_string())?;
        tracing::info!(event = %o.id, status = o.status, code = ?o.code, "sync event retried");
        done += 1;
    }
    Ok(done)
}
