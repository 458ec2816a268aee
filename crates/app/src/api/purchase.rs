//! Purchase orders (DOMAIN.md §6.1, §6.2) and supplier performance (§6.4). PRODUCTION reads orders without prices
//! or amounts (R−, capability 11); cancellation is ADMIN's (capability 12).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use domain::identity::Role;
use domain::purchase::{BcStatus, SendProof};
use domain::rejection::Rejection;
use domain::validation::Fields;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::purchase::{Draft, NewLine};
use utoipa::ToSchema;

use super::catalogue::write;
use super::idempotency::Idem;
use crate::auth::{Ctx, Identity};
use crate::platform::errors::{ApiError, ApiJson};
use crate::state::AppState;

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OrderLineBody {
    pub product_code: String,
    /// Milli-units of the product's base unit, > 0.
    pub quantity: i64,
    /// Centimes per base unit, HT, ≥ 0.
    pub unit_price_ht: i64,
    /// 0, 900 or 1900 (default 1900).
    pub tva_rate: Option<i32>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OrderBody {
    pub supplier_code: String,
    /// Mandatory before sending; not before the order's date.
    #[schema(value_type = Option<String>, format = Date)]
    pub expected_date: Option<NaiveDate>,
    pub notes: Option<String>,
    pub lines: Vec<OrderLineBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SendBody {
    /// EMAIL (with `email`) or MANUEL (with `note`, ≥ 20 characters).
    pub mode: String,
    pub email: Option<String>,
    pub note: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfirmBody {
    #[schema(value_type = Option<String>, format = Date)]
    pub confirmed_date: Option<NaiveDate>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReasonBody {
    /// At least 10 characters.
    pub reason: String,
}

#[derive(Deserialize, utoipa::IntoParams, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct OrderQuery {
    /// DRAFT, SENT, CONFIRMED, PARTIAL, RECEIVED, CANCELLED.
    pub status: Option<String>,
    /// Supplier code.
    pub supplier: Option<String>,
    /// Only open orders past their expected date.
    pub late: Option<bool>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

fn hides_values(role: Role) -> bool {
    role == Role::Production
}

const VALUE_FIELDS: [&str; 3] = ["totalHt", "totalTva", "totalTtc"];
const LINE_VALUE_FIELDS: [&str; 4] = ["unitPriceHt", "amountHt", "amountTva", "amountTtc"];

fn strip(v: &mut Value, keys: &[&str]) {
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
}

/// An order's header as lists show it; `days_late` for open orders past their expected date.
pub fn order_summary(o: &store::purchase::Order, supplier: (&str, &str), today: NaiveDate, role: Role) -> Value {
    let status = store::purchase::status_of(o);
    let late = match (status, o.expected_date) {
        (BcStatus::Sent | BcStatus::Confirmed | BcStatus::Partial, Some(e)) => domain::purchase::days_late(e, today),
        _ => None,
    };
    let mut v = json!({
        "reference": o.reference, "status": o.status, "statusLabel": status.label(),
        "supplierCode": supplier.0, "supplierName": supplier.1, "orderDate": o.order_date,
        "expectedDate": o.expected_date, "daysLate": late,
        "totalHt": o.total_ht, "totalTva": o.total_tva, "totalTtc": o.total_ttc,
    });
    if hides_values(role) {
        strip(&mut v, &VALUE_FIELDS);
    }
    v
}

pub fn order_json(
    o: &store::purchase::Order,
    supplier: (&str, &str),
    lines: &[store::purchase::LineView],
    receptions: &[String],
    today: NaiveDate,
    role: Role,
) -> Value {
    let mut v = order_summary(o, supplier, today, role);
    let extra = json!({
        "notes": o.notes, "sendMode": o.send_mode, "sendProof": o.send_proof, "sentAt": o.sent_at,
        "confirmedAt": o.confirmed_at, "confirmedDate": o.confirmed_date,
        "firstReceptionDate": o.first_reception_date, "lastReceptionDate": o.last_reception_date,
        "receivedAt": o.received_at, "closeReason": o.close_reason, "cancelReason": o.cancel_reason,
        "cancelledAt": o.cancelled_at, "receptions": receptions,
        "lines": lines.iter().map(|(l, code, name)| {
            let line = domain::purchase::OrderLine {
                product_code: code.clone(), ordered: l.quantity_ordered, received: l.quantity_received,
            };
            let mut lv = json!({
                "lineNo": l.line_no, "productCode": code, "productName": name,
                "quantityOrdered": l.quantity_ordered, "quantityReceived": l.quantity_received,
                "quantityRemaining": (l.quantity_ordered - l.quantity_received).max(0),
                "maxReceivable": domain::purchase::max_receivable(&line),
                "unitPriceHt": l.unit_price_ht, "tvaRate": l.tva_rate,
                "amountHt": l.amount_ht, "amountTva": l.amount_tva, "amountTtc": l.amount_ttc,
            });
            if hides_values(role) {
                strip(&mut lv, &LINE_VALUE_FIELDS);
            }
            lv
        }).collect::<Vec<_>>(),
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

/// Checks the supplier and the lines of a create or edit body (field errors all at once).
pub(crate) async fn draft_of(st: &AppState, b: &OrderBody) -> Result<Draft, ApiError> {
    let db = st.dbmon.db();
    let today = domain::stock::today_algiers(st.clock.now());
    let supplier = store::catalogue::supplier_by_code(db.conn(), &b.supplier_code)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Fournisseur")))?;
    if !supplier.active {
        return Err(
            Rejection::new("FOURNISSEUR_INACTIF", 409, format!("{} est désactivé.", supplier.raison_sociale)).into()
        );
    }
    store::catalogue::refuse_if_blocked(&supplier, today)?;
    let mut f = Fields::new();
    let mut lines = Vec::new();
    for (i, l) in b.lines.iter().enumerate() {
        let Some(p) = store::catalogue::product_by_code(db.conn(), &l.product_code).await? else {
            f.add(&format!("lines[{i}].productCode"), "NON_TROUVE", format!("Produit {} introuvable.", l.product_code));
            continue;
        };
        let facts = domain::procurement::LineProduct {
            code: p.code.clone(),
            perishable: p.perishable,
            active: p.active,
            is_mp: p.kind == "MP",
            stock_tracked: p.stock_tracked,
        };
        domain::procurement::check_mp_line(&mut f, i, &facts, l.quantity, l.unit_price_ht, "unitPriceHt", l.tva_rate);
        let rate = l.tva_rate.unwrap_or(1900);
        lines.push(NewLine { product: p, quantity: l.quantity, unit_price_ht: l.unit_price_ht, tva_rate: rate });
    }
    f.into_result()?;
    Ok(Draft {
        supplier_id: supplier.id,
        expected_date: b.expected_date,
        notes: b.notes.clone().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
        lines,
    })
}

async fn detail(st: &AppState, reference: &str, role: Role) -> Result<Value, ApiError> {
    let c = st.dbmon.db().conn();
    let (o, lines, receptions) = store::purchase::detail(c, reference)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Bon de commande")))?;
    let (code, name) = store::purchase::supplier_names(c, o.supplier_id).await?;
    let today = domain::stock::today_algiers(st.clock.now());
    Ok(order_json(&o, (&code, &name), &lines, &receptions, today, role))
}

/// Creates a DRAFT order: the number `BC-YYYY-NNNNN` is taken now.
pub async fn create_order(
    st: &AppState,
    b: &OrderBody,
    id: &Identity,
    ctx: &Ctx,
    idem: Option<Idem>,
) -> Result<(StatusCode, Value), ApiError> {
    let draft = draft_of(st, b).await?;
    let (actor, now, role) = (id.actor(ctx), st.clock.now(), id.role);
    let today = domain::stock::today_algiers(now);
    super::idempotency::create(st, &idem, now, |tx| {
        let (draft, actor) = (draft.clone(), actor.clone());
        Box::pin(async move {
            let (o, _) = store::purchase::create(&**tx, draft, &actor, now).await?;
            let (lines, receptions) = match store::purchase::detail(&**tx, &o.reference).await? {
                Some((_, l, r)) => (l, r),
                None => (Vec::new(), Vec::new()),
            };
            let (code, name) = store::purchase::supplier_names(&**tx, o.supplier_id).await?;
            Ok(order_json(&o, (&code, &name), &lines, &receptions, today, role))
        })
    })
    .await
}

#[utoipa::path(post, path = "/api/purchase-orders", tag = "procurement", request_body = OrderBody, responses(
    (status = 201, description = "Bon de commande créé en brouillon"),
    (status = 409, description = "FOURNISSEUR_BLOQUE, FOURNISSEUR_INACTIF, PRODUIT_INACTIF"),
    (status = 422, description = "LIGNE_DOUBLON, QUANTITE_INVALIDE, TVA_INVALIDE, DATE_INVALIDE")))]
pub async fn create(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    headers: HeaderMap,
    ApiJson(b): ApiJson<OrderBody>,
) -> Response {
    super::idempotency::handle(&st, &headers, &id, "/api/purchase-orders", json!(b), |idem| {
        create_order(&st, &b, &id, &ctx, idem)
    })
    .await
}

#[utoipa::path(get, path = "/api/purchase-orders", tag = "procurement", params(OrderQuery), responses(
    (status = 200, description = "Bons de commande, les plus récents d'abord")))]
pub async fn list(State(st): State<AppState>, id: Identity, Query(q): Query<OrderQuery>) -> Response {
    let (page, size) = match (super::admin::PageQuery { page: q.page, page_size: q.page_size }).resolve() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let all = match store::purchase::list(st.dbmon.db()).await {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let today = domain::stock::today_algiers(st.clock.now());
    let items: Vec<Value> = all
        .iter()
        .filter(|(o, _, _)| q.status.as_deref().is_none_or(|s| o.status.eq_ignore_ascii_case(s)))
        .filter(|(_, code, _)| q.supplier.as_deref().is_none_or(|s| code.eq_ignore_ascii_case(s)))
        .map(|(o, code, name)| order_summary(o, (code, name), today, id.role))
        .filter(|v| !q.late.unwrap_or(false) || v["daysLate"].is_i64())
        .collect();
    let total = items.len() as u64;
    let items: Vec<Value> = items.into_iter().skip(((page - 1) * size) as usize).take(size as usize).collect();
    Json(json!({"items": items, "total": total, "page": page, "pageSize": size})).into_response()
}

#[utoipa::path(get, path = "/api/purchase-orders/{reference}", tag = "procurement", responses(
    (status = 200, description = "Bon de commande, lignes commandées / reçues / restantes, réceptions"),
    (status = 404, description = "NON_TROUVE")))]
