//! Receptions and stock (DOMAIN.md §5, §6.3): direct receptions creating lots, lists and documents. R− readers
//! (PRODUCTION) never receive a cost or an amount.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use domain::identity::Role;
use domain::procurement::{LineInput, LineProduct};
use domain::rejection::Rejection;
use domain::validation::Fields;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::procurement::{NewLine, NewReception};
use utoipa::ToSchema;

use super::catalogue::ListQuery;
use super::idempotency::Idem;
use crate::auth::session::op_err;
use crate::auth::{Ctx, Identity};
use crate::platform::errors::{ApiError, ApiJson};
use crate::state::AppState;

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReceptionLineBody {
    pub product_code: String,
    /// Milli-units of the product's base unit.
    pub quantity: i64,
    /// Centimes per base unit, HT; against a purchase order, defaults to the order line's price.
    pub unit_cost_ht: Option<i64>,
    /// 0, 900 or 1900; defaults to the order line's rate, else 1900.
    pub tva_rate: Option<i32>,
    pub supplier_lot_number: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub dlc: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub manufacture_date: Option<NaiveDate>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReceptionBody {
    pub supplier_code: String,
    /// `BC-YYYY-NNNNN` received against (SENT, CONFIRMED or PARTIAL, same supplier): every line must be on it, and the
    /// cumulative quantity of a line stays ≤ 110 % of the ordered one.
    pub purchase_order_reference: Option<String>,
    /// Default today (Africa/Algiers); between today − 7 days and today.
    #[schema(value_type = Option<String>, format = Date)]
    pub reception_date: Option<NaiveDate>,
    pub supplier_delivery_note: Option<String>,
    pub supplier_invoice_number: Option<String>,
    pub lines: Vec<ReceptionLineBody>,
}

fn hides_values(role: Role) -> bool {
    role == Role::Production
}

pub fn reception_json(
    r: &store::procurement::Reception,
    supplier: &str,
    lines: &[(store::procurement::Line, String, String, String)],
    role: Role,
) -> Value {
    let mut v = json!({
        "reference": r.reference, "supplierCode": supplier, "receptionDate": r.reception_date,
        "supplierDeliveryNote": r.supplier_delivery_note, "supplierInvoiceNumber": r.supplier_invoice_number,
        "totalHt": r.total_ht, "totalTva": r.total_tva, "totalTtc": r.total_ttc,
        "lines": lines.iter().map(|(l, product, lot, status)| json!({
            "lineNo": l.line_no, "productCode": product, "quantity": l.quantity, "unitCostHt": l.unit_cost_ht,
            "tvaRate": l.tva_rate, "amountHt": l.amount_ht, "amountTva": l.amount_tva, "amountTtc": l.amount_ttc,
            "supplierLotNumber": l.supplier_lot_number, "dlc": l.dlc, "manufactureDate": l.manufacture_date,
            "lotNumber": lot, "lotStatus": status,
        })).collect::<Vec<_>>(),
    });
    if hides_values(role) {
        for k in ["totalHt", "totalTva", "totalTtc"] {
            v.as_object_mut().map(|o| o.remove(k));
        }
        if let Some(ls) = v["lines"].as_array_mut() {
            for l in ls {
                for k in ["unitCostHt", "amountHt", "amountTva", "amountTtc"] {
                    l.as_object_mut().map(|o| o.remove(k));
                }
            }
        }
    }
    v
}

fn warnings_json(w: &[Rejection]) -> Value {
    json!(w.iter().map(|r| json!({"code": r.code, "message": r.message, "details": r.details})).collect::<Vec<_>>())
}

/// Checks and records a direct reception; returns it with its lines (product code, lot number, lot status) and the
/// accepted warnings.
pub async fn receive(
    st: &AppState,
    b: &ReceptionBody,
    id: &Identity,
    ctx: &Ctx,
    idem: Option<Idem>,
) -> Result<(StatusCode, Value), ApiError> {
    let db = st.dbmon.db();
    let now = st.clock.now();
    let today = domain::stock::today_algiers(now);
    let supplier = store::catalogue::supplier_by_code(db.conn(), &b.supplier_code)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Fournisseur")))?;
    if !supplier.active {
        return Err(
            Rejection::new("FOURNISSEUR_INACTIF", 409, format!("{} est désactivé.", supplier.raison_sociale)).into()
        );
    }
    // Against an order: its lines give the default price and rate; the order itself is locked and checked in the
    // reception's transaction.
    let order = match b.purchase_order_reference.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Some(
            store::purchase::detail(db.conn(), r)
                .await?
                .ok_or_else(|| ApiError::from(Rejection::non_trouve("Bon de commande")))?,
        ),
        None => None,
    };
    // §4.3, §6.3: no direct reception from a blocked supplier; against a sent order it stays allowed.
    if order.is_none() {
        store::catalogue::refuse_if_blocked(&supplier, today)?;
    }
    let reception_date = b.reception_date.unwrap_or(today);
    domain::procurement::check_reception_date(reception_date, today)?;
    if b.lines.is_empty() {
        return Err(super::admin::field_error("lines", "OBLIGATOIRE", "La réception ne contient aucune ligne."));
    }
    let mut f = Fields::new();
    let mut warnings = Vec::new();
    let mut lines = Vec::new();
    for (i, l) in b.lines.iter().enumerate() {
        let Some(p) = store::catalogue::product_by_code(db.conn(), &l.product_code).await? else {
            f.add(&format!("lines[{i}].productCode"), "NON_TROUVE", format!("Produit {} introuvable.", l.product_code));
            continue;
        };
        let facts = LineProduct {
            code: p.code.clone(),
            perishable: p.perishable,
            active: p.active,
            is_mp: p.kind == "MP",
            stock_tracked: p.stock_tracked,
        };
        let on_order = order.as_ref().and_then(|(_, ls, _)| ls.iter().find(|(_, code, _)| code == &p.code));
        let unit_cost_ht = match (l.unit_cost_ht, on_order) {
            (Some(c), _) => c,
            (None, Some((ol, _, _))) => ol.unit_price_ht,
            (None, None) => {
                f.add(&format!("lines[{i}].unitCostHt"), "OBLIGATOIRE", "Le coût unitaire HT est obligatoire.");
                0
            }
        };
        let tva_rate = l.tva_rate.or(on_order.map(|(ol, _, _)| ol.tva_rate));
        let input = LineInput {
            quantity: l.quantity,
            unit_cost_ht,
            tva_rate,
            supplier_lot_number: l.supplier_lot_number.clone(),
            dlc: l.dlc,
            manufacture_date: l.manufacture_date,
        };
        warnings.extend(domain::procurement::check_line(&mut f, i, &facts, &input, reception_date, today));
        lines.push(NewLine {
            product: p,
            quantity: l.quantity,
            unit_cost_ht,
            tva_rate: tva_rate.unwrap_or(1900),
            supplier_lot_number: l.supplier_lot_number.clone().filter(|s| !s.trim().is_empty()),
            dlc: l.dlc,
            manufacture_date: l.manufacture_date,
        });
    }
    f.into_result()?;
    let codes: Vec<String> = lines.iter().map(|l| l.product.code.clone()).collect();
    let new = NewReception {
        supplier_id: supplier.id,
        purchase_order_id: order.as_ref().map(|(o, _, _)| o.id),
        reception_date,
        supplier_delivery_note: b.supplier_delivery_note.clone().filter(|s| !s.trim().is_empty()),
        supplier_invoice_number: b.supplier_invoice_number.clone().filter(|s| !s.trim().is_empty()),
        lines,
    };
    let (actor, role, supplier_code, warnings) =
        (id.actor(ctx), id.role, supplier.code.clone(), warnings_json(&warnings));
    super::idempotency::create(st, &idem, now, |tx| {
        let (new, actor, codes) = (new.clone(), actor.clone(), codes.clone());
        let (supplier_code, warnings) = (supplier_code.clone(), warnings.clone());
        Box::pin(async move {
            let (r, created) = store::procurement::create_reception(&**tx, new, &actor, now).await?;
            let lines: Vec<_> = created
                .into_iter()
                .zip(codes)
                .map(|((line, lot), code)| (line, code, lot.lot_number, lot.status))
                .collect();
            Ok(json!({"reception": reception_json(&r, &supplier_code, &lines, role), "warnings": warnings}))
        })
    })
    .await
}

