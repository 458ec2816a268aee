//! Catalogue and parties (DOMAIN.md §3, §4): MP and PF, suppliers, clients. Lists follow PLATFORM.md §2.4; R− roles
//! never receive a price (DOMAIN.md §2.2).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::catalogue::{MpInput, PartyInput, PfInput};
use domain::identity::Role;
use domain::rejection::Rejection;
use serde::Deserialize;
use serde_json::{Value, json};
use store::catalogue as cat;
use utoipa::{IntoParams, ToSchema};

use super::admin::PageQuery;
use crate::auth::session::op_err;
use crate::auth::{Ctx, Identity};
use crate::platform::errors::{ApiError, ApiJson};
use crate::state::AppState;

#[derive(Deserialize, IntoParams, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub page: Option<u64>,
    pub page_size: Option<u64>,
    /// Text searched in the code and the name.
    pub q: Option<String>,
    /// `true` / `false`; all when absent.
    pub active: Option<bool>,
}

/// One page of `items` (already filtered), in the list shape of PLATFORM.md §2.4.
fn page_of(items: Vec<Value>, q: &ListQuery) -> Result<Value, ApiError> {
    let (page, size) = PageQuery { page: q.page, page_size: q.page_size }.resolve()?;
    let total = items.len() as u64;
    let items: Vec<Value> = items.into_iter().skip(((page - 1) * size) as usize).take(size as usize).collect();
    Ok(json!({"items": items, "total": total, "page": page, "pageSize": size}))
}

fn matches(q: &ListQuery, code: &str, name: &str, active: bool) -> bool {
    let text = q.q.as_deref().map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty());
    text.is_none_or(|t| code.to_lowercase().contains(&t) || name.to_lowercase().contains(&t))
        && q.active.is_none_or(|a| a == active)
}

/// APPRO and PRODUCTION read PFs without prices (R−).
fn pf_for(role: Role, mut v: Value) -> Value {
    if matches!(role, Role::Appro | Role::Production)
        && let Some(o) = v.as_object_mut()
    {
        o.remove("listPriceHt");
    }
    v
}

pub async fn write<T: Send + 'static>(
    st: &AppState,
    f: impl for<'t> Fn(&'t store::WriteTx) -> futures_util::future::BoxFuture<'t, Result<T, store::OpError>> + Send,
) -> Result<T, ApiError> {
    st.dbmon.db().write(|tx| f(tx)).await.map_err(|e| op_err(st, e))
}

// ---- MP -----------------------------------------------------------------------------------------------------------

#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MpBody {
    code: String,
    name: String,
    category: String,
    base_unit: String,
    perishable: Option<bool>,
    qc_required: Option<bool>,
    min_stock: Option<i64>,
    safety_threshold: Option<i64>,
    reorder_threshold: Option<i64>,
    lead_time_days: Option<i32>,
    criticite: Option<String>,
    stock_tracked: Option<bool>,
    /// The supplier the cockpit's suggestions order from (DOMAIN.md §7.2); empty clears it.
    main_supplier_code: Option<String>,
}

impl MpBody {
    fn input(&self) -> MpInput {
        MpInput {
            code: self.code.clone(),
            name: self.name.clone(),
            category: self.category.clone(),
            base_unit: self.base_unit.clone(),
            perishable: self.perishable,
            qc_required: self.qc_required,
            min_stock: self.min_stock,
            safety_threshold: self.safety_threshold,
            reorder_threshold: self.reorder_threshold,
            lead_time_days: self.lead_time_days,
            criticite: self.criticite.clone(),
            stock_tracked: self.stock_tracked,
        }
    }
}