pub async fn get(State(st): State<AppState>, id: Identity, Path(reference): Path<String>) -> Response {
    detail(&st, &reference, id.role).await.map(Json).into_response()
}

pub async fn edit_order(
    st: &AppState,
    reference: &str,
    b: &OrderBody,
    id: &Identity,
    ctx: &Ctx,
) -> Result<Value, ApiError> {
    let draft = draft_of(st, b).await?;
    let (actor, now, r) = (id.actor(ctx), st.clock.now(), reference.to_string());
    write(st, move |tx| {
        let (draft, actor, reference) = (draft.clone(), actor.clone(), r.clone());
        Box::pin(async move { store::purchase::update_draft(&**tx, &reference, draft, &actor, now).await.map(|_| ()) })
    })
    .await?;
    detail(st, reference, id.role).await
}

#[utoipa::path(put, path = "/api/purchase-orders/{reference}", tag = "procurement", request_body = OrderBody, responses(
    (status = 200, description = "Brouillon modifié"), (status = 409, description = "BC_NON_MODIFIABLE")))]
pub async fn update(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(reference): Path<String>,
    ApiJson(b): ApiJson<OrderBody>,
) -> Response {
    edit_order(&st, &reference, &b, &id, &ctx).await.map(Json).into_response()
}

/// The send proof of a body: EMAIL with its address, MANUEL with its note.
pub fn proof_of(mode: &str, email: Option<String>, note: Option<String>) -> Result<SendProof, Rejection> {
    match mode.trim().to_uppercase().as_str() {
        "EMAIL" => Ok(SendProof::Email(email.unwrap_or_default())),
        "MANUEL" => Ok(SendProof::Manual(note.unwrap_or_default())),
        _ => Err(Rejection::new(
            "PREUVE_ENVOI_REQUISE",
            422,
            "Preuve d'envoi requise : adresse e-mail valide ou note d'au moins 20 caractères.",
        )),
    }
}

