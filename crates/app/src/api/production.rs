//! Recipes (DOMAIN.md §8.1), production orders (§8.2, §8.3) and traceability (§9). APPRO reads both without costs (R−, capabilities 15
//! and 16); ADMIN and PRODUCTION write; COMPTABLE reads.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use domain::identity::Role;
use domain::production::{ItemInput, ItemKind, QcStatus, RecipeInput};
use domain::rejection::Rejection;
use domain::validation::Fields;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::production::{NewItem, NewVersion};
use utoipa::ToSchema;

use super::catalogue::write;
use super::idempotency::Idem;
use super::purchase::ReasonBody;
use crate::auth::{Ctx, Identity};
use crate::platform::errors::{ApiError, ApiJson};
use crate::state::AppState;

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecipeItemBody {
    /// MP, PACKAGING or FLUID.
    pub kind: String,
    /// MP / PACKAGING: the MP's code.
    pub product_code: Option<String>,
    /// FLUID: its name (eau, vapeur, électricité) and unit label.
    pub name: Option<String>,
    pub unit_label: Option<String>,
    /// Per batch, milli-units of the MP's base unit (or of the fluid's unit), > 0.
    pub quantity: i64,
    /// FLUID only: centimes per unit.
    pub unit_cost: Option<i64>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecipeBody {
    /// PF quantity per batch, milli-units (whole pieces for a PF in U).
    pub output_quantity: i64,
    pub batch_weight_g: i64,
    /// 0–5000, default 200 (2 %).
    pub loss_tolerance_bp: Option<i64>,
    /// 1–730 days; overrides the PF's shelf life.
    pub shelf_life_override_days: Option<i64>,
    pub notes: Option<String>,
    pub items: Vec<RecipeItemBody>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OrderBody {
    pub product_code: String,
    /// 1–100.
    pub batch_count: i64,
    /// Today or later.
    #[schema(value_type = String, format = Date)]
    pub planned_date: NaiveDate,
    pub notes: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RescheduleBody {
    #[schema(value_type = String, format = Date)]
    pub planned_date: NaiveDate,
}

#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CompleteBody {
    /// Milli-units of the PF, > 0 (whole pieces for a PF in U).
    pub quantity_produced: i64,
    /// PASSED, PENDING or FAILED.
    pub qc_status: String,
    /// ≥ 10 characters when FAILED.
    pub qc_note: Option<String>,
    pub actual_batch_weight_g: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct OrderQuery {
    /// PENDING, IN_PROGRESS, COMPLETED, CANCELLED.
    pub status: Option<String>,
    /// PF code.
    pub product: Option<String>,
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<NaiveDate>,
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<NaiveDate>,
}

/// APPRO reads recipes and orders without any cost (R−).
fn hides_costs(role: Role) -> bool {
    role == Role::Appro
}

fn strip(v: &mut Value, keys: &[&str]) {
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
}

async fn pf_by_code(st: &AppState, code: &str) -> Result<store::stock::Product, ApiError> {
    match store::catalogue::product_by_code(st.dbmon.db().conn(), code).await? {
        Some(p) if p.kind == "PF" => Ok(p),
        _ => Err(Rejection::non_trouve("Produit fini").into()),
    }
}

// ---- Recipes --------------------------------------------------------------------------------------------------

async fn version_json(
    st: &AppState,
    v: &store::production::Version,
    pf: &store::stock::Product,
    items: &[store::production::Item],
    role: Role,
) -> Result<Value, ApiError> {
    let c = st.dbmon.db().conn();
    let mut out = Vec::new();
    for i in items {
        let p = match i.product_id {
            Some(id) => store::stock::product(c, id).await?,
            None => None,
        };
        let mut iv = json!({
            "lineNo": i.line_no, "kind": i.kind, "productCode": p.as_ref().map(|p| &p.code),
            "productName": p.as_ref().map(|p| &p.name), "unit": p.as_ref().map(|p| &p.base_unit),
            "name": i.fluid_name, "unitLabel": i.unit_label, "quantity": i.quantity, "unitCost": i.unit_cost,
        });
        if hides_costs(role) {
            strip(&mut iv, &["unitCost"]);
        }
        out.push(iv);
    }
    Ok(json!({
        "productCode": pf.code, "productName": pf.name, "productUnit": pf.base_unit,
        "version": v.version, "status": v.status, "outputQuantity": v.output_quantity,
        "batchWeightG": v.batch_weight_g, "lossToleranceBp": v.loss_tolerance_bp,
        "shelfLifeOverrideDays": v.shelf_life_override_days, "notes": v.notes, "createdAt": v.created_at,
        "archivedAt": v.archived_at, "items": out,
    }))
}

/// The PF's recipe: the active version and every version, newest first.
pub async fn recipe_of(st: &AppState, code: &str, role: Role) -> Result<Value, ApiError> {
    let pf = pf_by_code(st, code).await?;
    let c = st.dbmon.db().conn();
    let mut versions = Vec::new();
    let mut active = Value::Null;
    for v in store::production::versions_of(c, pf.id).await? {
        let items = store::production::items_of(c, v.id).await?;
        let j = version_json(st, &v, &pf, &items, role).await?;
        if v.status == "ACTIVE" {
            active = j.clone();
        }
        versions.push(j);
    }
    Ok(json!({"productCode": pf.code, "productName": pf.name, "active": active, "versions": versions}))
}

/// Checks a recipe body against §8.1 and the catalogue (field errors together).
async fn new_version_of(st: &AppState, pf: &store::stock::Product, b: &RecipeBody) -> Result<NewVersion, ApiError> {
    let c = st.dbmon.db().conn();
    let mut f = Fields::new();
    let mut inputs = Vec::new();
    let mut items = Vec::new();
    for (i, it) in b.items.iter().enumerate() {
        let Some(kind) = ItemKind::parse(it.kind.trim()) else {
            f.add(&format!("items[{i}].kind"), "INVALID", "Type d'élément : MP, PACKAGING ou FLUID.");
            continue;
        };
        let (code, product) = if kind.stocked() {
            let code = it.product_code.clone().unwrap_or_default().trim().to_uppercase();
            let p = if code.is_empty() { None } else { store::catalogue::product_by_code(c, &code).await? };
            match &p {
                Some(p) => domain::production::check_item_product(
                    &mut f,
                    i,
                    kind,
                    &domain::production::ItemProduct {
                        code: p.code.clone(),
                        is_mp: p.kind == "MP",
                        category: p.category.clone(),
                        stock_tracked: p.stock_tracked,
                        active: p.active,
                    },
                ),
                None if !code.is_empty() => {
                    f.add(&format!("items[{i}].code"), "NON_TROUVE", format!("Matière {code} introuvable."))
                }
                None => {}
            }
            (code, p)
        } else {
            (it.name.clone().unwrap_or_default().trim().to_string(), None)
        };
        inputs.push(ItemInput { kind, code: code.clone(), quantity: it.quantity, unit_cost: it.unit_cost });
        items.push(NewItem {
            kind,
            product,
            fluid_name: (!kind.stocked()).then(|| code.clone()),
            unit_label: if kind.stocked() {
                None
            } else {
                it.unit_label.clone().map(|u| u.trim().to_string()).filter(|u| !u.is_empty())
            },
            quantity: it.quantity,
            unit_cost: it.unit_cost,
        });
    }
    f.into_result()?;
    let input = RecipeInput {
        output_quantity: b.output_quantity,
        batch_weight_g: b.batch_weight_g,
        loss_tolerance_bp: b.loss_tolerance_bp,
        shelf_life_override_days: b.shelf_life_override_days,
        items: inputs,
    };
    let tolerance = domain::production::check_recipe(&input, pf.base_unit == "U")?;
    Ok(NewVersion {
        output_quantity: b.output_quantity,
        batch_weight_g: b.batch_weight_g,
        loss_tolerance_bp: tolerance,
        shelf_life_override_days: b.shelf_life_override_days,
        notes: b.notes.clone().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
        items,
    })
}

pub async fn save_recipe(
    st: &AppState,
    code: &str,
    b: &RecipeBody,
    id: &Identity,
    ctx: &Ctx,
) -> Result<Value, ApiError> {
    let pf = pf_by_code(st, code).await?;
    if !pf.active {
        return Err(Rejection::new("PRODUIT_INACTIF", 409, format!("{} est désactivé.", pf.code)).into());
    }
    let new = new_version_of(st, &pf, b).await?;
    let (actor, now) = (id.actor(ctx), st.clock.now());
    write(st, move |tx| {
        let (pf, new, actor) = (pf.clone(), new.clone(), actor.clone());
        Box::pin(async move { store::production::create_version(&**tx, &pf, new, &actor, now).await.map(|_| ()) })
    })
    .await?;
    recipe_of(st, code, id.role).await
}

#[utoipa::path(get, path = "/api/recipes", tag = "production", responses(
    (status = 200, description = "Recettes actives, une par produit fini")))]