#[utoipa::path(get, path = "/api/catalogue/mp", tag = "catalogue", params(ListQuery), responses((status = 200, description = "Matières premières")))]
pub async fn list_mp(State(st): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    match cat::list_products(st.dbmon.db(), "MP").await {
        Ok(all) => {
            let items = all.iter().filter(|p| matches(&q, &p.code, &p.name, p.active)).map(cat::product_json).collect();
            page_of(items, &q).map(Json).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Saves an MP (create when `existing` is `None`).
pub async fn save_mp(
    st: &AppState,
    existing: Option<store::stock::Product>,
    b: &MpBody,
    id: &Identity,
    ctx: &Ctx,
) -> Result<store::stock::Product, ApiError> {
    let m = domain::catalogue::check_mp(&b.input())?;
    let supplier = match b.main_supplier_code.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(code) => match cat::supplier_by_code(st.dbmon.db().conn(), code).await? {
            Some(s) => Some(s.id),
            None => {
                let mut f = domain::validation::Fields::new();
                f.add("mainSupplierCode", "NON_TROUVE", format!("Fournisseur {code} introuvable."));
                return Err(f.into_result().unwrap_err().into());
            }
        },
        None => None,
    };
    let (actor, now) = (id.actor(ctx), st.clock.now());
    write(st, move |tx| {
        let (existing, m, actor) = (existing.clone(), m.clone(), actor.clone());
        Box::pin(async move { cat::save_mp(&**tx, existing, m, supplier, &actor, now).await })
    })
    .await
}

#[utoipa::path(post, path = "/api/catalogue/mp", tag = "catalogue", request_body = MpBody, responses(
    (status = 201, description = "Créée"), (status = 400, description = "VALIDATION_ERROR"), (status = 409, description = "CODE_DEJA_UTILISE")))]
pub async fn create_mp(State(st): State<AppState>, ctx: Ctx, id: Identity, ApiJson(b): ApiJson<MpBody>) -> Response {
    match save_mp(&st, None, &b, &id, &ctx).await {
        Ok(p) => (StatusCode::CREATED, Json(cat::product_json(&p))).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn product_of(st: &AppState, kind: &str, code: &str) -> Result<store::stock::Product, ApiError> {
    let label = if kind == "MP" { "Matière première" } else { "Produit fini" };
    match cat::product_by_code(st.dbmon.db().conn(), code).await? {
        Some(p) if p.kind == kind => Ok(p),
        _ => Err(Rejection::non_trouve(label).into()),
    }
}

#[utoipa::path(get, path = "/api/catalogue/mp/{code}", tag = "catalogue", responses((status = 200, description = "Matière première"), (status = 404, description = "NON_TROUVE")))]
pub async fn get_mp(State(st): State<AppState>, Path(code): Path<String>) -> Response {
    product_of(&st, "MP", &code).await.map(|p| Json(cat::product_json(&p))).into_response()
}

#[utoipa::path(put, path = "/api/catalogue/mp/{code}", tag = "catalogue", request_body = MpBody, responses((status = 200, description = "Modifiée")))]
pub async fn update_mp(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<MpBody>,
) -> Response {
    let existing = match product_of(&st, "MP", &code).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    save_mp(&st, Some(existing), &b, &id, &ctx).await.map(|p| Json(cat::product_json(&p))).into_response()
}

/// Deactivates or reactivates an MP (DOMAIN.md §3.3): refused with the list of blockers while an active recipe
/// version or an open purchase order uses it.
async fn set_mp_active(st: &AppState, code: &str, active: bool, id: &Identity, ctx: &Ctx) -> Result<Value, ApiError> {
    let p = product_of(st, "MP", code).await?;
    let (actor, now) = (id.actor(ctx), st.clock.now());
    let target = p.clone();
    write(st, move |tx| {
        let (p, actor) = (target.clone(), actor.clone());
        Box::pin(async move { cat::set_product_active(&**tx, &p, active, &actor, now).await })
    })
    .await?;
    let p = product_of(st, "MP", &p.code).await?;
    Ok(cat::product_json(&p))
}

#[utoipa::path(post, path = "/api/catalogue/mp/{code}/deactivate", tag = "catalogue", responses(
    (status = 200, description = "Désactivée"), (status = 409, description = "PRODUIT_UTILISE (details.blockers)")))]
pub async fn deactivate_mp(State(st): State<AppState>, ctx: Ctx, id: Identity, Path(code): Path<String>) -> Response {
    set_mp_active(&st, &code, false, &id, &ctx).await.map(Json).into_response()
}

#[utoipa::path(post, path = "/api/catalogue/mp/{code}/reactivate", tag = "catalogue", responses(
    (status = 200, description = "Réactivée")))]
pub async fn reactivate_mp(State(st): State<AppState>, ctx: Ctx, id: Identity, Path(code): Path<String>) -> Response {
    set_mp_active(&st, &code, true, &id, &ctx).await.map(Json).into_response()
}

// ---- PF -----------------------------------------------------------------------------------------------------------

