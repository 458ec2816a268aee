//! The supply cockpit (UI.md row 11) and the alerts page (row 6): risk index, MPs that need attention with their
//! coverage and suggestion, late orders, and the alerts with "Prendre en compte" and "Reporter".

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use domain::identity::Role;
use domain::stock::{Unit, fmt_qty};
use serde::Deserialize;
use serde_json::Value;

use super::{Layout, PageCtx, page, redirect_with_flash};
use crate::api::appro::AlertAction;
use crate::auth::Identity;
use crate::state::AppState;

fn qty(v: &Value, unit: &Value) -> String {
    v.as_i64()
        .map(|q| fmt_qty(q, Unit::parse(unit.as_str().unwrap_or("KG")).unwrap_or(Unit::Kg)))
        .unwrap_or_else(|| "—".into())
}

pub struct AlertRow {
    pub id: String,
    pub tone: &'static str,
    pub severity: &'static str,
    pub message: String,
    pub status: String,
    pub since: String,
    pub can_ack: bool,
    pub can_postpone: bool,
}

pub fn alert_rows(alerts: &[Value], role: Role) -> Vec<AlertRow> {
    alerts
        .iter()
        .map(|a| {
            let t = a["type"].as_str().unwrap_or_default();
            let (tone, severity) = match a["severity"].as_str() {
                Some("CRITICAL") => ("rouge", "Critique"),
                Some("WARNING") => ("ambre", "Attention"),
                _ => ("bleu", "Info"),
            };
            let ts = |k: &str| {
                a[k].as_str()
                    .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
                    .map(|t| domain::format::datetime_algiers(t.timestamp()))
                    .unwrap_or_default()
            };
            let status = match a["status"].as_str() {
                Some("ACKNOWLEDGED") => "Prise en compte".to_string(),
                Some("POSTPONED") => format!(
                    "Reportée jusqu'au {} : {}",
                    ts("postponedUntil"),
                    a["postponeReason"].as_str().unwrap_or_default()
                ),
                _ => "Ouverte".to_string(),
            };
            let open = a["status"] == "OPEN";
            AlertRow {
                id: a["id"].as_str().unwrap_or_default().to_string(),
                tone,
                severity,
                message: a["message"].as_str().unwrap_or_default().to_string(),
                status,
                since: ts("firstSeenAt"),
                can_ack: open,
                can_postpone: (open || a["status"] == "ACKNOWLEDGED")
                    && crate::api::appro::may_postpone(role, t)
                    && domain::kpi::postponable(t),
            }
        })
        .collect()
}

struct MpRow {
    product: String,
    tone: &'static str,
    status: String,
    stock: String,
    coverage: String,
    on_order: String,
    suggestion: String,
    priority: String,
    order_link: Option<String>,
}

#[derive(Template)]
#[template(path = "cockpit.html")]
struct CockpitPage {
    layout: Layout,
    risk: i64,
    level: &'static str,
    level_tone: &'static str,
    detail: String,
    rows: Vec<MpRow>,
    ok_count: usize,
    alerts: Vec<AlertRow>,
    late: Vec<(String, String, i64)>,
    back: &'static str,
}