#[utoipa::path(post, path = "/api/receptions", tag = "stock", request_body = ReceptionBody, responses(
    (status = 201, description = "Réception enregistrée : lots créés, avertissements acceptés (DLC_JOUR)"),
    (status = 422, description = "DLC_OBLIGATOIRE, DLC_DEPASSEE, DATE_RECEPTION_INVALIDE, TVA_INVALIDE, QUANTITE_INVALIDE"),
    (status = 409, description = "FOURNISSEUR_INACTIF, PRODUIT_INACTIF")))]
pub async fn create_reception(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ReceptionBody>,
) -> Response {
    super::idempotency::handle(&st, &headers, &id, "/api/receptions", json!(b), |idem| {
        receive(&st, &b, &id, &ctx, idem)
    })
    .await
}

async fn detail(st: &AppState, reference: &str, role: Role) -> Result<Value, ApiError> {
    let (r, supplier, lines) = store::procurement::detail(st.dbmon.db().conn(), reference)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Réception")))?;
    Ok(reception_json(&r, &supplier, &lines, role))
}

#[utoipa::path(get, path = "/api/receptions/{reference}", tag = "stock", responses((status = 200, description = "Réception"), (status = 404, description = "NON_TROUVE")))]
pub async fn get_reception(State(st): State<AppState>, id: Identity, Path(reference): Path<String>) -> Response {
    detail(&st, &reference, id.role).await.map(Json).into_response()
}