#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PfBody {
    code: String,
    name: String,
    base_unit: String,
    weight_g: Option<i32>,
    packaging_type: String,
    storage_type: String,
    shelf_life_days: i32,
    list_price_ht: i64,
    tva_rate: Option<i32>,
    min_stock: Option<i64>,
    /// Mandatory: the code of an active family.
    family_code: Option<String>,
    /// Optional: the code of an active brand.
    brand_code: Option<String>,
}

/// What the store knows of a brand or family code a form names (`kept` when the product already has it).
async fn choice(
    st: &AppState,
    kind: store::settings::RefKind,
    code: &Option<String>,
    current: Option<uuid::Uuid>,
) -> Result<Option<domain::catalogue::RefChoice>, ApiError> {
    let Some(code) = code.as_deref().map(str::trim).filter(|c| !c.is_empty()) else { return Ok(None) };
    let found = store::settings::reference_by_code(st.dbmon.db().conn(), kind, code).await?;
    Ok(Some(domain::catalogue::RefChoice {
        code: code.to_uppercase(),
        exists: found.is_some(),
        active: found.as_ref().is_some_and(|r| r.active),
        kept: found.is_some_and(|r| Some(r.id) == current),
    }))
}

/// A PF as JSON with its family and brand codes.
pub async fn pf_json(st: &AppState, role: Role, p: &store::stock::Product) -> Value {
    let conn = st.dbmon.db().conn();
    let code_of = |refs: Vec<store::settings::Reference>, id: Option<uuid::Uuid>| {
        refs.into_iter().find(|r| Some(r.id) == id).map(|r| r.code)
    };
    let families = store::settings::references(conn, store::settings::RefKind::Family).await.unwrap_or_default();
    let brands = store::settings::references(conn, store::settings::RefKind::Brand).await.unwrap_or_default();
    let mut v = pf_for(role, cat::product_json(p));
    v["familyCode"] = json!(code_of(families, p.family_id));
    v["brandCode"] = json!(code_of(brands, p.brand_id));
    v
}

impl PfBody {
    fn input(&self) -> PfInput {
        PfInput {
            family: None,
            brand: None,
            code: self.code.clone(),
            name: self.name.clone(),
            base_unit: self.base_unit.clone(),
            weight_g: self.weight_g,
            packaging_type: self.packaging_type.clone(),
            storage_type: self.storage_type.clone(),
            shelf_life_days: self.shelf_life_days,
            list_price_ht: self.list_price_ht,
            tva_rate: self.tva_rate,
            min_stock: self.min_stock,
        }
    }
}