pub async fn list_recipes(State(st): State<AppState>, id: Identity) -> Response {
    let all = match store::production::active_recipes(st.dbmon.db()).await {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut items = Vec::new();
    for (v, pf, its) in &all {
        match version_json(&st, v, pf, its, id.role).await {
            Ok(j) => items.push(j),
            Err(e) => return e.into_response(),
        }
    }
    Json(json!({"items": items, "total": items.len()})).into_response()
}

#[utoipa::path(get, path = "/api/recipes/{code}", tag = "production", responses(
    (status = 200, description = "Recette d'un produit fini : version active et historique"),
    (status = 404, description = "NON_TROUVE")))]
pub async fn get_recipe(State(st): State<AppState>, id: Identity, Path(code): Path<String>) -> Response {
    recipe_of(&st, &code, id.role).await.map(Json).into_response()
}

#[utoipa::path(post, path = "/api/recipes/{code}", tag = "production", request_body = RecipeBody, responses(
    (status = 200, description = "Nouvelle version active ; la précédente est archivée"),
    (status = 422, description = "RECETTE_DOUBLON, VALIDATION_ERROR"), (status = 409, description = "PRODUIT_INACTIF")))]
pub async fn post_recipe(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<RecipeBody>,
) -> Response {
    save_recipe(&st, &code, &b, &id, &ctx).await.map(Json).into_response()
}

