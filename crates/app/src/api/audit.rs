//! The audit log (DOMAIN.md §16): newest first with a cursor, one entry, and the chain verification.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use domain::rejection::Rejection;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use uuid::Uuid;

use super::admin::field_error;
use crate::platform::errors::ApiError;
use crate::state::AppState;

pub fn entry_json(r: &store::audit::Row) -> Value {
    let parse = |s: &Option<String>| s.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok());
    json!({
        "seq": r.seq, "at": r.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "actorId": r.actor_id,
        "actorRole": r.actor_role, "actorLabel": r.actor_label, "deviceId": r.device_id, "ip": r.ip,
        "requestId": r.request_id, "action": r.action, "severity": r.severity, "entityType": r.entity_type,
        "entityId": r.entity_id, "before": parse(&r.before), "after": parse(&r.after), "reason": r.reason,
        "commandId": r.command_id, "prevHash": r.prev_hash, "hash": r.hash,
    })
}

#[derive(Deserialize, IntoParams, Debug, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct AuditQuery {
    pub action: Option<String>,
    pub user_id: Option<Uuid>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub severity: Option<String>,
    /// First day (Africa/Algiers), `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day included (Africa/Algiers), `YYYY-MM-DD`.
    pub to: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u64>,
}

/// Midnight in Algiers (UTC+1) of a business date, as a UTC instant.
fn algiers_midnight(d: &str, field: &str) -> Result<DateTime<Utc>, ApiError> {
    let date = NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .map_err(|_| field_error(field, "DATE_INVALIDE", "Date attendue au format AAAA-MM-JJ."))?;
    let t = date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc() - chrono::Duration::hours(1);
    Ok(t)
}

impl AuditQuery {
    pub fn filter(&self) -> Result<(store::audit::Filter, u64), ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(field_error("limit", "HORS_LIMITES", "limit de 1 à 200"));
        }
        let before_seq = match &self.cursor {
            Some(c) => {
                Some(c.parse::<i64>().map_err(|_| field_error("cursor", "CURSEUR_INVALIDE", "Curseur invalide."))?)
            }
            None => None,
        };
        let nonempty = |s: &Option<String>| s.as_ref().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        Ok((
            store::audit::Filter {
                action: nonempty(&self.action).map(|a| a.to_uppercase()),
                actor_id: self.user_id,
                entity_type: nonempty(&self.entity_type),
                entity_id: nonempty(&self.entity_id),
                severity: nonempty(&self.severity).map(|a| a.to_uppercase()),
                from: nonempty(&self.from).map(|d| algiers_midnight(&d, "from")).transpose()?,
                to: nonempty(&self.to)
                    .map(|d| algiers_midnight(&d, "to").map(|t| t + chrono::Duration::days(1)))
                    .transpose()?,
                before_seq,
            },
            limit,
        ))
    }
}

/// One page of entries (newest first) and whether more exist.
pub async fn page(st: &AppState, q: &AuditQuery) -> Result<(Vec<store::audit::Row>, Option<String>), ApiError> {
    let (f, limit) = q.filter()?;
    let mut rows = store::audit::list(st.dbmon.db(), &f, limit + 1).await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(|r| r.seq.to_string()) } else { None };
    Ok((rows, next))
}

#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditQuery), responses((status = 200, description = "{items, nextCursor, hasMore}")))]
pub async fn list(State(st): State<AppState>, Query(q): Query<AuditQuery>) -> Response {
    match page(&st, &q).await {
        Ok((rows, next)) => Json(json!({
            "items": rows.iter().map(entry_json).collect::<Vec<_>>(),
            "hasMore": next.is_some(), "nextCursor": next,
        }))
        .into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(get, path = "/api/audit/{seq}", tag = "audit", responses((status = 200, description = "Entrée"), (status = 404, description = "NON_TROUVE")))]
pub async fn get(State(st): State<AppState>, Path(seq): Path<i64>) -> Response {
    match store::audit::get(st.dbmon.db(), seq).await {
        Ok(Some(r)) => Json(entry_json(&r)).into_response(),
        Ok(None) => ApiError::from(Rejection::non_trouve("Entrée d'audit")).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub fn verification_json(v: &store::audit::Verification) -> Value {
    json!({
        "ok": v.broken.is_none(), "verified": v.verified, "lastSeq": v.last_seq, "lastHash": v.last_hash,
        "brokenSeq": v.broken.as_ref().map(|b| b.seq()), "message": v.broken.as_ref().map(|b| b.describe_fr()),
    })
}

/// Recomputes the whole chain and names the first broken entry.
#[utoipa::path(get, path = "/api/audit/verify", tag = "audit", responses((status = 200, description = "{ok, verified, lastSeq, lastHash, brokenSeq, message}")))]
pub async fn verify(State(st): State<AppState>) -> Response {
    match store::audit::verify(st.dbmon.db(), None).await {
        Ok(v) => Json(verification_json(&v)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