/// One state change of an order, in one transaction; answers the order after it.
pub async fn transition(
    st: &AppState,
    reference: &str,
    id: &Identity,
    ctx: &Ctx,
    change: Transition,
) -> Result<Value, ApiError> {
    let (actor, now, r) = (id.actor(ctx), st.clock.now(), reference.to_string());
    write(st, move |tx| {
        let (actor, reference, change) = (actor.clone(), r.clone(), change.clone());
        Box::pin(async move {
            let c = &**tx;
            match change {
                Transition::Send(p) => store::purchase::send(c, &reference, &p, &actor, now).await,
                Transition::Confirm(d) => store::purchase::confirm(c, &reference, d, &actor, now).await,
                Transition::Close(r) => store::purchase::close(c, &reference, &r, &actor, now).await,
                Transition::Cancel(r) => store::purchase::cancel(c, &reference, &r, &actor, now).await,
            }
            .map(|_| ())
        })
    })
    .await?;
    detail(st, reference, id.role).await
}

#[derive(Clone)]
pub enum Transition {
    Send(SendProof),
    Confirm(Option<NaiveDate>),
    Close(String),
    Cancel(String),
}

#[utoipa::path(post, path = "/api/purchase-orders/{reference}/send", tag = "procurement", request_body = SendBody, responses(
    (status = 200, description = "Envoyé"),
    (status = 422, description = "PREUVE_ENVOI_REQUISE, BC_VIDE, DATE_INVALIDE"),
    (status = 409, description = "FOURNISSEUR_BLOQUE, TRANSITION_INVALIDE")))]