async fn cockpit(State(st): State<AppState>, pc: PageCtx, id: Identity) -> Response {
    let c = match crate::api::appro::cockpit(&st, id.role).await {
        Ok(c) => c,
        Err(e) => return super::unavailable_page(&e.message),
    };
    let writer = matches!(id.role, Role::Admin | Role::Appro);
    let mps = c["mps"].as_array().cloned().unwrap_or_default();
    let rows: Vec<MpRow> = mps
        .iter()
        .filter(|m| m["status"] != "OK")
        .map(|m| {
            let tone = match (m["status"].as_str(), m["bloquante"].as_bool()) {
                (Some("RUPTURE"), Some(true)) => "rouge badge-fort",
                (Some("RUPTURE" | "CRITIQUE"), _) => "rouge",
                _ => "ambre",
            };
            let coverage = match m["coverageTenths"].as_i64() {
                Some(t) => format!("{},{} j / délai {} j", t / 10, t % 10, m["leadTimeDays"]),
                None => format!("∞ / délai {} j", m["leadTimeDays"]),
            };
            let priority = match m["priority"].as_str() {
                Some("URGENTE") => "Urgente",
                Some("HAUTE") => "Haute",
                Some("NORMALE") => "Normale",
                _ => "—",
            };
            let code = m["productCode"].as_str().unwrap_or_default();
            let order_link = (writer && m["suggestion"].as_i64().is_some_and(|s| s > 0)).then(|| {
                format!(
                    "/appro/bons-de-commande/nouveau?matiere={code}&fournisseur={}&quantite={}",
                    m["supplierCode"].as_str().unwrap_or_default(),
                    domain::money::fmt_qty_input(m["suggestion"].as_i64().unwrap_or(0))
                )
            });
            MpRow {
                product: format!("{} ({code})", m["productName"].as_str().unwrap_or_default()),
                tone,
                status: m["statusLabel"].as_str().unwrap_or_default().to_string(),
                stock: qty(&m["stockDisponible"], &m["unit"]),
                coverage,
                on_order: qty(&m["openOrderQty"], &m["unit"]),
                suggestion: qty(&m["suggestion"], &m["unit"]),
                priority: priority.to_string(),
                order_link,
            }
        })
        .collect();
    let today = domain::stock::today_algiers(st.clock.now());
    let late = store::purchase::list(st.dbmon.db())
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|(o, _, _)| {
            matches!(
                store::purchase::status_of(o),
                domain::purchase::BcStatus::Sent
                    | domain::purchase::BcStatus::Confirmed
                    | domain::purchase::BcStatus::Partial
            )
        })
        .filter_map(|(o, _, name)| {
            o.expected_date.and_then(|e| domain::purchase::days_late(e, today)).map(|d| (o.reference, name, d))
        })
        .collect();
    let level = c["riskLevel"].as_str().unwrap_or("SAIN");
    let p = CockpitPage {
        layout: Layout::for_page("Cockpit appro", "/appro", &pc),
        risk: c["riskIndex"].as_i64().unwrap_or(0),
        level: domain::kpi::risk_label(level),
        level_tone: match level {
            "CRITIQUE" => "rouge",
            "SURVEILLANCE" => "ambre",
            _ => "vert",
        },
        detail: format!(
            "{} bloquante(s) en rupture, {} autre(s) rupture(s), {} critique(s)",
            c["bloquantesInRupture"], c["ruptures"], c["critiques"]
        ),
        ok_count: mps.len() - rows.len(),
        rows,
        alerts: alert_rows(c["alerts"].as_array().map(Vec::as_slice).unwrap_or(&[]), id.role),
        late,
        back: "/appro",
    };
    page(StatusCode::OK, p, &pc)
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    layout: Layout,
    alerts: Vec<AlertRow>,
    back: &'static str,
}

async fn alerts(State(st): State<AppState>, pc: PageCtx, id: Identity) -> Response {
    let all = match store::alerts::active(st.dbmon.db()).await {
        Ok(a) => a,
        Err(e) => return super::unavailable_page(&crate::platform::errors::ApiError::from(e).message),
    };
    let visible: Vec<Value> = all
        .iter()
        .filter(|a| crate::api::appro::reads(id.role, &a.alert_type))
        .map(crate::api::appro::alert_json)
        .collect();
    let p = AlertsPage {
        layout: Layout::for_page("Alertes", "/alertes", &pc),
        alerts: alert_rows(&visible, id.role),
        back: "/alertes",
    };
    page(StatusCode::OK, p, &pc)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AlertForm {
    reason: String,
    until: String,
    back: String,
    #[allow(dead_code)]
    _csrf: String,
}

fn back_of(f: &AlertForm) -> &'static str {
    if f.back == "/appro" { "/appro" } else { "/alertes" }
}

async fn acknowledge(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(alert): Path<String>,
    Form(f): Form<AlertForm>,
) -> Response {
    match crate::api::appro::handle_alert(&st, &alert, &id, &pc.ctx, AlertAction::Acknowledge).await {
        Ok(_) => redirect_with_flash(back_of(&f), "succes", "Alerte prise en compte."),
        Err(e) => redirect_with_flash(back_of(&f), "erreur", &e.message),
    }
}

async fn postpone(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(alert): Path<String>,
    Query(_q): Query<HashMap<String, String>>,
    Form(f): Form<AlertForm>,
) -> Response {
    // The date field gives a day: the postponement ends at 08:00 Algiers that day (07:00 UTC).
    let Some(until) = chrono::NaiveDate::parse_from_str(&f.until, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(7, 0, 0))
        .map(|t| t.and_utc())
    else {
        return redirect_with_flash(back_of(&f), "erreur", "Date de fin du report illisible.");
    };
    match crate::api::appro::handle_alert(&st, &alert, &id, &pc.ctx, AlertAction::Postpone(f.reason.clone(), until))
        .await
    {
        Ok(_) => redirect_with_flash(back_of(&f), "succes", "Alerte reportée."),
        Err(e) => redirect_with_flash(back_of(&f), "erreur", &e.message),
    }
}