#[utoipa::path(get, path = "/api/receptions", tag = "stock", params(ListQuery), responses((status = 200, description = "Réceptions, les plus récentes d'abord")))]
pub async fn list_receptions(State(st): State<AppState>, id: Identity, Query(q): Query<ListQuery>) -> Response {
    let (page, size) = match (super::admin::PageQuery { page: q.page, page_size: q.page_size }).resolve() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let all = match store::procurement::list(st.dbmon.db()).await {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let total = all.len() as u64;
    let items: Vec<Value> = all
        .iter()
        .skip(((page - 1) * size) as usize)
        .take(size as usize)
        .map(|r| {
            let mut v = json!({"reference": r.reference, "receptionDate": r.reception_date, "totalHt": r.total_ht, "totalTtc": r.total_ttc});
            if hides_values(id.role) {
                v.as_object_mut().map(|o| {
                    o.remove("totalHt");
                    o.remove("totalTtc")
                });
            }
            v
        })
        .collect();
    Json(json!({"items": items, "total": total, "page": page, "pageSize": size})).into_response()
}

// ---- lots -----------------------------------------------------------------------------------------------------------

/// What a role may see of a lot (DOMAIN.md §2.2 capabilities 19–20): COMMERCIAL sees PF lots only; costs are
/// removed for R− readers (PRODUCTION, COMMERCIAL, and APPRO on PF).
fn lot_view(role: Role, kind: &str, v: Value) -> Option<Value> {
    if role == Role::Commercial && kind != "PF" {
        return None;
    }
    let hide_cost = matches!(role, Role::Production | Role::Commercial) || (role == Role::Appro && kind == "PF");
    let mut v = v;
    if hide_cost {
        v.as_object_mut().map(|o| o.remove("unitCost"));
    }
    Some(v)
}

#[derive(Deserialize, utoipa::IntoParams, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct LotQuery {
    /// Product code.
    pub product: Option<String>,
    /// AVAILABLE, QUARANTINE, BLOCKED, CONSUMED.
    pub status: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

#[utoipa::path(get, path = "/api/stock/lots", tag = "stock", params(LotQuery), responses((status = 200, description = "Lots, par DLC")))]
pub async fn list_lots(State(st): State<AppState>, id: Identity, Query(q): Query<LotQuery>) -> Response {
    let (page, size) = match (super::admin::PageQuery { page: q.page, page_size: q.page_size }).resolve() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let db = st.dbmon.db();
    let products =
        match (store::catalogue::list_products(db, "MP").await, store::catalogue::list_products(db, "PF").await) {
            (Ok(mut a), Ok(b)) => {
                a.extend(b);
                a
            }
            (Err(e), _) | (_, Err(e)) => return ApiError::from(e).into_response(),
        };
    let mut items = Vec::new();
    for p in products.iter().filter(|p| q.product.as_deref().is_none_or(|c| c.eq_ignore_ascii_case(&p.code))) {
        let mut lots = match store::stock::lots_of(db.conn(), p.id).await {
            Ok(l) => l,
            Err(e) => return ApiError::from(e).into_response(),
        };
        lots.sort_by_key(|l| domain::stock::fefo_key(&store::stock::lot_facts(l)));
        for l in lots.iter().filter(|l| q.status.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(&l.status))) {
            if let Some(v) = lot_view(id.role, &p.kind, store::stock::lot_json(l, &p.code)) {
                items.push(v);
            }
        }
    }
    let total = items.len() as u64;
    let items: Vec<Value> = items.into_iter().skip(((page - 1) * size) as usize).take(size as usize).collect();
    Json(json!({"items": items, "total": total, "page": page, "pageSize": size})).into_response()
}

async fn lot_and_product(st: &AppState, number: &str) -> Result<(store::stock::Lot, store::stock::Product), ApiError> {
    let db = st.dbmon.db();
    let lot = store::stock::lot_by_number(db.conn(), number)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Lot")))?;
    let p = store::stock::product(db.conn(), lot.product_id)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Produit")))?;
    Ok((lot, p))
}

#[utoipa::path(get, path = "/api/stock/lots/{number}", tag = "stock", responses((status = 200, description = "Lot"), (status = 404, description = "NON_TROUVE")))]
pub async fn get_lot(State(st): State<AppState>, id: Identity, Path(number): Path<String>) -> Response {
    match lot_and_product(&st, &number).await {
        Ok((l, p)) => match lot_view(id.role, &p.kind, store::stock::lot_json(&l, &p.code)) {
            Some(v) => Json(v).into_response(),
            None => ApiError::from(Rejection::non_trouve("Lot")).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    #[serde(default)]
    note: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QcBody {
    /// CONFORME or NON_CONFORME.
    decision: String,
    #[serde(default)]
    note: String,
}

async fn lot_change(
    st: &AppState,
    number: &str,
    action: &'static str,
    note: &str,
    decide: impl FnOnce(&domain::stock::LotFacts) -> Result<domain::stock::LotStatus, Rejection> + Clone + Send + 'static,
    id: &Identity,
    ctx: &Ctx,
) -> Response {
    let (actor, now) = (id.actor(ctx), st.clock.now());
    let (number, note) = (number.to_string(), note.to_string());
    let res = st
        .dbmon
        .db()
        .write(|tx| {
            let (number, note, actor, decide) = (number.clone(), note.clone(), actor.clone(), decide.clone());
            Box::pin(
                async move { store::stock::change_status(&**tx, &number, action, &note, decide, &actor, now).await },
            )
        })
        .await;
    match res {
        Ok(l) => {
            Json(json!({"lotNumber": l.lot_number, "status": l.status, "blockReason": l.block_reason})).into_response()
        }
        Err(e) => op_err(st, e).into_response(),
    }
}

/// QC decision on a QUARANTINE lot (ADMIN, PRODUCTION).
#[utoipa::path(post, path = "/api/stock/lots/{number}/qc", tag = "stock", request_body = QcBody, responses(
    (status = 200, description = "Lot libéré ou bloqué"), (status = 409, description = "LOT_PERIME, LOT_STATUT_INVALIDE"), (status = 422, description = "MOTIF_OBLIGATOIRE")))]