pub async fn send(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(reference): Path<String>,
    ApiJson(b): ApiJson<SendBody>,
) -> Response {
    let proof = match proof_of(&b.mode, b.email, b.note) {
        Ok(p) => p,
        Err(r) => return ApiError::from(r).into_response(),
    };
    transition(&st, &reference, &id, &ctx, Transition::Send(proof)).await.map(Json).into_response()
}

#[utoipa::path(post, path = "/api/purchase-orders/{reference}/confirm", tag = "procurement", request_body = ConfirmBody, responses(
    (status = 200, description = "Confirmé par le fournisseur"), (status = 409, description = "TRANSITION_INVALIDE")))]
pub async fn confirm(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(reference): Path<String>,
    ApiJson(b): ApiJson<ConfirmBody>,
) -> Response {
    transition(&st, &reference, &id, &ctx, Transition::Confirm(b.confirmed_date)).await.map(Json).into_response()
}

#[utoipa::path(post, path = "/api/purchase-orders/{reference}/close", tag = "procurement", request_body = ReasonBody, responses(
    (status = 200, description = "Soldé : le reste est abandonné"),
    (status = 422, description = "MOTIF_TROP_COURT"), (status = 409, description = "TRANSITION_INVALIDE")))]
pub async fn close(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(reference): Path<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> Response {
    transition(&st, &reference, &id, &ctx, Transition::Close(b.reason)).await.map(Json).into_response()
}

#[utoipa::path(post, path = "/api/purchase-orders/{reference}/cancel", tag = "procurement", request_body = ReasonBody, responses(
    (status = 200, description = "Annulé"),
    (status = 422, description = "MOTIF_TROP_COURT"), (status = 409, description = "BC_DEJA_RECU, TRANSITION_INVALIDE")))]
pub async fn cancel(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(reference): Path<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> Response {
    transition(&st, &reference, &id, &ctx, Transition::Cancel(b.reason)).await.map(Json).into_response()
}

/// The supplier's scorecard (§6.4): score, grade, rates and the orders of the window.
pub async fn scorecard(st: &AppState, code: &str) -> Result<Value, ApiError> {
    let db = st.dbmon.db();
    let s = store::catalogue::supplier_by_code(db.conn(), code)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Fournisseur")))?;
    let p = store::purchase::performance_of(db.conn(), s.id).await?;
    let today = domain::stock::today_algiers(st.clock.now());
    let orders: Vec<Value> = store::purchase::list(db)
        .await?
        .iter()
        .filter(|(o, _, _)| o.supplier_id == s.id)
        .map(|(o, code, name)| {
            let mut v = order_summary(o, (code, name), today, Role::Admin);
            v["firstReceptionDate"] = json!(o.first_reception_date);
            v["onTime"] = json!(match (o.first_reception_date, o.expected_date) {
                (Some(f), Some(e)) => Some(f <= e),
                _ => None,
            });
            v
        })
        .collect();
    Ok(json!({
        "supplierCode": s.code, "raisonSociale": s.raison_sociale,
        "grade": p.as_ref().map_or("N/A", |p| p.grade.as_str()),
        "score": p.as_ref().and_then(|p| p.score),
        "onTimeBp": p.as_ref().and_then(|p| p.on_time_bp),
        "accuracyBp": p.as_ref().and_then(|p| p.accuracy_bp),
        "ordersInWindow": p.as_ref().map_or(0, |p| p.orders),
        "updatedAt": p.as_ref().map(|p| p.updated_at),
        "orders": orders,
    }))
}

#[utoipa::path(get, path = "/api/suppliers/{code}/performance", tag = "procurement", responses(
    (status = 200, description = "Note fournisseur : score, ponctualité, exactitude, bons de commande"),
    (status = 404, description = "NON_TROUVE")))]
pub async fn performance(State(st): State<AppState>, Path(code): Path<String>) -> Response {
    scorecard(&st, &code).await.map(Json).into_response()
}

#[utoipa::path(get, path = "/api/purchase-orders/{reference}/pdf", tag = "procurement", responses(
    (status = 200, description = "Le bon de commande en PDF", content_type = "application/pdf"),
    (status = 404, description = "NON_TROUVE")))]
pub async fn pdf(State(st): State<AppState>, Path(reference): Path<String>) -> Response {
    crate::print::answer(crate::print::purchase_order(&st, &reference).await).await
}
