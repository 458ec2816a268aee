//! Company settings, brands and families (DOMAIN.md §3.1, §3.2): every role reads them, ADMIN changes them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::catalogue::{CompanyInput, PartyInput};
use serde::Deserialize;
use serde_json::json;
use store::settings::{self, RefKind};
use utoipa::ToSchema;

use super::catalogue::write;
use crate::auth::{Ctx, Identity};
use crate::platform::errors::{ApiError, ApiJson};
use crate::state::AppState;

#[derive(Deserialize, ToSchema, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CompanyBody {
    pub raison_sociale: String,
    /// SARL, EURL, SPA, SNC, EI, AUTRE.
    pub forme_juridique: Option<String>,
    /// Centimes; optional for an EI.
    pub capital_social: Option<i64>,
    pub adresse: Option<String>,
    /// 01–58.
    pub wilaya: Option<String>,
    pub commune: Option<String>,
    pub rc: Option<String>,
    pub nif: Option<String>,
    pub ai: Option<String>,
    pub nis: Option<String>,
    pub telephone: Option<String>,
    pub email: Option<String>,
    /// 20 digits, spaces ignored.
    pub rib: Option<String>,
    pub bank_name: Option<String>,
    pub invoice_footer: Option<String>,
}

impl CompanyBody {
    fn input(&self) -> CompanyInput {
        CompanyInput {
            identity: PartyInput {
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
                contact_name: None,
                notes: None,
            },
            capital_social: self.capital_social,
            rib: self.rib.clone(),
            bank_name: self.bank_name.clone(),
            invoice_footer: self.invoice_footer.clone(),
        }
    }
}