// ---- Production orders ----------------------------------------------------------------------------------------

const COST_FIELDS: [&str; 3] = ["consumedCost", "fluidCost", "unitCost"];

pub fn order_summary(o: &store::production::Order, pf: &store::stock::Product, role: Role) -> Value {
    let status = store::production::status_of(o);
    let mut v = json!({
        "reference": o.reference, "status": o.status, "statusLabel": status.label(),
        "productCode": pf.code, "productName": pf.name, "productUnit": pf.base_unit,
        "batchCount": o.batch_count, "targetQuantity": o.target_quantity, "plannedDate": o.planned_date,
        "quantityProduced": o.quantity_produced, "yieldBp": o.yield_bp, "qcStatus": o.qc_status,
        "consumedCost": o.consumed_cost, "fluidCost": o.fluid_cost, "unitCost": o.unit_cost,
    });
    if hides_costs(role) {
        strip(&mut v, &COST_FIELDS);
    }
    v
}

/// An order with its recipe version, needs (while PENDING) or consumptions by lot, and its PF lot.
pub async fn order_detail(st: &AppState, reference: &str, role: Role) -> Result<Value, ApiError> {
    let v = store::production::view(st.dbmon.db().conn(), reference, st.clock.now())
        .await
        .map_err(|e| crate::auth::session::op_err(st, e))?;
    Ok(view_json(&v, role))
}