pub async fn qc_lot(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(number): Path<String>,
    ApiJson(b): ApiJson<QcBody>,
) -> Response {
    let conforme = match b.decision.as_str() {
        "CONFORME" => true,
        "NON_CONFORME" => false,
        _ => {
            return super::admin::field_error(
                "decision",
                "VALEUR_INVALIDE",
                "Décision attendue : CONFORME ou NON_CONFORME.",
            )
            .into_response();
        }
    };
    let today = domain::stock::today_algiers(st.clock.now());
    let note = b.note.clone();
    let action = if conforme { "LOT_QC_RELEASED" } else { "LOT_QC_REFUSED" };
    lot_change(&st, &number, action, &b.note, move |l| domain::stock::qc_release(l, conforme, &note, today), &id, &ctx)
        .await
}

#[utoipa::path(post, path = "/api/stock/lots/{number}/block", tag = "stock", request_body = NoteBody, responses((status = 200, description = "Lot bloqué"), (status = 422, description = "MOTIF_OBLIGATOIRE")))]
pub async fn block_lot(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(number): Path<String>,
    ApiJson(b): ApiJson<NoteBody>,
) -> Response {
    let note = b.note.clone();
    lot_change(&st, &number, "LOT_BLOCKED", &b.note, move |l| domain::stock::block(l, &note), &id, &ctx).await
}

#[utoipa::path(post, path = "/api/stock/lots/{number}/unblock", tag = "stock", request_body = NoteBody, responses(
    (status = 200, description = "Lot débloqué (dérogation)"), (status = 409, description = "LOT_PERIME_DEFINITIF, LOT_PERIME")))]
pub async fn unblock_lot(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(number): Path<String>,
    ApiJson(b): ApiJson<NoteBody>,
) -> Response {
    let today = domain::stock::today_algiers(st.clock.now());
    let note = b.note.clone();
    lot_change(&st, &number, "LOT_UNBLOCKED", &b.note, move |l| domain::stock::unblock(l, &note, today), &id, &ctx)
        .await
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LossBody {
    pub lot_number: String,
    pub quantity: i64,
    /// EXPIRED, DAMAGED, QC_FAILED, OTHER.
    pub reason: String,
    #[serde(default)]
    pub note: String,
}

/// DOMAIN.md §2.2 capabilities 22–23: losses on MP lots by ADMIN or APPRO, on PF lots by ADMIN or PRODUCTION.
pub fn may_declare_loss(role: Role, kind: &str) -> bool {
    match kind {
        "MP" => matches!(role, Role::Admin | Role::Appro),
        _ => matches!(role, Role::Admin | Role::Production),
    }
}

/// A loss on one lot: MP lots by ADMIN or APPRO, PF lots by ADMIN or PRODUCTION (DOMAIN.md §14).
#[utoipa::path(post, path = "/api/stock/losses", tag = "stock", request_body = LossBody, responses(
    (status = 201, description = "Perte enregistrée"), (status = 403, description = "ACCES_REFUSE"),
    (status = 409, description = "STOCK_INSUFFISANT"), (status = 422, description = "MOTIF_PERTE_INVALIDE, MOTIF_OBLIGATOIRE")))]
pub async fn declare_loss(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    headers: HeaderMap,
    ApiJson(b): ApiJson<LossBody>,
) -> Response {
    super::idempotency::handle(&st, &headers, &id, "/api/stock/losses", json!(b), |idem| loss(&st, &ctx, &id, b, idem))
        .await
}