struct SuggestionRow {
    index: usize,
    code: String,
    name: String,
    priority: &'static str,
    stock: String,
    on_order: String,
    quantity: String,
    unit: String,
    orderable: bool,
}

#[derive(Template)]
#[template(path = "suggestions.html")]
struct SuggestionsPage {
    layout: Layout,
    groups: Vec<(String, Vec<SuggestionRow>)>,
}

/// UI.md row 41: the suggestions grouped by supplier, ticked and editable, turned into drafts in one action.
async fn suggestions(State(st): State<AppState>, pc: PageCtx) -> Response {
    let lines = match store::appro::metrics(st.dbmon.db().conn(), st.clock.now()).await {
        Ok(l) => l,
        Err(e) => return super::unavailable_page(&crate::platform::errors::ApiError::from(e).message),
    };
    let mut groups: Vec<(String, Vec<SuggestionRow>)> = Vec::new();
    for (index, l) in lines.iter().enumerate().filter(|(_, l)| l.suggestion.is_some_and(|s| s > 0)) {
        let unit = Unit::parse(&l.product.base_unit).unwrap_or(Unit::Kg);
        let group = match &l.supplier {
            Some((code, name)) => format!("{name} ({code})"),
            None => "Sans fournisseur connu (à définir sur la fiche matière)".into(),
        };
        let row = SuggestionRow {
            index,
            code: l.product.code.clone(),
            name: l.product.name.clone(),
            priority: match l.priority {
                Some("URGENTE") => "Urgente",
                Some("HAUTE") => "Haute",
                _ => "Normale",
            },
            stock: fmt_qty(l.stock_disponible, unit),
            on_order: fmt_qty(l.open_order_qty, unit),
            quantity: domain::money::fmt_qty_input(l.suggestion.unwrap_or(0)),
            unit: unit.label_fr().to_string(),
            orderable: l.supplier.is_some(),
        };
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, rows)) => rows.push(row),
            None => groups.push((group, vec![row])),
        }
    }
    page(
        StatusCode::OK,
        SuggestionsPage { layout: Layout::for_page("Suggestions de commande", "/appro/suggestions", &pc), groups },
        &pc,
    )
}

async fn suggestions_order(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(raw): Form<HashMap<String, String>>,
) -> Response {
    let mut lines = Vec::new();
    let mut picked: Vec<(&String, &String)> = raw.iter().filter(|(k, _)| k.starts_with("pick_")).collect();
    picked.sort();
    for (key, code) in picked {
        let i = key.trim_start_matches("pick_");
        let typed = raw.get(&format!("quantity_{i}")).map(String::as_str).unwrap_or_default();
        let Some(quantity) = domain::money::parse_qty(typed) else {
            return redirect_with_flash(
                "/appro/suggestions",
                "erreur",
                &format!("{code} : quantité illisible (par exemple 12,5)."),
            );
        };
        lines.push(crate::api::appro::SuggestionLine { product_code: code.clone(), quantity });
    }
    let body = crate::api::appro::SuggestionOrders { lines };
    match crate::api::appro::orders_from_suggestions(&st, &body, &id, &pc.ctx).await {
        Ok(v) => {
            let refs: Vec<&str> = v["created"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            redirect_with_flash(
                "/appro/bons-de-commande?onglet=a-envoyer",
                "succes",
                &format!("{} brouillon(s) créé(s) : {}.", refs.len(), refs.join(", ")),
            )
        }
        Err(e) => {
            let detail: Vec<String> = e.details["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["message"].as_str().map(str::to_string))
                .collect();
            let text = if detail.is_empty() { e.message.clone() } else { detail.join(" ") };
            redirect_with_flash("/appro/suggestions", "erreur", &text)
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/appro/suggestions", get(suggestions).post(suggestions_order))
        .route("/appro", get(cockpit))
        .route("/alertes", get(alerts))
        .route("/alertes/{id}/prendre-en-compte", post(acknowledge))
        .route("/alertes/{id}/reporter", post(postpone))
}