pub fn view_json(view: &store::production::OrderView, role: Role) -> Value {
    let o = &view.order;
    let mut out = order_summary(o, &view.pf, role);
    let needs: Vec<Value> = view
        .needs
        .iter()
        .map(|n| {
            let stocked = n.item.product_id.is_some();
            json!({
                "kind": n.item.kind, "productCode": n.product.as_ref().map(|p| &p.code),
                "productName": n.product.as_ref().map(|p| &p.name), "unit": n.product.as_ref().map(|p| &p.base_unit),
                "name": n.item.fluid_name, "unitLabel": n.item.unit_label, "need": n.need,
                "available": stocked.then_some(n.available), "committedElsewhere": stocked.then_some(n.committed),
                "missing": stocked.then_some(n.missing),
            })
        })
        .collect();
    let startable = view.needs.iter().all(|n| n.missing == 0);
    let consumptions: Vec<Value> = view
        .consumptions
        .iter()
        .map(|(r, lot, p)| {
            let mut cv = json!({
                "productCode": p.as_ref().map(|p| &p.code), "productName": p.as_ref().map(|p| &p.name),
                "unit": p.as_ref().map(|p| &p.base_unit), "lotNumber": lot.as_ref().map(|l| &l.lot_number),
                "dlc": lot.as_ref().and_then(|l| l.dlc), "quantity": r.quantity, "unitCost": r.unit_cost,
            });
            if hides_costs(role) {
                strip(&mut cv, &["unitCost"]);
            }
            cv
        })
        .collect();
    let extra = json!({
        "recipeVersion": view.version.as_ref().map(|v| v.version),
        "lossToleranceBp": view.version.as_ref().map(|v| v.loss_tolerance_bp),
        "notes": o.notes, "createdAt": o.created_at, "startedAt": o.started_at, "completedAt": o.completed_at,
        "completionDate": o.completion_date, "qcNote": o.qc_note, "actualBatchWeightG": o.actual_batch_weight_g,
        "cancelReason": o.cancel_reason, "cancelledAt": o.cancelled_at,
        "pfLot": view.pf_lot.as_ref().map(|l| json!({
            "lotNumber": l.lot_number, "status": l.status, "blockReason": l.block_reason, "dlc": l.dlc,
            "quantity": l.initial_quantity,
        })),
        "needs": needs, "startable": startable, "consumptions": consumptions,
    });
    if let (Some(o), Some(e)) = (out.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    out
}

pub async fn create_order(
    st: &AppState,
    b: &OrderBody,
    id: &Identity,
    ctx: &Ctx,
    idem: Option<Idem>,
) -> Result<(StatusCode, Value), ApiError> {
    let pf = pf_by_code(st, &b.product_code).await?;
    if !pf.active {
        return Err(Rejection::new("PRODUIT_INACTIF", 409, format!("{} est désactivé.", pf.code)).into());
    }
    let (actor, now, role) = (id.actor(ctx), st.clock.now(), id.role);
    let notes = b.notes.clone().map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    let (batches, planned) = (b.batch_count, b.planned_date);
    super::idempotency::create(st, &idem, now, |tx| {
        let (pf, actor, notes) = (pf.clone(), actor.clone(), notes.clone());
        Box::pin(async move {
            let o = store::production::create_order(&**tx, &pf, batches, planned, notes, &actor, now).await?;
            Ok(view_json(&store::production::view(&**tx, &o.reference, now).await?, role))
        })
    })
    .await
}

#[utoipa::path(post, path = "/api/production-orders", tag = "production", request_body = OrderBody, responses(
    (status = 201, description = "Ordre planifié, avec la table besoins / disponibilité"),
    (status = 422, description = "RECETTE_ABSENTE, DATE_INVALIDE, VALIDATION_ERROR")))]
pub async fn create(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    headers: HeaderMap,
    ApiJson(b): ApiJson<OrderBody>,
) -> Response {
    super::idempotency::handle(&st, &headers, &id, "/api/production-orders", json!(b), |idem| {
        create_order(&st, &b, &id, &ctx, idem)
    })
    .await
}