#[utoipa::path(get, path = "/api/catalogue/pf", tag = "catalogue", params(ListQuery), responses((status = 200, description = "Produits finis (sans prix pour APPRO et PRODUCTION)")))]
pub async fn list_pf(State(st): State<AppState>, id: Identity, Query(q): Query<ListQuery>) -> Response {
    match cat::list_products(st.dbmon.db(), "PF").await {
        Ok(all) => {
            let items = all
                .iter()
                .filter(|p| matches(&q, &p.code, &p.name, p.active))
                .map(|p| pf_for(id.role, cat::product_json(p)))
                .collect();
            page_of(items, &q).map(Json).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn save_pf(
    st: &AppState,
    existing: Option<store::stock::Product>,
    b: &PfBody,
    id: &Identity,
    ctx: &Ctx,
) -> Result<store::stock::Product, ApiError> {
    use store::settings::RefKind;
    let mut input = b.input();
    let (family_id, brand_id) = existing.as_ref().map(|p| (p.family_id, p.brand_id)).unwrap_or_default();
    input.family = choice(st, RefKind::Family, &b.family_code, family_id).await?;
    input.brand = choice(st, RefKind::Brand, &b.brand_code, brand_id).await?;
    let f = domain::catalogue::check_pf(&input)?;
    let (actor, now) = (id.actor(ctx), st.clock.now());
    write(st, move |tx| {
        let (existing, f, actor) = (existing.clone(), f.clone(), actor.clone());
        Box::pin(async move { cat::save_pf(&**tx, existing, f, &actor, now).await })
    })
    .await
}

#[utoipa::path(post, path = "/api/catalogue/pf", tag = "catalogue", request_body = PfBody, responses((status = 201, description = "Créé")))]
pub async fn create_pf(State(st): State<AppState>, ctx: Ctx, id: Identity, ApiJson(b): ApiJson<PfBody>) -> Response {
    match save_pf(&st, None, &b, &id, &ctx).await {
        Ok(p) => (StatusCode::CREATED, Json(pf_json(&st, id.role, &p).await)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(get, path = "/api/catalogue/pf/{code}", tag = "catalogue", responses((status = 200, description = "Produit fini")))]
pub async fn get_pf(State(st): State<AppState>, id: Identity, Path(code): Path<String>) -> Response {
    match product_of(&st, "PF", &code).await {
        Ok(p) => Json(pf_json(&st, id.role, &p).await).into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(put, path = "/api/catalogue/pf/{code}", tag = "catalogue", request_body = PfBody, responses((status = 200, description = "Modifié")))]
pub async fn update_pf(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<PfBody>,
) -> Response {
    let existing = match product_of(&st, "PF", &code).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    match save_pf(&st, Some(existing), &b, &id, &ctx).await {
        Ok(p) => Json(pf_json(&st, id.role, &p).await).into_response(),
        Err(e) => e.into_response(),
    }
}

// ---- parties ------------------------------------------------------------------------------------------------------

#[derive(Deserialize, ToSchema, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PartyBody {
    raison_sociale: String,
    forme_juridique: Option<String>,
    adresse: Option<String>,
    wilaya: Option<String>,
    commune: Option<String>,
    telephone: Option<String>,
    email: Option<String>,
    rc: Option<String>,
    nif: Option<String>,
    ai: Option<String>,
    nis: Option<String>,
    contact_name: Option<String>,
    notes: Option<String>,
    /// Suppliers and clients: 0–180 / 0–120 days.
    payment_terms_days: Option<i32>,
    /// Clients only (ADMIN): DISTRIBUTEUR, GROSSISTE, SUPERETTE, FAST_FOOD.
    client_type: Option<String>,
    /// Clients only (ADMIN): centimes; absent = no limit.
    credit_limit: Option<i64>,
    /// Clients only (ADMIN): ESPECES, CHEQUE, VIREMENT.
    default_payment_method: Option<String>,
    delivery_address: Option<String>,
}

impl PartyBody {
    fn party(&self) -> PartyInput {
        PartyInput {
            raison_sociale: self.raison_sociale.clone(),
            forme_juridique: self.forme_juridique.clone(),
            adresse: self.adresse.clone(),
            wilaya: self.wilaya.clone(),
            commune: self.commune.clone(),
            telephone: self.telephone.clone(),
            email: self.email.clone(),
            rc: self.rc.clone(),
            nif: self.nif.clone(),
            ai: self.ai.clone(),
            nis: self.nis.clone(),
            contact_name: self.contact_name.clone(),
            notes: self.notes.clone(),
        }
    }
}

fn warnings_json(w: &[Rejection]) -> Value {
    json!(w.iter().map(|r| json!({"code": r.code, "message": r.message, "details": r.details})).collect::<Vec<_>>())
}

#[utoipa::path(get, path = "/api/suppliers", tag = "parties", params(ListQuery), responses((status = 200, description = "Fournisseurs")))]
pub async fn list_suppliers(State(st): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    match cat::list_suppliers(st.dbmon.db()).await {
        Ok(all) => {
            let items = all
                .iter()
                .filter(|s| matches(&q, &s.code, &s.raison_sociale, s.active))
                .map(cat::supplier_json)
                .collect();
            page_of(items, &q).map(Json).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn save_supplier(
    st: &AppState,
    existing: Option<cat::Supplier>,
    b: &PartyBody,
    id: &Identity,
    ctx: &Ctx,
) -> Result<(cat::Supplier, Vec<Rejection>), ApiError> {
    let (party, warnings) = domain::catalogue::check_party(&b.party())?;
    let terms = domain::catalogue::check_supplier_terms(b.payment_terms_days.unwrap_or(0))?;
    let (actor, now) = (id.actor(ctx), st.clock.now());
    let s = write(st, move |tx| {
        let (existing, party, actor) = (existing.clone(), party.clone(), actor.clone());
        Box::pin(async move { cat::save_supplier(&**tx, existing, party, terms, &actor, now).await })
    })
    .await?;
    Ok((s, warnings))
}

#[utoipa::path(post, path = "/api/suppliers", tag = "parties", request_body = PartyBody, responses(
    (status = 201, description = "Créé, avec les avertissements acceptés"), (status = 409, description = "NIF_DEJA_UTILISE"), (status = 422, description = "NIF_INVALIDE, RC_INVALIDE…")))]
pub async fn create_supplier(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    ApiJson(b): ApiJson<PartyBody>,
) -> Response {
    match save_supplier(&st, None, &b, &id, &ctx).await {
        Ok((s, w)) => {
            (StatusCode::CREATED, Json(json!({"supplier": cat::supplier_json(&s), "warnings": warnings_json(&w)})))
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn supplier_of(st: &AppState, code: &str) -> Result<cat::Supplier, ApiError> {
    cat::supplier_by_code(st.dbmon.db().conn(), code).await?.ok_or_else(|| Rejection::non_trouve("Fournisseur").into())
}

#[utoipa::path(get, path = "/api/suppliers/{code}", tag = "parties", responses((status = 200, description = "Fournisseur")))]
pub async fn get_supplier(State(st): State<AppState>, Path(code): Path<String>) -> Response {
    supplier_of(&st, &code).await.map(|s| Json(cat::supplier_json(&s))).into_response()
}

#[utoipa::path(put, path = "/api/suppliers/{code}", tag = "parties", request_body = PartyBody, responses((status = 200, description = "Modifié")))]
pub async fn update_supplier(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<PartyBody>,
) -> Response {
    let existing = match supplier_of(&st, &code).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    match save_supplier(&st, Some(existing), &b, &id, &ctx).await {
        Ok((s, w)) => Json(json!({"supplier": cat::supplier_json(&s), "warnings": warnings_json(&w)})).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BlockBody {
    /// Block: reason ≥ 10 characters. Unblock: note ≥ 5 characters.
    #[serde(default)]
    reason: String,
    /// Last day of the block (YYYY-MM-DD), after today; absent = "indéfini".
    until: Option<chrono::NaiveDate>,
}

/// Blocks (`block = true`) or unblocks a supplier, as the API and the supplier page do.
pub async fn supplier_block(
    st: &AppState,
    id: &Identity,
    ctx: &Ctx,
    code: &str,
    block: bool,
    reason: String,
    until: Option<chrono::NaiveDate>,
) -> Result<cat::Supplier, ApiError> {
    let (actor, now, code) = (id.actor(ctx), st.clock.now(), code.to_string());
    write(st, move |tx| {
        let (actor, code, reason) = (actor.clone(), code.clone(), reason.clone());
        let change = if block { Some((reason.clone(), until)) } else { None };
        Box::pin(async move { cat::set_supplier_block(&**tx, &code, change, &reason, &actor, now).await })
    })
    .await
}

/// Blocks a supplier (ADMIN, DOMAIN.md §4.3): no new BC, no direct reception until the end date.
#[utoipa::path(post, path = "/api/suppliers/{code}/block", tag = "parties", request_body = BlockBody, responses(
    (status = 200, description = "Bloqué"), (status = 400, description = "MOTIF_TROP_COURT, DATE_INVALIDE")))]
pub async fn block_supplier(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<BlockBody>,
) -> Response {
    supplier_block(&st, &id, &ctx, &code, true, b.reason, b.until)
        .await
        .map(|s| Json(cat::supplier_json(&s)))
        .into_response()
}

/// Lifts a block before its end date, with a note (ADMIN).
#[utoipa::path(post, path = "/api/suppliers/{code}/unblock", tag = "parties", request_body = BlockBody, responses(
    (status = 200, description = "Débloqué"), (status = 409, description = "TRANSITION_INVALIDE")))]
pub async fn unblock_supplier(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<BlockBody>,
) -> Response {
    supplier_block(&st, &id, &ctx, &code, false, b.reason, None)
        .await
        .map(|s| Json(cat::supplier_json(&s)))
        .into_response()
}

#[utoipa::path(get, path = "/api/clients", tag = "parties", params(ListQuery), responses((status = 200, description = "Clients")))]
pub async fn list_clients(State(st): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    match cat::list_clients(st.dbmon.db()).await {
        Ok(all) => {
            let items = all
                .iter()
                .filter(|c| matches(&q, &c.code, &c.raison_sociale, c.active))
                .map(cat::client_json)
                .collect();
            page_of(items, &q).map(Json).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// A client's commercial terms are ADMIN's (capability 10): a COMMERCIAL who sends them is refused; a client created
/// by a COMMERCIAL starts as SUPERETTE, paid in cash at delivery, with a credit limit of 0 until an ADMIN sets terms.
fn client_terms(b: &PartyBody, id: &Identity, existing: Option<&cat::Client>) -> Result<cat::ClientTerms, ApiError> {
    let sends_terms = b.client_type.is_some()
        || b.credit_limit.is_some()
        || b.payment_terms_days.is_some()
        || b.default_payment_method.is_some();
    if id.role != Role::Admin {
        if sends_terms {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "ACCES_REFUSE",
                "Seul un administrateur fixe le type, le plafond et les conditions de paiement d'un client.",
            ));
        }
        return Ok(match existing {
            Some(c) => cat::ClientTerms {
                client_type: c.client_type.clone(),
                credit_limit: c.credit_limit,
                payment_terms_days: c.payment_terms_days,
                default_payment_method: c.default_payment_method.clone(),
            },
            None => cat::ClientTerms {
                client_type: "SUPERETTE".into(),
                credit_limit: Some(0),
                payment_terms_days: 0,
                default_payment_method: "ESPECES".into(),
            },
        });
    }
    let client_type = b.client_type.clone().or_else(|| existing.map(|c| c.client_type.clone())).unwrap_or_default();
    let method = b.default_payment_method.clone().unwrap_or_else(|| "ESPECES".into());
    let days = b.payment_terms_days.unwrap_or(0);
    domain::catalogue::check_client_terms(&client_type, b.credit_limit, days, &method)?;
    Ok(cat::ClientTerms {
        client_type,
        credit_limit: b.credit_limit,
        payment_terms_days: days,
        default_payment_method: method,
    })
}

pub async fn save_client(
    st: &AppState,
    existing: Option<cat::Client>,
    b: &PartyBody,
    id: &Identity,
    ctx: &Ctx,
) -> Result<(cat::Client, Vec<Rejection>), ApiError> {
    let terms = client_terms(b, id, existing.as_ref())?;
    let (party, warnings) = domain::catalogue::check_party(&b.party())?;
    let delivery = b.delivery_address.clone().filter(|a| !a.trim().is_empty());
    let (actor, now) = (id.actor(ctx), st.clock.now());
    let c = write(st, move |tx| {
        let (existing, party, terms, actor, delivery) =
            (existing.clone(), party.clone(), terms.clone(), actor.clone(), delivery.clone());
        Box::pin(async move { cat::save_client(&**tx, existing, party, terms, delivery, &actor, now).await })
    })
    .await?;
    Ok((c, warnings))
}

#[utoipa::path(post, path = "/api/clients", tag = "parties", request_body = PartyBody, responses((status = 201, description = "Créé")))]
pub async fn create_client(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    ApiJson(b): ApiJson<PartyBody>,
) -> Response {
    match save_client(&st, None, &b, &id, &ctx).await {
        Ok((c, w)) => {
            (StatusCode::CREATED, Json(json!({"client": cat::client_json(&c), "warnings": warnings_json(&w)})))
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn client_of(st: &AppState, code: &str) -> Result<cat::Client, ApiError> {
    cat::client_by_code(st.dbmon.db().conn(), code).await?.ok_or_else(|| Rejection::non_trouve("Client").into())
}

#[utoipa::path(get, path = "/api/clients/{code}", tag = "parties", responses((status = 200, description = "Client")))]
pub async fn get_client(State(st): State<AppState>, Path(code): Path<String>) -> Response {
    client_of(&st, &code).await.map(|c| Json(cat::client_json(&c))).into_response()
}

#[utoipa::path(put, path = "/api/clients/{code}", tag = "parties", request_body = PartyBody, responses((status = 200, description = "Modifié")))]
pub async fn update_client(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<PartyBody>,
) -> Response {
    let existing = match client_of(&st, &code).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match save_client(&st, Some(existing), &b, &id, &ctx).await {
        Ok((c, w)) => Json(json!({"client": cat::client_json(&c), "warnings": warnings_json(&w)})).into_response(),
        Err(e) => e.into_response(),
    }
}
