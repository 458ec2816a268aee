//! The supply cockpit (DOMAIN.md §7; capability 14: ADMIN, APPRO write; PRODUCTION, COMPTABLE read) and the alerts
//! of every module (§7.3): list, acknowledge, postpone.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::identity::Role;
use domain::rejection::Rejection;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::catalogue::write;
use crate::auth::{Ctx, Identity};
use crate::platform::errors::{ApiError, ApiJson};
use crate::state::AppState;

pub use domain::kpi::{alert_readable_by as reads, may_postpone};

pub fn alert_json(a: &store::alerts::Alert) -> Value {
    json!({
        "id": a.id, "type": a.alert_type, "severity": a.severity, "entityType": a.entity_type,
        "entityId": a.entity_id, "message": a.message, "status": a.status, "firstSeenAt": a.first_seen_at,
        "lastSeenAt": a.last_seen_at, "acknowledgedAt": a.acknowledged_at, "postponedUntil": a.postponed_until,
        "postponeReason": a.postpone_reason,
    })
}

fn line_json(l: &store::appro::MpLine) -> Value {
    let p = &l.product;
    json!({
        "productCode": p.code, "productName": p.name, "unit": p.base_unit, "status": l.status.code(),
        "statusLabel": if l.bloquante && l.status == domain::kpi::ApproStatus::Rupture { "Bloque la production" } else { l.status.label_fr() },
        "bloquante": l.bloquante, "stockDisponible": l.stock_disponible, "consumption30": l.consumption_30,
        "coverageTenths": l.coverage_tenths, "leadTimeDays": p.lead_time_days,
        "safetyThreshold": p.safety_threshold, "reorderThreshold": p.reorder_threshold,
        "openOrderQty": l.open_order_qty, "recipeUses": l.recipe_uses, "suggestion": l.suggestion,
        "priority": l.priority, "supplierCode": l.supplier.as_ref().map(|s| &s.0),
        "supplierName": l.supplier.as_ref().map(|s| &s.1),
    })
}

/// The cockpit: risk index, every MP with its metrics (worst first), the open alerts the role reads.
pub async fn cockpit(st: &AppState, role: Role) -> Result<Value, ApiError> {
    let db = st.dbmon.db();
    let now = st.clock.now();
    let lines = store::appro::metrics(db.conn(), now).await?;
    let (index, level, b, r, c) = store::appro::risk(&lines);
    let alerts: Vec<Value> =
        store::alerts::active(db).await?.iter().filter(|a| reads(role, &a.alert_type)).map(alert_json).collect();
    Ok(json!({
        "riskIndex": index, "riskLevel": level, "bloquantesInRupture": b, "ruptures": r, "critiques": c,
        "mps": lines.iter().map(line_json).collect::<Vec<_>>(),
        "suggestions": lines.iter().filter(|l| l.suggestion.is_some()).count(),
        "alerts": alerts,
    }))
}

#[utoipa::path(get, path = "/api/appro/cockpit", tag = "procurement", responses(
    (status = 200, description = "Indice de risque, matières et leur statut, couverture, suggestions, alertes")))]
pub async fn get_cockpit(State(st): State<AppState>, id: Identity) -> Response {
    cockpit(&st, id.role).await.map(Json).into_response()
}

#[utoipa::path(get, path = "/api/alerts", tag = "platform", responses(
    (status = 200, description = "Alertes ouvertes, prises en compte ou reportées des modules lus par le rôle")))]
pub async fn list_alerts(State(st): State<AppState>, id: Identity) -> Response {
    match store::alerts::active(st.dbmon.db()).await {
        Ok(all) => {
            let items: Vec<Value> = all.iter().filter(|a| reads(id.role, &a.alert_type)).map(alert_json).collect();
            Json(json!({"total": items.len(), "items": items})).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PostponeBody {
    /// At least 10 characters.
    pub reason: String,
    /// At most 7 days from now.
    #[schema(value_type = String, format = DateTime)]
    pub until: DateTime<Utc>,
}

#[derive(Clone)]
pub enum AlertAction {
    Acknowledge,
    Postpone(String, DateTime<Utc>),
}

/// Acknowledges or postpones an alert the role may handle; answers the alert after it.
pub async fn handle_alert(
    st: &AppState,
    alert_id: &str,
    id: &Identity,
    ctx: &Ctx,
    action: AlertAction,
) -> Result<Value, ApiError> {
    let uuid = uuid::Uuid::parse_str(alert_id.trim()).map_err(|_| ApiError::from(Rejection::non_trouve("Alerte")))?;
    let db = st.dbmon.db();
    let a =
        store::alerts::by_id(db.conn(), uuid).await?.ok_or_else(|| ApiError::from(Rejection::non_trouve("Alerte")))?;
    let allowed = match action {
        AlertAction::Acknowledge => reads(id.role, &a.alert_type),
        AlertAction::Postpone(..) => may_postpone(id.role, &a.alert_type),
    };
    if !allowed {
        return Err(Rejection::acces_refuse().into());
    }
    let (actor, now) = (id.actor(ctx), st.clock.now());
    write(st, move |tx| {
        let (a, actor, action) = (a.clone(), actor.clone(), action.clone());
        Box::pin(async move {
            match action {
                AlertAction::Acknowledge => store::alerts::acknowledge(&**tx, &a, &actor, now).await,
                AlertAction::Postpone(reason, until) => {
                    store::alerts::postpone(&**tx, &a, &reason, until, &actor, now).await
                }
            }
        })
    })
    .await?;
    let a =
        store::alerts::by_id(db.conn(), uuid).await?.ok_or_else(|| ApiError::from(Rejection::non_trouve("Alerte")))?;
    Ok(alert_json(&a))
}

#[utoipa::path(post, path = "/api/alerts/{id}/acknowledge", tag = "platform", responses(
    (status = 200, description = "Prise en compte"), (status = 409, description = "ALERTE_DEJA_TRAITEE")))]