#[utoipa::path(get, path = "/api/production-orders", tag = "production", params(OrderQuery), responses(
    (status = 200, description = "Ordres de production, date prévue décroissante")))]
pub async fn list(State(st): State<AppState>, id: Identity, Query(q): Query<OrderQuery>) -> Response {
    let all = match store::production::list(st.dbmon.db()).await {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let items: Vec<Value> = all
        .iter()
        .filter(|(o, _)| q.status.as_deref().is_none_or(|s| o.status.eq_ignore_ascii_case(s)))
        .filter(|(_, p)| q.product.as_deref().is_none_or(|c| p.code.eq_ignore_ascii_case(c)))
        .filter(|(o, _)| q.from.is_none_or(|d| o.planned_date >= d) && q.to.is_none_or(|d| o.planned_date <= d))
        .map(|(o, p)| order_summary(o, p, id.role))
        .collect();
    Json(json!({"total": items.len(), "items": items})).into_response()
}

#[utoipa::path(get, path = "/api/production-orders/{reference}", tag = "production", responses(
    (status = 200, description = "Ordre : version de recette, besoins ou consommations par lot, lot PF"),
    (status = 404, description = "NON_TROUVE")))]
pub async fn get(State(st): State<AppState>, id: Identity, Path(reference): Path<String>) -> Response {
    order_detail(&st, &reference, id.role).await.map(Json).into_response()
}

#[derive(Clone)]
pub enum Transition {
    Reschedule(NaiveDate),
    Start,
    Complete(store::production::Completion),
    Cancel(String),
}

/// One state change in one transaction; answers the order after it.
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
                Transition::Reschedule(d) => {
                    store::production::reschedule(c, &reference, d, &actor, now).await.map(|_| ())
                }
                Transition::Start => store::production::start(c, &reference, &actor, now).await.map(|_| ()),
                Transition::Complete(done) => {
                    store::production::complete(c, &reference, done, &actor, now).await.map(|_| ())
                }
                Transition::Cancel(r) => store::production::cancel(c, &reference, &r, &actor, now).await.map(|_| ()),
            }
        })
    })
    .await?;
    order_detail(st, reference, id.role).await
}

/// The completion of a body: the QC status is one of three words.
pub fn completion_of(b: &CompleteBody) -> Result<store::production::Completion, Rejection> {
    let qc = QcStatus::parse(b.qc_status.trim()).ok_or_else(|| {
        let mut f = Fields::new();
        f.add("qcStatus", "INVALID", "Résultat du contrôle qualité : PASSED, PENDING ou FAILED.");
        f.into_result().unwrap_err()
    })?;
    Ok(store::production::Completion {
        quantity_produced: b.quantity_produced,
        qc,
        qc_note: b.qc_note.clone(),
        actual_batch_weight_g: b.actual_batch_weight_g,
    })
}

#[utoipa::path(post, path = "/api/production-orders/{reference}/reschedule", tag = "production", request_body = RescheduleBody, responses(
    (status = 200, description = "Replanifié"), (status = 422, description = "DATE_INVALIDE"),
    (status = 409, description = "TRANSITION_INVALIDE")))]
pub async fn reschedule(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(reference): Path<String>,
    ApiJson(b): ApiJson<RescheduleBody>,
) -> Response {
    transition(&st, &reference, &id, &ctx, Transition::Reschedule(b.planned_date)).await.map(Json).into_response()
}

#[utoipa::path(post, path = "/api/production-orders/{reference}/start", tag = "production", responses(
    (status = 200, description = "En cours : chaque matière consommée FEFO"),
    (status = 409, description = "STOCK_INSUFFISANT (liste complète des manques), TRANSITION_INVALIDE")))]
pub async fn start(State(st): State<AppState>, ctx: Ctx, id: Identity, Path(reference): Path<String>) -> Response {
    transition(&st, &reference, &id, &ctx, Transition::Start).await.map(Json).into_response()
}

