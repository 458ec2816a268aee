//! UI.md row 88, "Synchronisation" (ADMIN): what devices sent and what became of it — pending, failed in the last
//! 24 h by class, offline devices; the events filtered by status, period and device with their error; "Relancer" one
//! failed event or all the failures of the last 24 h (the runbook's INC-005, from a page).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use domain::format::datetime_algiers;
use serde::Deserialize;
use uuid::Uuid;

use super::{Layout, PageCtx, page, redirect_with_flash};
use crate::api::sync::{EventQuery, events_page, retry_one, retry_since};
use crate::auth::Identity;
use crate::state::AppState;

struct EventLine {
    id: Uuid,
    received: String,
    device: String,
    user: String,
    action: String,
    object: String,
    status: &'static str,
    tone: &'static str,
    attempts: i64,
    error: String,
    message: String,
    failed: bool,
}

#[derive(Template)]
#[template(path = "sync_events.html")]
struct SyncPage {
    layout: Layout,
    pending: i64,
    failed_business: i64,
    failed_technical: i64,
    offline: usize,
    statut: String,
    depuis: String,
    appareil: String,
    statuses: Vec<(&'static str, &'static str)>,
    periods: Vec<(&'static str, &'static str)>,
    devices: Vec<(String, String)>,
    events: Vec<EventLine>,
    total: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Filters {
    statut: String,
    depuis: String,
    appareil: String,
}

const PATH: &str = "/systeme/synchronisation";

async fn sync_page(State(st): State<AppState>, pc: PageCtx, Query(f): Query<Filters>) -> Response {
    let c = st.dbmon.db().conn();
    let now = st.clock.now();
    let depuis = if f.depuis.is_empty() { "24h".to_string() } else { f.depuis.clone() };
    let q = EventQuery {
        status: Some(f.statut.clone()).filter(|s| !s.is_empty()),
        since: Some(depuis.clone()).filter(|s| s != "tout"),
        device_id: Uuid::parse_str(&f.appareil).ok(),
        page: Some(1),
        page_size: Some(200),
    };
    let figures = store::sync::counts(c, None, now - chrono::Duration::hours(24)).await;
    let devices = store::identity::all_devices(c).await;
    let mut refused = None;
    let (events, total) = match events_page(&st, &q).await {
        Ok((items, total, _, _)) => (items, total),
        Err(e) => {
            refused = Some(e.message);
            (Vec::new(), 0)
        }
    };
    let (Ok(n), Ok(devices)) = (figures, devices) else {
        return super::unavailable_page("Base de données indisponible.");
    };
    let lines = events
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            let (status, tone) = domain::sync::status_fr(e["status"].as_str().unwrap_or_default());
            let action = domain::sync::Action::parse(&text("action")).map_or(text("action"), |a| a.label_fr().into());
            let received = chrono::DateTime::parse_from_rfc3339(&text("createdAt"))
                .map(|t| datetime_algiers(t.timestamp()))
                .unwrap_or_default();
            EventLine {
                id: Uuid::parse_str(&text("id")).unwrap_or_default(),
                received,
                device: text("deviceName"),
                user: text("userEmail"),
                action,
                object: e["serverRef"]
                    .as_str()
                    .map_or_else(|| format!("{} {}", text("entityType"), text("entityId")), str::to_string),
                status,
                tone,
                attempts: e["attempts"].as_i64().unwrap_or(0),
                error: text("errorCode"),
                message: text("errorMessage"),
                failed: e["status"] == "FAILED",
            }
        })
        .collect();
    let mut layout = Layout::for_page("Synchronisation", PATH, &pc);
    if let Some(text) = refused {
        layout.flash.push(super::Flash { tone: "erreur", text });
    }
    let p = SyncPage {
        layout,
        pending: n.pending,
        failed_business: n.failed - n.failed_technical,
        failed_technical: n.failed_technical,
        offline: devices
            .iter()
            .filter(|d| domain::kpi::device_offline(d.is_active, d.last_sync_at, d.registered_at, now))
            .count(),
        statut: f.statut,
        depuis,
        appareil: f.appareil,
        statuses: vec![
            ("", "Tous"),
            ("PENDING", "En attente"),
            ("FAILED", "En échec"),
            ("APPLIED", "Appliqués"),
            ("ACKED", "Acquittés"),
        ],
        periods: vec![("24h", "24 heures"), ("7d", "7 jours"), ("30d", "30 jours"), ("tout", "Tout")],
        devices: devices.into_iter().map(|d| (d.id.to_string(), d.name)).collect(),
        events: lines,
        total,
    };
    page(StatusCode::OK, p, &pc)
}

async fn retry_event(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(eid): Path<Uuid>) -> Response {
    match retry_one(&st, eid, &id, &pc.ctx).await {
        Ok(e) => {
            let label = domain::sync::Action::parse(&e.action).map_or(e.action.clone(), |a| a.label_fr().into());
            redirect_with_flash(PATH, "succes", &format!("{label} remis en file : rejoué sous 10 s."))
        }
        Err(e) => redirect_with_flash(PATH, "erreur", &e.message),
    }
}

async fn retry_failed(State(st): State<AppState>, pc: PageCtx, id: Identity) -> Response {
    match retry_since(&st, "24h", &id, &pc.ctx).await {
        Ok(n) => redirect_with_flash(PATH, "succes", &format!("{n} événement(s) remis en file")),
        Err(e) => redirect_with_flash(PATH, "erreur", &e.message),
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PATH, get(sync_page))
        .route("/systeme/synchronisation/relancer", post(retry_failed))
        .route("/systeme/synchronisation/{id}/relancer", post(retry_event))
}