/// One loss, as the API and the lot page declare it.
pub async fn loss(
    st: &AppState,
    ctx: &Ctx,
    id: &Identity,
    b: LossBody,
    idem: Option<Idem>,
) -> Result<(StatusCode, Value), ApiError> {
    let Some(reason) = domain::stock::LossReason::parse(&b.reason) else {
        return Err(super::admin::field_error(
            "reason",
            "VALEUR_INVALIDE",
            "Motif attendu : EXPIRED, DAMAGED, QC_FAILED ou OTHER.",
        ));
    };
    let (_, p) = lot_and_product(st, &b.lot_number).await?;
    if !may_declare_loss(id.role, &p.kind) {
        crate::auth::audit_refusal(
            st,
            id.actor(ctx),
            store::audit::Change::new("ACCESS_DENIED").security().after(json!({"action": "LOSS", "lot": b.lot_number})),
        )
        .await;
        return Err(crate::auth::acces_refuse());
    }
    let (actor, now) = (id.actor(ctx), st.clock.now());
    super::idempotency::create(st, &idem, now, |tx| {
        let (number, note, actor) = (b.lot_number.clone(), b.note.clone(), actor.clone());
        let qty = b.quantity;
        Box::pin(async move {
            let (loss, lot) = store::stock::declare_loss(&**tx, &number, qty, reason, &note, &actor, now).await?;
            Ok(json!({"reference": loss.reference, "lotNumber": lot.lot_number, "quantity": loss.quantity,
                    "reason": loss.reason, "value": loss.value, "lotStatus": lot.status,
                    "remainingAfter": lot.quantity_remaining}))
        })
    })
    .await
}

/// The product kinds whose losses a role reads (UI.md row 38: APPRO MP, PRODUCTION PF, ADMIN and COMPTABLE all).
pub fn loss_kinds(role: Role) -> &'static [&'static str] {
    match role {
        Role::Appro => &["MP"],
        Role::Production => &["PF"],
        _ => &["MP", "PF"],
    }
}

#[derive(Deserialize, utoipa::IntoParams, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct LossQuery {
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

/// Losses, newest first (reference, date, lot, product, quantity, reason, value, author).
#[utoipa::path(get, path = "/api/stock/losses", tag = "stock", params(LossQuery), responses((status = 200, description = "Pertes")))]
pub async fn list_losses(State(st): State<AppState>, id: Identity, Query(q): Query<LossQuery>) -> Response {
    let (page, size) = match (super::admin::PageQuery { page: q.page, page_size: q.page_size }).resolve() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    match store::stock::losses(st.dbmon.db(), loss_kinds(id.role), (page - 1) * size, size).await {
        Ok((rows, total)) => {
            let items: Vec<Value> = rows
                .iter()
                .map(|(l, lot, product, _)| {
                    json!({"reference": l.reference, "businessDate": l.business_date, "declaredAt": l.declared_at,
                        "lotNumber": lot, "productCode": product, "quantity": l.quantity, "reason": l.reason,
                        "note": l.note, "value": l.value, "declaredBy": l.declared_by})
                })
                .collect();
            Json(json!({"items": items, "total": total, "page": page, "pageSize": size})).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WriteOffBody {
    /// Lot numbers, each BLOCKED(EXPIRED) with something left.
    lots: Vec<String>,
}

/// Writes off selected expired lots (§14): every lot's whole remaining, one loss each, reason EXPIRED, all in one
/// transaction; the caller must be allowed to declare a loss on every lot. The answer lists the losses.
pub async fn write_off(
    st: &AppState,
    id: &Identity,
    ctx: &Ctx,
    lots: Vec<String>,
    idem: Option<Idem>,
) -> Result<(StatusCode, Value), ApiError> {
    for number in &lots {
        let (_, p) = lot_and_product(st, number).await?;
        if !may_declare_loss(id.role, &p.kind) {
            crate::auth::audit_refusal(
                st,
                id.actor(ctx),
                store::audit::Change::new("ACCESS_DENIED")
                    .security()
                    .after(json!({"action": "WRITE_OFF", "lot": number})),
            )
            .await;
            return Err(crate::auth::acces_refuse());
        }
    }
    let (actor, now) = (id.actor(ctx), st.clock.now());
    super::idempotency::create(st, &idem, now, |tx| {
        let (lots, actor) = (lots.clone(), actor.clone());
        Box::pin(async move {
            let losses = store::stock::write_off_expired(&**tx, &lots, &actor, now).await?;
            let items: Vec<Value> = losses
                .iter()
                .map(|l| json!({"reference": l.reference, "quantity": l.quantity, "value": l.value}))
                .collect();
            Ok(json!({"items": items, "totalValue": losses.iter().map(|l| l.value).sum::<i64>()}))
        })
    })
    .await
}

/// "Déclarer la perte" on the expired-lots screen.
#[utoipa::path(post, path = "/api/stock/losses/write-off", tag = "stock", request_body = WriteOffBody, responses(
    (status = 201, description = "Pertes enregistrées"), (status = 403, description = "ACCES_REFUSE"),
    (status = 409, description = "LOT_STATUT_INVALIDE")))]
pub async fn write_off_expired(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    headers: HeaderMap,
    ApiJson(b): ApiJson<WriteOffBody>,
) -> Response {
    super::idempotency::handle(&st, &headers, &id, "/api/stock/losses/write-off", json!(b), |idem| {
        write_off(&st, &id, &ctx, b.lots, idem)
    })
    .await
}

#[derive(Deserialize, utoipa::IntoParams, Debug)]
#[serde(rename_all = "camelCase")]
pub struct PlanQuery {
    pub product: String,
    /// Milli-units.
    pub quantity: i64,
}