#[utoipa::path(post, path = "/api/production-orders/{reference}/complete", tag = "production", request_body = CompleteBody, responses(
    (status = 200, description = "Terminé : lot PF créé, rendement et coût calculés"),
    (status = 422, description = "QUANTITE_INVALIDE, MOTIF_TROP_COURT"), (status = 409, description = "TRANSITION_INVALIDE")))]
pub async fn complete(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(reference): Path<String>,
    ApiJson(b): ApiJson<CompleteBody>,
) -> Response {
    let done = match completion_of(&b) {
        Ok(d) => d,
        Err(r) => return ApiError::from(r).into_response(),
    };
    transition(&st, &reference, &id, &ctx, Transition::Complete(done)).await.map(Json).into_response()
}

#[utoipa::path(post, path = "/api/production-orders/{reference}/cancel", tag = "production", request_body = ReasonBody, responses(
    (status = 200, description = "Annulé ; en cours, chaque lot consommé est réintégré"),
    (status = 422, description = "MOTIF_TROP_COURT"), (status = 409, description = "TRANSITION_INVALIDE")))]
pub async fn cancel(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(reference): Path<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> Response {
    transition(&st, &reference, &id, &ctx, Transition::Cancel(b.reason)).await.map(Json).into_response()
}

// ---- Traceability ---------------------------------------------------------------------------------------------

#[derive(Deserialize, utoipa::IntoParams, Debug)]
#[serde(rename_all = "camelCase")]
pub struct TraceQuery {
    /// Lot number (typed or scanned from a label).
    pub lot: String,
    /// BACKWARD, FORWARD or BOTH (default).
    pub direction: Option<String>,
    /// `csv` (`;`-separated, UTF-8 with BOM) or `xlsx` for the export.
    pub format: Option<String>,
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn qty(v: &Value) -> String {
    v.as_i64().map(domain::format::qty_dot).unwrap_or_default()
}

/// The trace as one row per lot (CSV and Excel): the lot itself, then AMONT rows (MP lots consumed, their reception
/// and supplier), then AVAL rows (orders that consumed it and the PF lots made).
pub fn trace_rows(t: &Value) -> Vec<Vec<crate::export::Cell>> {
    use crate::export::Cell::{Number, Text};
    let row = |dir: &str, l: &Value, q: &Value, doc: [&Value; 4]| {
        let mut r =
            vec![Text(dir.into()), Text(s(&l["lotNumber"])), Text(s(&l["productCode"])), Text(s(&l["productName"]))];
        r.push(Number(qty(q)));
        r.extend([&l["unit"], &l["status"], &l["dlc"]].map(|v| Text(s(v))));
        r.extend(doc.map(|v| Text(s(v))));
        r
    };
    let header = [
        "sens",
        "lot",
        "produit",
        "designation",
        "quantite",
        "unite",
        "statut",
        "dlc",
        "document",
        "date",
        "tiers",
        "telephone",
    ];
    let none = &Value::Null;
    let l = &t["lot"];
    let mut rows = vec![header.iter().map(|h| Text(h.to_string())).collect::<Vec<_>>()];
    rows.push(row("LOT", l, &l["quantityRemaining"], [none; 4]));
    if let Some(r) = t["backward"].get("reception").filter(|r| !r.is_null()) {
        rows.push(row(
            "AMONT",
            none,
            none,
            [&r["reference"], &r["date"], &r["supplier"]["name"], &r["supplier"]["phone"]],
        ));
    }
    for i in t["backward"]["inputs"].as_array().into_iter().flatten() {
        let r = &i["reception"];
        rows.push(row(
            "AMONT",
            i,
            &i["quantityConsumed"],
            [&r["reference"], &r["date"], &r["supplier"]["name"], &r["supplier"]["phone"]],
        ));
    }
    for u in t["forward"]["usedBy"].as_array().into_iter().flatten() {
        let p = &u["pfLot"];
        rows.push(row(
            "AVAL",
            p,
            &p["initialQuantity"],
            [&u["order"]["reference"], &u["order"]["completionDate"], none, none],
        ));
    }
    rows
}

#[utoipa::path(get, path = "/api/trace", tag = "production", params(TraceQuery), responses(
    (status = 200, description = "Amont : ordre, lots MP consommés, réceptions, fournisseurs ; aval : ordres, lots PF, livraisons"),
    (status = 404, description = "NON_TROUVE"), (status = 400, description = "VALIDATION_ERROR")))]
