//! `Idempotency-Key` on document-creating POSTs (PLATFORM.md §2.5): a stored answer is replayed with
//! `Idempotent-Replayed: true`; the same key with another body is `409 IDEMPOTENCE_CONFLIT`. The web forms carry
//! their key (DOMAIN's command_id) in a hidden `_commande` field, so a double submission writes once.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::platform::idempotency::{Verdict, request_hash, valid_key, verdict};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Identity;
use crate::platform::errors::ApiError;
use crate::state::AppState;

/// One request's key, with what identifies the request.
#[derive(Debug, Clone)]
pub struct Idem {
    user_id: Uuid,
    key: String,
    route: &'static str,
    hash: String,
}

impl Idem {
    /// From the `Idempotency-Key` header; absent = not idempotent, malformed = 400.
    pub fn from_headers(
        headers: &HeaderMap,
        id: &Identity,
        route: &'static str,
        body: &Value,
    ) -> Result<Option<Idem>, ApiError> {
        let Some(raw) = headers.get("idempotency-key") else { return Ok(None) };
        let key = raw.to_str().unwrap_or_default().trim().to_ascii_lowercase();
        if !valid_key(&key) {
            return Err(ApiError::validation("L'en-tête Idempotency-Key doit être un UUID (v4 ou v7)."));
        }
        Ok(Some(Idem { user_id: id.user.id, key, route, hash: request_hash(body) }))
    }

    /// From a form's hidden `_commande` field; a missing or malformed one is ignored (the form still works).
    pub fn from_form(key: &str, id: &Identity, route: &'static str, body: &Value) -> Option<Idem> {
        let key = key.trim().to_ascii_lowercase();
        valid_key(&key).then(|| Idem { user_id: id.user.id, key, route, hash: request_hash(body) })
    }

    /// The answer already given for this key, if any: `Ok(Some((status, body)))` to replay, or the conflict.
    pub async fn previous(&self, st: &AppState) -> Result<Option<(StatusCode, Value)>, ApiError> {
        let Some(s) = store::idempotency::find(st.dbmon.db().conn(), self.user_id, &self.key, st.clock.now()).await?
        else {
            return Ok(None);
        };
        match verdict(&s.route, &s.request_hash, self.route, &self.hash) {
            Verdict::Replay => Ok(Some((
                StatusCode::from_u16(s.response_status as u16).unwrap_or(StatusCode::OK),
                serde_json::from_str(&s.response_body).unwrap_or(Value::Null),
            ))),
            Verdict::Conflict => Err(ApiError::new(
                StatusCode::CONFLICT,
                "IDEMPOTENCE_CONFLIT",
                "Cette commande a déjà été envoyée avec un contenu différent.",
            )),
        }
    }

    /// Stores the answer in the document's transaction.
    pub async fn record(
        &self,
        tx: &store::WriteTx,
        status: StatusCode,
        body: &Value,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), store::StoreError> {
        store::idempotency::record(
            &**tx,
            self.user_id,
            &self.key,
            "POST",
            self.route,
            &self.hash,
            status.as_u16(),
            &body.to_string(),
            now,
        )
        .await
    }
}

/// Records the answer when there is a key (inside a write closure).
pub async fn record(
    idem: &Option<Idem>,
    tx: &store::WriteTx,
    status: StatusCode,
    body: &Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), store::StoreError> {
    match idem {
        Some(i) => i.record(tx, status, body, now).await,
        None => Ok(()),
    }
}

/// A replayed answer.
pub fn replayed(status: StatusCode, body: Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    r
}

/// Runs a document-creating command under its key: a stored answer is replayed (`replayed = true`); after a
/// failure (a concurrent duplicate collides on the key) the stored answer, if one appeared, replaces the error.
pub async fn run_value<F, Fut>(
    st: &AppState,
    idem: Option<Idem>,
    work: F,
) -> Result<(StatusCode, Value, bool), ApiError>
where
    F: FnOnce(Option<Idem>) -> Fut,
    Fut: std::future::Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    if let Some(i) = &idem
        && let Some((s, b)) = i.previous(st).await?
    {
        return Ok((s, b, true));
    }
    match work(idem.clone()).await {
        Ok((s, b)) => Ok((s, b, false)),
        Err(e) => match &idem {
            Some(i) => match i.previous(st).await {
                Ok(Some((s, b))) => Ok((s, b, true)),
                _ => Err(e),
            },
            None => Err(e),
        },
    }
}

/// [`run_value`] as an API response.
pub async fn run<F, Fut>(st: &AppState, idem: Option<Idem>, work: F) -> Response
where
    F: FnOnce(Option<Idem>) -> Fut,
    Fut: std::future::Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    match run_value(st, idem, work).await {
        Ok((s, b, true)) => replayed(s, b),
        Ok((s, b, false)) => (s, Json(b)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A document-creating API call: reads the `Idempotency-Key` header for `route` and runs `work` under it.
pub async fn handle<F, Fut>(
    st: &AppState,
    headers: &HeaderMap,
    id: &Identity,
    route: &'static str,
    body: Value,
    work: F,
) -> Response
where
    F: FnOnce(Option<Idem>) -> Fut,
    Fut: std::future::Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    match Idem::from_headers(headers, id, route, &body) {
        Ok(idem) => run(st, idem, work).await,
        Err(e) => e.into_response(),
    }
}

/// Writes a document in one transaction and stores its answer under the key in that same transaction: `work` writes
/// and returns the response body (201).
pub async fn create<F>(
    st: &AppState,
    idem: &Option<Idem>,
    now: chrono::DateTime<chrono::Utc>,
    work: F,
) -> Result<(StatusCode, Value), ApiError>
where
    F: for<'t> Fn(&'t store::WriteTx) -> futures_util::future::BoxFuture<'t, Result<Value, store::OpError>>
        + Send
        + Sync,
{
    let body = st
        .dbmon
        .db()
        .write(|tx| {
            let (doc, idem) = (work(tx), idem.clone());
            Box::pin(async move {
                let body = doc.await?;
                record(&idem, tx, StatusCode::CREATED, &body, now).await?;
                Ok(body)
            })
        })
        .await
        .map_err(|e| crate::auth::session::op_err(st, e))?;
    Ok((StatusCode::CREATED, body))
}