/// The FEFO dry run (§5.3): which usable lots would serve the quantity today; nothing is locked or written.
#[utoipa::path(get, path = "/api/stock/fefo-plan", tag = "stock", params(PlanQuery), responses((status = 200, description = "{sufficient, available, missing, allocations}")))]
pub async fn fefo_plan(State(st): State<AppState>, Query(q): Query<PlanQuery>) -> Response {
    if q.quantity <= 0 {
        return super::admin::field_error("quantity", "QUANTITE_INVALIDE", "Quantité invalide (doit être > 0).")
            .into_response();
    }
    let db = st.dbmon.db();
    let p = match store::catalogue::product_by_code(db.conn(), &q.product).await {
        Ok(Some(p)) => p,
        Ok(None) => return ApiError::from(Rejection::non_trouve("Produit")).into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let today = domain::stock::today_algiers(st.clock.now());
    match store::stock::plan_fefo(db, p.id, q.quantity, today).await {
        Ok(plan) => Json(json!({
            "productCode": p.code, "quantity": q.quantity, "sufficient": plan.sufficient, "available": plan.available,
            "missing": plan.missing,
            "allocations": plan.allocations.iter().map(|a| json!({"lotNumber": a.lot_number, "dlc": a.dlc, "take": a.take, "remainingAfter": a.remaining_after})).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

// ---- inventory counts -----------------------------------------------------------------------------------------------

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CountBody {
    pub product_code: String,
    /// Milli-units counted (≥ 0).
    pub declared_quantity: i64,
    /// DLC of a surplus of a perishable product.
    #[schema(value_type = Option<String>, format = Date)]
    pub dlc: Option<NaiveDate>,
    pub note: Option<String>,
}

fn count_view(c: &store::inventory::Count, code: &str, role: Role) -> Value {
    let mut v = store::inventory::count_json(c, code);
    if matches!(role, Role::Appro | Role::Production) && code.starts_with("PF-") || role == Role::Production {
        v.as_object_mut().map(|o| {
            o.remove("unitValue");
            o.remove("value")
        });
    }
    v
}

/// Declares a count (ADMIN, APPRO, PRODUCTION); LOW counts are approved and posted at once.
#[utoipa::path(post, path = "/api/stock/counts", tag = "stock", request_body = CountBody, responses(
    (status = 201, description = "Comptage déclaré (APPROVED, PENDING ou PENDING_DOUBLE)"), (status = 429, description = "INVENTAIRE_DELAI"),
    (status = 422, description = "DLC_OBLIGATOIRE")))]
pub async fn declare_count(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    headers: HeaderMap,
    ApiJson(b): ApiJson<CountBody>,
) -> Response {
    super::idempotency::handle(&st, &headers, &id, "/api/stock/counts", json!(b), |idem| count(&st, &ctx, &id, b, idem))
        .await
}

/// One count declaration, as the API and the count form make it.
pub async fn count(
    st: &AppState,
    ctx: &Ctx,
    id: &Identity,
    b: CountBody,
    idem: Option<Idem>,
) -> Result<(StatusCode, Value), ApiError> {
    let db = st.dbmon.db();
    let product = store::catalogue::product_by_code(db.conn(), &b.product_code)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Produit")))?;
    let (code, role) = (product.code.clone(), id.role);
    let (actor, now) = (id.actor(ctx), st.clock.now());
    super::idempotency::create(st, &idem, now, |tx| {
        let d = store::inventory::Declaration {
            product: product.clone(),
            declared: b.declared_quantity,
            surplus_dlc: b.dlc,
            note: b.note.clone().filter(|n| !n.trim().is_empty()),
        };
        let (actor, code) = (actor.clone(), code.clone());
        Box::pin(async move {
            let c = store::inventory::declare(&**tx, d, &actor, now).await?;
            Ok(count_view(&c, &code, role))
        })
    })
    .await
}

async fn count_and_code(st: &AppState, reference: &str) -> Result<(store::inventory::Count, String), ApiError> {
    let db = st.dbmon.db();
    let c = store::inventory::by_reference(db.conn(), reference)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Comptage")))?;
    let code = store::stock::product(db.conn(), c.product_id).await?.map(|p| p.code).unwrap_or_default();
    Ok((c, code))
}

#[utoipa::path(get, path = "/api/stock/counts", tag = "stock", params(ListQuery), responses((status = 200, description = "Comptages, les plus récents d'abord")))]
pub async fn list_counts(State(st): State<AppState>, id: Identity, Query(q): Query<ListQuery>) -> Response {
    let (page, size) = match (super::admin::PageQuery { page: q.page, page_size: q.page_size }).resolve() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let db = st.dbmon.db();
    let all = match store::inventory::list(db).await {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let total = all.len() as u64;
    let mut items = Vec::new();
    for c in all.iter().skip(((page - 1) * size) as usize).take(size as usize) {
        let code =
            store::stock::product(db.conn(), c.product_id).await.ok().flatten().map(|p| p.code).unwrap_or_default();
        items.push(count_view(c, &code, id.role));
    }
    Json(json!({"items": items, "total": total, "page": page, "pageSize": size})).into_response()
}

#[utoipa::path(get, path = "/api/stock/counts/{reference}", tag = "stock", responses((status = 200, description = "Comptage")))]
pub async fn get_count(State(st): State<AppState>, id: Identity, Path(reference): Path<String>) -> Response {
    count_and_code(&st, &reference).await.map(|(c, code)| Json(count_view(&c, &code, id.role))).into_response()
}

/// A validation (ADMIN, COMPTABLE), never by the counter; a critical count needs two different validators.
#[utoipa::path(post, path = "/api/stock/counts/{reference}/validate", tag = "stock", responses(
    (status = 200, description = "Validé (ou première validation)"), (status = 403, description = "AUTO_VALIDATION_INTERDITE, VALIDATEUR_IDENTIQUE"),
    (status = 409, description = "TRANSITION_INVALIDE, STOCK_INSUFFISANT")))]
pub async fn validate_count(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(reference): Path<String>,
) -> Response {
    let (actor, now) = (id.actor(&ctx), st.clock.now());
    let res = st
        .dbmon
        .db()
        .write(|tx| {
            let (reference, actor) = (reference.clone(), actor.clone());
            Box::pin(async move { store::inventory::validate(&**tx, &reference, &actor, now).await })
        })
        .await;
    match res {
        Ok(c) => {
            let code = count_and_code(&st, &c.reference).await.map(|x| x.1).unwrap_or_default();
            Json(count_view(&c, &code, id.role)).into_response()
        }
        Err(store::OpError::Rejected(r))
            if r.code == "AUTO_VALIDATION_INTERDITE" || r.code == "VALIDATEUR_IDENTIQUE" =>
        {
            crate::auth::audit_refusal(
                &st,
                actor,
                store::audit::Change::new(r.code).security().entity("inventory_count", &reference),
            )
            .await;
            ApiError::from(r).into_response()
        }
        Err(e) => op_err(&st, e).into_response(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    reason: String,
}

#[utoipa::path(post, path = "/api/stock/counts/{reference}/reject", tag = "stock", request_body = RejectBody, responses(
    (status = 200, description = "Rejeté, rien n'est passé en stock"), (status = 422, description = "MOTIF_TROP_COURT")))]