pub async fn acknowledge(State(st): State<AppState>, ctx: Ctx, id: Identity, Path(alert): Path<String>) -> Response {
    handle_alert(&st, &alert, &id, &ctx, AlertAction::Acknowledge).await.map(Json).into_response()
}

#[utoipa::path(post, path = "/api/alerts/{id}/postpone", tag = "platform", request_body = PostponeBody, responses(
    (status = 200, description = "Reportée"),
    (status = 409, description = "REPORT_INTERDIT, ALERTE_DEJA_TRAITEE"),
    (status = 422, description = "MOTIF_TROP_COURT, DATE_INVALIDE")))]
pub async fn postpone(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(alert): Path<String>,
    ApiJson(b): ApiJson<PostponeBody>,
) -> Response {
    handle_alert(&st, &alert, &id, &ctx, AlertAction::Postpone(b.reason, b.until)).await.map(Json).into_response()
}

#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SuggestionLine {
    pub product_code: String,
    /// Milli-units; the suggested quantity, possibly edited.
    pub quantity: i64,
}

#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SuggestionOrders {
    pub lines: Vec<SuggestionLine>,
}

/// §7.2 "a suggestion can be turned into a DRAFT BC in one action": the chosen lines, grouped by supplier (main
/// supplier, else the last one delivered), become one DRAFT order per supplier at the last reception's price — all
/// checked first, then written in one transaction.
pub async fn orders_from_suggestions(
    st: &AppState,
    b: &SuggestionOrders,
    id: &Identity,
    ctx: &Ctx,
) -> Result<Value, ApiError> {
    let now = st.clock.now();
    let lines = store::appro::metrics(st.dbmon.db().conn(), now).await?;
    let mut f = domain::validation::Fields::new();
    let mut groups: Vec<(String, Vec<super::purchase::OrderLineBody>)> = Vec::new();
    for (i, l) in b.lines.iter().enumerate() {
        let Some(m) = lines.iter().find(|m| m.product.code.eq_ignore_ascii_case(l.product_code.trim())) else {
            f.add(&format!("lines[{i}].productCode"), "NON_TROUVE", format!("Matière {} introuvable.", l.product_code));
            continue;
        };
        let Some((supplier, _)) = &m.supplier else {
            f.add(
                &format!("lines[{i}].productCode"),
                "FOURNISSEUR_ABSENT",
                format!("{} : aucun fournisseur principal ni réception connue.", m.product.code),
            );
            continue;
        };
        let (price, tva) = m.last_cost.unwrap_or((0, 1900));
        let line = super::purchase::OrderLineBody {
            product_code: m.product.code.clone(),
            quantity: l.quantity,
            unit_price_ht: price,
            tva_rate: Some(tva),
        };
        match groups.iter_mut().find(|(s, _)| s == supplier) {
            Some((_, ls)) => ls.push(line),
            None => groups.push((supplier.clone(), vec![line])),
        }
    }
    if b.lines.is_empty() {
        f.add("lines", "OBLIGATOIRE", "Cochez au moins une suggestion.");
    }
    f.into_result()?;
    let mut drafts = Vec::new();
    for (supplier, lines) in &groups {
        let body = super::purchase::OrderBody {
            supplier_code: supplier.clone(),
            expected_date: None,
            notes: Some("Créé depuis les suggestions du cockpit appro.".into()),
            lines: lines.clone(),
        };
        drafts.push(super::purchase::draft_of(st, &body).await?);
    }
    let actor = id.actor(ctx);
    let references = write(st, move |tx| {
        let (drafts, actor) = (drafts.clone(), actor.clone());
        Box::pin(async move {
            let mut out = Vec::new();
            for d in drafts {
                out.push(store::purchase::create(&**tx, d, &actor, now).await?.0.reference);
            }
            Ok(out)
        })
    })
    .await?;
    Ok(json!({"created": references}))
}

#[utoipa::path(post, path = "/api/appro/suggestions/orders", tag = "procurement", request_body = SuggestionOrders, responses(
    (status = 200, description = "Bons de commande brouillons créés, un par fournisseur"),
    (status = 400, description = "VALIDATION_ERROR (FOURNISSEUR_ABSENT…)"), (status = 409, description = "FOURNISSEUR_BLOQUE")))]
pub async fn suggestion_orders(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    ApiJson(b): ApiJson<SuggestionOrders>,
) -> Response {
    orders_from_suggestions(&st, &b, &id, &ctx).await.map(Json).into_response()
}