pub async fn trace(State(st): State<AppState>, Query(q): Query<TraceQuery>) -> Response {
    let Some(d) = store::trace::Direction::parse(q.direction.as_deref().unwrap_or("BOTH")) else {
        let mut f = Fields::new();
        f.add("direction", "INVALID", "Sens : BACKWARD (amont), FORWARD (aval) ou BOTH.");
        return ApiError::from(f.into_result().unwrap_err()).into_response();
    };
    match store::trace::trace(st.dbmon.db().conn(), &q.lot, d).await {
        Ok(Some(v)) => match q.format.as_deref() {
            Some(f) if f.eq_ignore_ascii_case("csv") || f.eq_ignore_ascii_case("xlsx") => {
                file_answer("Tracabilite", &q.lot, f, &trace_rows(&v))
            }
            _ => Json(v).into_response(),
        },
        Ok(None) => ApiError::from(Rejection::non_trouve("Lot")).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The recall report as the API, the page and the CSV give it.
pub fn recall_json(
    lots: &[store::trace::RecallLot],
    shipped: &[store::delivery::Shipment],
    returns: &[store::delivery::Return],
) -> Value {
    let rows: Vec<Value> = lots
        .iter()
        .map(|r| {
            let b = &r.balance;
            json!({
                "lotNumber": r.lot.lot_number, "productCode": r.product.code, "productName": r.product.name,
                "kind": r.product.kind, "unit": r.product.base_unit, "status": r.lot.status,
                "blockReason": r.lot.block_reason, "dlc": r.lot.dlc, "initial": b.initial, "remaining": b.remaining,
                "usedInProduction": b.used_in_production, "delivered": b.delivered, "lost": b.lost,
                "adjusted": b.adjusted, "ecart": b.ecart(),
            })
        })
        .collect();
    let pf: Vec<&store::trace::RecallLot> = lots.iter().filter(|r| r.product.kind == "PF").collect();
    let sum = |f: &dyn Fn(&domain::stock::LotBalance) -> i64| pf.iter().map(|r| f(&r.balance)).sum::<i64>();
    json!({
        "lot": rows.first(), "lots": rows,
        "clients": store::trace::shipments_json(shipped),
        "returns": returns.iter().map(|r| json!({
            "creditNote": r.credit_note, "clientCode": r.client_code, "quantity": r.quantity, "returnLot": r.return_lot,
        })).collect::<Vec<_>>(),
        "totals": {
            "produced": sum(&|b| b.initial), "delivered": sum(&|b| b.delivered), "inStock": sum(&|b| b.remaining),
            "returned": returns.iter().map(|r| r.quantity).sum::<i64>(), "lost": sum(&|b| b.lost),
            "ecart": sum(&|b| b.ecart()),
        },
    })
}

/// The recall report with the shipments and returns of its lots.
pub async fn recall_value(
    c: &impl store::ConnectionTrait,
    lots: &[store::trace::RecallLot],
) -> Result<Value, store::StoreError> {
    let ids: Vec<uuid::Uuid> = lots.iter().map(|r| r.lot.id).collect();
    let shipped = store::delivery::shipped_from(c, &ids).await?;
    let returns = store::delivery::returns_of(c, &ids).await?;
    Ok(recall_json(lots, &shipped, &returns))
}

/// One row per lot of the report (CSV and Excel).
pub fn recall_rows(v: &Value) -> Vec<Vec<crate::export::Cell>> {
    use crate::export::Cell::{Number, Text};
    let mut rows = vec![
        [
            "lot",
            "produit",
            "designation",
            "statut",
            "dlc",
            "initial",
            "en_stock",
            "utilise_en_production",
            "livre",
            "perdu",
            "ajuste",
            "ecart",
            "unite",
        ]
        .iter()
        .map(|h| Text(h.to_string()))
        .collect::<Vec<_>>(),
    ];
    for l in v["lots"].as_array().into_iter().flatten() {
        let mut row: Vec<crate::export::Cell> =
            ["lotNumber", "productCode", "productName", "status", "dlc"].iter().map(|k| Text(s(&l[*k]))).collect();
        row.extend(
            ["initial", "remaining", "usedInProduction", "delivered", "lost", "adjusted", "ecart"]
                .iter()
                .map(|k| Number(qty(&l[*k]))),
        );
        row.push(Text(s(&l["unit"])));
        rows.push(row);
    }
    rows
}

/// A file answer: CSV or XLSX of `rows`, named after the lot.
pub(crate) fn file_answer(prefix: &str, lot: &str, format: &str, rows: &[Vec<crate::export::Cell>]) -> Response {
    let safe = lot.trim().replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
    let (kind, ext, body) = if format.eq_ignore_ascii_case("xlsx") {
        (crate::export::XLSX_TYPE, "xlsx", crate::export::xlsx(prefix, rows))
    } else {
        ("text/csv; charset=utf-8", "csv", crate::export::csv(rows).into_bytes())
    };
    (
        [
            (axum::http::header::CONTENT_TYPE, kind.to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-{safe}.{ext}\"", prefix.to_lowercase()),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize, utoipa::IntoParams, Debug)]
pub struct RecallQuery {
    /// The recalled lot (a supplier's MP lot or a PF lot).
    pub lot: String,
    /// `csv` or `xlsx` for the export.
    pub format: Option<String>,
}

#[utoipa::path(get, path = "/api/trace/recall", tag = "production", params(RecallQuery), responses(
    (status = 200, description = "Rapport de rappel : lots concernés, stock restant, livré, perdu, écart ; clients (ventes)"),
    (status = 404, description = "NON_TROUVE")))]