#[utoipa::path(get, path = "/api/settings/company", tag = "settings", responses((status = 200, description = "Paramètres de la société"), (status = 404, description = "NON_TROUVE (pas encore saisis)")))]
pub async fn get_company(State(st): State<AppState>) -> Response {
    match settings::company(st.dbmon.db().conn()).await {
        Ok(Some(s)) => Json(settings::company_json(&s)).into_response(),
        Ok(None) => {
            ApiError::from(domain::rejection::Rejection::non_trouve("Paramètres de la société")).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Saves the company settings; the checks of DOMAIN.md §3.1 and §4.2, warnings (AI) returned.
pub async fn save_company(
    st: &AppState,
    id: &Identity,
    ctx: &Ctx,
    b: &CompanyBody,
) -> Result<(settings::CompanySettings, Vec<domain::rejection::Rejection>), ApiError> {
    let (company, warnings) = domain::catalogue::check_company(&b.input())?;
    let (actor, now) = (id.actor(ctx), st.clock.now());
    let s = write(st, move |tx| {
        let (company, actor) = (company.clone(), actor.clone());
        Box::pin(async move { settings::save_company(&**tx, company, &actor, now).await })
    })
    .await?;
    Ok((s, warnings))
}

#[utoipa::path(put, path = "/api/settings/company", tag = "settings", request_body = CompanyBody, responses((status = 200, description = "Enregistrés"), (status = 400, description = "VALIDATION_ERROR")))]
pub async fn put_company(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    ApiJson(b): ApiJson<CompanyBody>,
) -> Response {
    match save_company(&st, &id, &ctx, &b).await {
        Ok((s, w)) => Json(json!({"company": settings::company_json(&s),
            "warnings": w.iter().map(|r| json!({"code": r.code, "message": r.message})).collect::<Vec<_>>()}))
        .into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReferenceBody {
    /// A–Z, 0–9, `_`, 2–20 characters (creation only; ignored on update).
    #[serde(default)]
    pub code: String,
    pub name: String,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

async fn list(st: &AppState, kind: RefKind) -> Response {
    match settings::references(st.dbmon.db().conn(), kind).await {
        Ok(all) => {
            let items: Vec<_> = all.iter().map(settings::reference_json).collect();
            Json(json!({"items": items, "total": items.len()})).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Creates (`create`) or renames / (de)activates a brand or family, as the API and the Référentiels page do.
pub async fn save_reference(
    st: &AppState,
    id: &Identity,
    ctx: &Ctx,
    kind: RefKind,
    create: bool,
    b: ReferenceBody,
) -> Result<settings::Reference, ApiError> {
    let (actor, now) = (id.actor(ctx), st.clock.now());
    write(st, move |tx| {
        let (actor, b) = (actor.clone(), b.clone());
        Box::pin(
            async move { settings::save_reference(&**tx, kind, create, &b.code, &b.name, b.active, &actor, now).await },
        )
    })
    .await
}

async fn create(st: &AppState, id: &Identity, ctx: &Ctx, kind: RefKind, b: ReferenceBody) -> Response {
    match save_reference(st, id, ctx, kind, true, b).await {
        Ok(r) => (StatusCode::CREATED, Json(settings::reference_json(&r))).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn update(st: &AppState, id: &Identity, ctx: &Ctx, kind: RefKind, code: String, b: ReferenceBody) -> Response {
    let b = ReferenceBody { code, ..b };
    save_reference(st, id, ctx, kind, false, b).await.map(|r| Json(settings::reference_json(&r))).into_response()
}

#[utoipa::path(get, path = "/api/catalogue/brands", tag = "catalogue", responses((status = 200, description = "Marques")))]
pub async fn list_brands(State(st): State<AppState>) -> Response {
    list(&st, RefKind::Brand).await
}

#[utoipa::path(post, path = "/api/catalogue/brands", tag = "catalogue", request_body = ReferenceBody, responses((status = 201, description = "Créée"), (status = 409, description = "CODE_DEJA_UTILISE")))]
pub async fn create_brand(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    ApiJson(b): ApiJson<ReferenceBody>,
) -> Response {
    create(&st, &id, &ctx, RefKind::Brand, b).await
}

#[utoipa::path(put, path = "/api/catalogue/brands/{code}", tag = "catalogue", request_body = ReferenceBody, responses((status = 200, description = "Modifiée")))]
pub async fn update_brand(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<ReferenceBody>,
) -> Response {
    update(&st, &id, &ctx, RefKind::Brand, code, b).await
}

#[utoipa::path(get, path = "/api/catalogue/families", tag = "catalogue", responses((status = 200, description = "Familles")))]
pub async fn list_families(State(st): State<AppState>) -> Response {
    list(&st, RefKind::Family).await
}

#[utoipa::path(post, path = "/api/catalogue/families", tag = "catalogue", request_body = ReferenceBody, responses((status = 201, description = "Créée"), (status = 409, description = "CODE_DEJA_UTILISE")))]
pub async fn create_family(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    ApiJson(b): ApiJson<ReferenceBody>,
) -> Response {
    create(&st, &id, &ctx, RefKind::Family, b).await
}

#[utoipa::path(put, path = "/api/catalogue/families/{code}", tag = "catalogue", request_body = ReferenceBody, responses((status = 200, description = "Modifiée")))]
pub async fn update_family(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<ReferenceBody>,
) -> Response {
    update(&st, &id, &ctx, RefKind::Family, code, b).await
}

// ---- Chart of accounts (DOMAIN.md §19) ------------------------------------------------------------------------------

#[derive(Deserialize, ToSchema, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ChartBody {
    /// Every key of the chart with its account number (2 to 10 digits), e.g. `{"CLIENTS": "411"}`.
    pub accounts: std::collections::HashMap<String, String>,
}

pub async fn chart_json(st: &AppState) -> Result<serde_json::Value, ApiError> {
    let rows = store::accounting::chart_rows(st.dbmon.db().conn()).await?;
    Ok(
        json!({"accounts": rows.iter().map(|(k, a, l)| json!({"key": k, "account": a, "label": l})).collect::<Vec<_>>()}),
    )
}

/// Checks and saves the accounts; returns the keys that changed.
pub async fn save_chart(
    st: &AppState,
    id: &Identity,
    ctx: &Ctx,
    accounts: &std::collections::HashMap<String, String>,
) -> Result<Vec<String>, ApiError> {
    let checked = domain::accounting::check_chart(accounts)?;
    let (actor, now) = (id.actor(ctx), st.clock.now());
    write(st, move |tx| {
        let (checked, actor) = (checked.clone(), actor.clone());
        Box::pin(async move { store::accounting::save_chart(&**tx, checked, &actor, now).await })
    })
    .await
}

#[utoipa::path(get, path = "/api/settings/chart-of-accounts", tag = "settings", responses(
    (status = 200, description = "Plan comptable : clé, numéro de compte, libellé")))]
pub async fn get_chart(State(st): State<AppState>) -> Response {
    chart_json(&st).await.map(Json).into_response()
}

#[utoipa::path(put, path = "/api/settings/chart-of-accounts", tag = "settings", request_body = ChartBody, responses(
    (status = 200, description = "Enregistré (les écritures exportées ensuite utilisent ces comptes)"),
    (status = 400, description = "VALIDATION_ERROR")))]
pub async fn put_chart(State(st): State<AppState>, ctx: Ctx, id: Identity, ApiJson(b): ApiJson<ChartBody>) -> Response {
    match save_chart(&st, &id, &ctx, &b.accounts).await {
        Ok(changed) => match chart_json(&st).await {
            Ok(mut v) => {
                v["changed"] = json!(changed);
                Json(v).into_response()
            }
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}