pub async fn reject_count(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(reference): Path<String>,
    ApiJson(b): ApiJson<RejectBody>,
) -> Response {
    let (actor, now) = (id.actor(&ctx), st.clock.now());
    let res = st
        .dbmon
        .db()
        .write(|tx| {
            let (reference, reason, actor) = (reference.clone(), b.reason.clone(), actor.clone());
            Box::pin(async move { store::inventory::reject(&**tx, &reference, &reason, &actor, now).await })
        })
        .await;
    match res {
        Ok(c) => {
            let code = count_and_code(&st, &c.reference).await.map(|x| x.1).unwrap_or_default();
            Json(count_view(&c, &code, id.role)).into_response()
        }
        Err(e) => op_err(&st, e).into_response(),
    }
}

// ---- stock views ----------------------------------------------------------------------------------------------------

#[derive(Deserialize, utoipa::IntoParams, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct StockQuery {
    /// `mp` or `pf` (default `mp`; COMMERCIAL always `pf`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// A past day (`YYYY-MM-DD`, Africa/Algiers): the stock at the end of that day.
    #[param(value_type = Option<String>, format = Date)]
    pub date: Option<NaiveDate>,
}

/// Stock per product: total, usable, in quarantine, blocked, value at lot cost (where the role may see values), and
/// whether it is below its minimum. With `date`, the total at the end of that day.
#[utoipa::path(get, path = "/api/stock/products", tag = "stock", params(StockQuery), responses((status = 200, description = "Stock par produit")))]
pub async fn stock_by_product(State(st): State<AppState>, id: Identity, Query(q): Query<StockQuery>) -> Response {
    let kind = if id.role == Role::Commercial || q.kind.as_deref() == Some("pf") { "PF" } else { "MP" };
    let db = st.dbmon.db();
    let products = match store::catalogue::list_products(db, kind).await {
        Ok(p) => p,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let shows_value = matches!(id.role, Role::Admin | Role::Comptable) || (id.role == Role::Appro && kind == "MP");
    if let Some(date) = q.date {
        let at = match store::stock::stock_at(db, date).await {
            Ok(a) => a,
            Err(e) => return ApiError::from(e).into_response(),
        };
        let items: Vec<Value> = products
            .iter()
            .map(|p| {
                json!({"productCode": p.code, "name": p.name, "baseUnit": p.base_unit, "date": date,
                            "total": at.iter().find(|x| x.0 == p.id).map(|x| x.1).unwrap_or(0)})
            })
            .collect();
        return Json(json!({"items": items, "total": items.len()})).into_response();
    }
    let today = domain::stock::today_algiers(st.clock.now());
    let mut items = Vec::new();
    for p in &products {
        let lots = match store::stock::lots_of(db.conn(), p.id).await {
            Ok(l) => l,
            Err(e) => return ApiError::from(e).into_response(),
        };
        let sum = |f: &dyn Fn(&store::stock::Lot) -> bool| {
            lots.iter().filter(|l| f(l)).map(|l| l.quantity_remaining).sum::<i64>()
        };
        let total = sum(&|_| true);
        let usable = sum(&|l| store::stock::lot_facts(l).usable(today));
        let mut v = json!({
            "productCode": p.code, "name": p.name, "baseUnit": p.base_unit, "total": total, "disponible": usable,
            "quarantaine": sum(&|l| l.status == "QUARANTINE"), "bloque": sum(&|l| l.status == "BLOCKED"),
            "minStock": p.min_stock, "sousMinimum": usable < p.min_stock,
        });
        if shows_value {
            v["valeur"] = json!(
                lots.iter().map(|l| domain::money::amount(l.quantity_remaining, l.unit_cost).unwrap_or(0)).sum::<i64>()
            );
        }
        items.push(v);
    }
    Json(json!({"items": items, "total": items.len()})).into_response()
}

#[derive(Deserialize, utoipa::IntoParams, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct MovementQuery {
    pub product: Option<String>,
    pub lot: Option<String>,
    /// `IN` or `OUT`.
    pub direction: Option<String>,
    /// `RECEPTION`, `LOSS`, `INVENTORY_IN`, …
    pub origin: Option<String>,
    /// Business dates, inclusive (YYYY-MM-DD).
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

/// Resolves the codes of a movement query into the store's filter; `None` when a named product or lot does not exist.
pub async fn movement_filter(
    db: &store::Db,
    role: Role,
    q: &MovementQuery,
) -> Result<store::stock::MovementFilter, ApiError> {
    let mut f = store::stock::MovementFilter {
        direction: q.direction.clone().filter(|d| d == "IN" || d == "OUT"),
        origin: q.origin.clone().filter(|o| !o.is_empty()),
        from: q.from,
        to: q.to,
        // COMMERCIAL reads PF movements only.
        kinds: if role == Role::Commercial { vec!["PF".into()] } else { Vec::new() },
        ..Default::default()
    };
    if let Some(code) = q.product.as_deref().filter(|c| !c.is_empty()) {
        let p = store::catalogue::product_by_code(db.conn(), code).await?;
        f.product_id = Some(p.ok_or_else(|| Rejection::non_trouve("Produit"))?.id);
    }
    if let Some(n) = q.lot.as_deref().filter(|n| !n.is_empty()) {
        let l = store::stock::lot_by_number(db.conn(), n).await?;
        f.lot_id = Some(l.ok_or_else(|| Rejection::non_trouve("Lot"))?.id);
    }
    Ok(f)
}

/// The ledger, newest first, filtered by product, lot, direction, origin and business dates.
#[utoipa::path(get, path = "/api/stock/movements", tag = "stock", params(MovementQuery), responses((status = 200, description = "Mouvements")))]
pub async fn list_movements(State(st): State<AppState>, id: Identity, Query(q): Query<MovementQuery>) -> Response {
    let (page, size) = match (super::admin::PageQuery { page: q.page, page_size: q.page_size }).resolve() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let db = st.dbmon.db();
    let filter = match movement_filter(db, id.role, &q).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let (rows, total) = match store::stock::movements(db, &filter, (page - 1) * size, size).await {
        Ok(x) => x,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let labels = match store::stock::movement_labels(db, &rows).await {
        Ok(x) => x,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let hide_cost = matches!(id.role, Role::Production | Role::Commercial);
    let items: Vec<Value> = rows
        .iter()
        .zip(labels)
        .map(|(m, (lot, product, _))| {
            let mut v = json!({"createdAt": m.created_at, "businessDate": m.business_date, "lotNumber": lot,
                "productCode": product, "direction": m.direction, "quantity": m.quantity, "origin": m.origin,
                "unitCost": m.unit_cost, "sourceReference": m.source_reference, "userId": m.user_id,
                "remainingAfter": m.remaining_after});
            if hide_cost {
                v.as_object_mut().map(|o| o.remove("unitCost"));
            }
            v
        })
        .collect();
    Json(json!({"items": items, "total": total, "page": page, "pageSize": size})).into_response()
}

#[utoipa::path(get, path = "/api/stock/lots/{number}/label", tag = "stock", responses(
    (status = 200, description = "L'étiquette du lot en PDF (100 × 50 mm, QR signé)", content_type = "application/pdf"),
    (status = 404, description = "NON_TROUVE")))]
pub async fn lot_label(State(st): State<AppState>, Path(number): Path<String>) -> Response {
    crate::print::answer_labels(crate::print::lot_labels(&st, &number).await).await
}

#[utoipa::path(get, path = "/api/receptions/{reference}/labels", tag = "stock", responses(
    (status = 200, description = "Les étiquettes de tous les lots de la réception, une par page", content_type = "application/pdf"),
    (status = 404, description = "NON_TROUVE")))]
pub async fn reception_labels(State(st): State<AppState>, Path(reference): Path<String>) -> Response {
    crate::print::answer_labels(crate::print::reception_labels(&st, &reference).await).await
}