pub async fn recall(State(st): State<AppState>, Query(q): Query<RecallQuery>) -> Response {
    match store::trace::recall(st.dbmon.db().conn(), &q.lot).await {
        Ok(Some(lots)) => {
            let v = match recall_value(st.dbmon.db().conn(), &lots).await {
                Ok(v) => v,
                Err(e) => return ApiError::from(e).into_response(),
            };
            match q.format.as_deref() {
                Some(f) if f.eq_ignore_ascii_case("csv") || f.eq_ignore_ascii_case("xlsx") => {
                    file_answer("Rappel", &q.lot, f, &recall_rows(&v))
                }
                _ => Json(v).into_response(),
            }
        }
        Ok(None) => ApiError::from(Rejection::non_trouve("Lot")).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecallBlockBody {
    pub lot: String,
    /// The recall note, at least 10 characters; it becomes each lot's block note.
    pub note: String,
}

pub async fn block_all(st: &AppState, b: &RecallBlockBody, id: &Identity, ctx: &Ctx) -> Result<Value, ApiError> {
    let (actor, now, b) = (id.actor(ctx), st.clock.now(), b.clone());
    let blocked = write(st, move |tx| {
        let (actor, b) = (actor.clone(), b.clone());
        Box::pin(async move { store::trace::block_recall(&**tx, &b.lot, &b.note, &actor, now).await })
    })
    .await?;
    Ok(json!({"blocked": blocked}))
}

#[utoipa::path(post, path = "/api/trace/recall/block", tag = "production", request_body = RecallBlockBody, responses(
    (status = 200, description = "Lots bloqués (MANUAL, note de rappel)"),
    (status = 422, description = "MOTIF_TROP_COURT"), (status = 404, description = "NON_TROUVE")))]
pub async fn recall_block(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    ApiJson(b): ApiJson<RecallBlockBody>,
) -> Response {
    block_all(&st, &b, &id, &ctx).await.map(Json).into_response()
}
