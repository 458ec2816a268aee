//! Users and devices administration (DOMAIN.md §2.2 capability 1, PLATFORM.md §4.5). ADMIN only.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::identity::{Role, normalize_email};
use domain::rejection::Rejection;
use serde::Deserialize;
use serde_json::{Value, json};
use store::identity::{self as ids, DeviceFilter, NewUser, UserEdit};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::session::{email_key, op_err};
use crate::auth::{Ctx, Identity, password, tokens};
use crate::platform::errors::{ApiError, ApiJson};
use crate::state::AppState;

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `page` ≥ 1 and `pageSize` 1–200 (PLATFORM.md §2.4).
#[derive(Deserialize, IntoParams, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

impl PageQuery {
    pub fn resolve(&self) -> Result<(u64, u64), ApiError> {
        let page = self.page.unwrap_or(1);
        let size = self.page_size.unwrap_or(50);
        let mut fields = Vec::new();
        if page < 1 {
            fields.push(json!({"field": "page", "code": "HORS_LIMITES", "message": "page ≥ 1"}));
        }
        if !(1..=200).contains(&size) {
            fields.push(json!({"field": "pageSize", "code": "HORS_LIMITES", "message": "pageSize de 1 à 200"}));
        }
        if fields.is_empty() {
            Ok((page, size))
        } else {
            Err(ApiError::validation("Pagination invalide.").with_details(json!({"fields": fields})))
        }
    }
}

pub fn field_error(field: &str, code: &str, message: &str) -> ApiError {
    ApiError::validation(message.to_string())
        .with_details(json!({"fields": [{"field": field, "code": code, "message": message}]}))
}

pub fn admin_user_json(u: &ids::User, locked: bool) -> Value {
    json!({"id": u.id, "code": u.code, "email": u.email, "firstName": u.first_name, "lastName": u.last_name,
           "role": u.role, "isActive": u.is_active, "mustChangePassword": u.must_change_password, "locked": locked,
           "createdAt": rfc3339(u.created_at), "lastLoginAt": u.last_login_at.map(rfc3339)})
}

async fn locked_keys(st: &AppState) -> Result<Vec<String>, ApiError> {
    ids::locked_keys(st.dbmon.db(), st.clock.now()).await.map_err(ApiError::from)
}

/// Users, by code.
#[utoipa::path(get, path = "/api/admin/users", tag = "identity", params(PageQuery), responses((status = 200, description = "Liste paginée")))]
pub async fn list_users(State(st): State<AppState>, Query(q): Query<PageQuery>) -> Response {
    let (page, size) = match q.resolve() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let (all, locked) = match (ids::list_users(st.dbmon.db()).await, locked_keys(&st).await) {
        (Ok(a), Ok(l)) => (a, l),
        (Err(e), _) => return ApiError::from(e).into_response(),
        (_, Err(e)) => return e.into_response(),
    };
    let total = all.len() as u64;
    let items: Vec<Value> = all
        .iter()
        .skip(((page - 1) * size) as usize)
        .take(size as usize)
        .map(|u| admin_user_json(u, locked.contains(&email_key(&u.email))))
        .collect();
    Json(json!({"items": items, "total": total, "page": page, "pageSize": size})).into_response()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewUserBody {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
}

/// Validates the fields of a new user; the caller creates it.
pub fn check_new_user(b: &NewUserBody) -> Result<(String, Role), ApiError> {
    let email = normalize_email(&b.email).ok_or_else(|| ApiError::from(Rejection::email_invalide()))?;
    let role = Role::parse(&b.role).ok_or_else(|| field_error("role", "ROLE_INCONNU", "Rôle inconnu."))?;
    if b.first_name.trim().is_empty() || b.last_name.trim().is_empty() {
        return Err(field_error("lastName", "OBLIGATOIRE", "Le nom et le prénom sont obligatoires."));
    }
    Ok((email, role))
}

/// Creates a user with a one-time password, returned once; the user must change it at first login.
pub async fn create_user_with_otp(
    st: &AppState,
    b: NewUserBody,
    id: &Identity,
    ctx: &Ctx,
) -> Result<(ids::User, String), ApiError> {
    let (email, role) = check_new_user(&b)?;
    let otp = tokens::one_time_password();
    let hash = password::hash(otp.clone()).await?;
    let actor = id.actor(ctx);
    let now = st.clock.now();
    let new = NewUser {
        email,
        first_name: b.first_name.trim().into(),
        last_name: b.last_name.trim().into(),
        role,
        password_hash: hash,
        must_change_password: true,
    };
    let user = st
        .dbmon
        .db()
        .write(|tx| {
            let (actor, new) = (actor.clone(), new.clone());
            Box::pin(async move { ids::create_user(&**tx, new, &actor, now, false).await })
        })
        .await
        .map_err(|e| op_err(st, e))?;
    Ok((user, otp))
}

#[utoipa::path(post, path = "/api/admin/users", tag = "identity", request_body = NewUserBody, responses(
    (status = 201, description = "Utilisateur créé ; mot de passe à usage unique renvoyé une seule fois"),
    (status = 409, description = "EMAIL_DEJA_UTILISE"), (status = 422, description = "EMAIL_INVALIDE")))]
pub async fn create_user(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    ApiJson(b): ApiJson<NewUserBody>,
) -> Response {
    match create_user_with_otp(&st, b, &id, &ctx).await {
        Ok((u, otp)) => {
            (StatusCode::CREATED, Json(json!({"user": admin_user_json(&u, false), "oneTimePassword": otp})))
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn load_user(st: &AppState, uid: Uuid) -> Result<ids::User, ApiError> {
    ids::user_by_id(st.dbmon.db().conn(), uid)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| Rejection::non_trouve("Utilisateur").into())
}

#[utoipa::path(get, path = "/api/admin/users/{id}", tag = "identity", responses((status = 200, description = "Utilisateur"), (status = 404, description = "NON_TROUVE")))]
pub async fn get_user(State(st): State<AppState>, Path(uid): Path<Uuid>) -> Response {
    let u = match load_user(&st, uid).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let locked = locked_keys(&st).await.map(|l| l.contains(&email_key(&u.email))).unwrap_or(false);
    let sessions = ids::open_sessions(st.dbmon.db(), uid).await.unwrap_or_default();
    let sessions: Vec<Value> = sessions
        .iter()
        .map(|s| {
            json!({"id": s.id, "client": s.client, "deviceId": s.device_id, "createdAt": rfc3339(s.created_at),
                        "lastUsedAt": rfc3339(s.last_used_at), "ip": s.ip})
        })
        .collect();
    Json(json!({"user": admin_user_json(&u, locked), "sessions": sessions})).into_response()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EditBody {
    first_name: Option<String>,
    last_name: Option<String>,
    role: Option<String>,
}

/// Applies an edit (names, role, active flag) under the rules of DOMAIN.md §2.1.
pub async fn apply_edit(
    st: &AppState,
    uid: Uuid,
    edit: UserEdit,
    id: &Identity,
    ctx: &Ctx,
) -> Result<ids::User, ApiError> {
    let actor = id.actor(ctx);
    let now = st.clock.now();
    st.dbmon
        .db()
        .write(|tx| {
            let (edit, actor) = (edit.clone(), actor.clone());
            Box::pin(async move { ids::edit_user(&**tx, uid, edit, &actor, now).await })
        })
        .await
        .map_err(|e| op_err(st, e))
}

#[utoipa::path(patch, path = "/api/admin/users/{id}", tag = "identity", request_body = EditBody, responses(
    (status = 200, description = "Utilisateur modifié"), (status = 409, description = "DERNIER_ADMIN")))]
pub async fn edit_user(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(uid): Path<Uuid>,
    ApiJson(b): ApiJson<EditBody>,
) -> Response {
    let role = match b.role.as_deref().map(Role::parse) {
        Some(None) => return field_error("role", "ROLE_INCONNU", "Rôle inconnu.").into_response(),
        Some(Some(r)) => Some(r),
        None => None,
    };
    let edit = UserEdit { first_name: b.first_name, last_name: b.last_name, role, is_active: None };
    match apply_edit(&st, uid, edit, &id, &ctx).await {
        Ok(u) => Json(json!({"user": admin_user_json(&u, false)})).into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(post, path = "/api/admin/users/{id}/deactivate", tag = "identity", responses(
    (status = 200, description = "Désactivé ; toutes ses sessions sont fermées"), (status = 409, description = "DERNIER_ADMIN")))]
pub async fn deactivate_user(State(st): State<AppState>, ctx: Ctx, id: Identity, Path(uid): Path<Uuid>) -> Response {
    let edit = UserEdit { is_active: Some(false), ..UserEdit::default() };
    match apply_edit(&st, uid, edit, &id, &ctx).await {
        Ok(u) => Json(json!({"user": admin_user_json(&u, false)})).into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(post, path = "/api/admin/users/{id}/reactivate", tag = "identity", responses((status = 200, description = "Réactivé")))]
pub async fn reactivate_user(State(st): State<AppState>, ctx: Ctx, id: Identity, Path(uid): Path<Uuid>) -> Response {
    let edit = UserEdit { is_active: Some(true), ..UserEdit::default() };
    match apply_edit(&st, uid, edit, &id, &ctx).await {
        Ok(u) => Json(json!({"user": admin_user_json(&u, false)})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Resets a password to a one-time one (returned once), forces its change and closes every session of the user.
pub async fn reset_password(
    st: &AppState,
    uid: Uuid,
    id: &Identity,
    ctx: &Ctx,
) -> Result<(ids::User, String), ApiError> {
    let user = load_user(st, uid).await?;
    let otp = tokens::one_time_password();
    let hash = password::hash(otp.clone()).await?;
    let actor = id.actor(ctx);
    let now = st.clock.now();
    let u2 = user.clone();
    st.dbmon
        .db()
        .write(|tx| {
            let (u, actor, hash) = (u2.clone(), actor.clone(), hash.clone());
            Box::pin(async move { ids::set_password(&**tx, &u, hash, true, None, &actor, now).await })
        })
        .await
        .map_err(ApiError::from)?;
    Ok((user, otp))
}

#[utoipa::path(post, path = "/api/admin/users/{id}/reset-password", tag = "identity", responses(
    (status = 200, description = "Mot de passe à usage unique, renvoyé une seule fois")))]
pub async fn reset_user_password(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(uid): Path<Uuid>,
) -> Response {
    match reset_password(&st, uid, &id, &ctx).await {
        Ok((u, otp)) => Json(json!({"user": admin_user_json(&u, false), "oneTimePassword": otp})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Clears a login lockout (audited).
pub async fn unlock(st: &AppState, uid: Uuid, id: &Identity, ctx: &Ctx) -> Result<bool, ApiError> {
    let user = load_user(st, uid).await?;
    let key = email_key(&user.email);
    let actor = id.actor(ctx);
    let now = st.clock.now();
    st.dbmon
        .db()
        .write(|tx| {
            let (key, actor) = (key.clone(), actor.clone());
            Box::pin(async move {
                let cleared = ids::clear_attempts(&**tx, &key).await?;
                store::audit::append(
                    &**tx,
                    &actor,
                    store::audit::Change::new("ACCOUNT_UNLOCKED").entity("user", uid),
                    now,
                )
                .await?;
                Ok::<_, store::StoreError>(cleared)
            })
        })
        .await
        .map_err(ApiError::from)
}

#[utoipa::path(post, path = "/api/admin/users/{id}/unlock", tag = "identity", responses((status = 200, description = "Verrou levé")))]
pub async fn unlock_user(State(st): State<AppState>, ctx: Ctx, id: Identity, Path(uid): Path<Uuid>) -> Response {
    match unlock(&st, uid, &id, &ctx).await {
        Ok(was_locked) => Json(json!({"unlocked": was_locked})).into_response(),
        Err(e) => e.into_response(),
    }
}

// ---- devices ---------------------------------------------------------------------------------------------------

pub fn device_json(d: &ids::Device, owner: Option<&ids::User>) -> Value {
    json!({"id": d.id, "name": d.name, "userId": d.user_id, "userEmail": owner.map(|u| u.email.clone()),
           "platform": d.platform, "appVersion": d.app_version, "lastSyncAt": d.last_sync_at.map(rfc3339),
           "isActive": d.is_active, "registeredAt": rfc3339(d.registered_at), "revokedAt": d.revoked_at.map(rfc3339),
           "revokeReason": d.revoke_reason})
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegisterBody {
    id: Uuid,
    name: String,
    platform: String,
    app_version: String,
}

/// A device session registers its device: 201 when new, 200 when the same user registers it again.
#[utoipa::path(post, path = "/api/devices/register", tag = "identity", request_body = RegisterBody, responses(
    (status = 201, description = "Appareil enregistré"), (status = 200, description = "Appareil mis à jour"),
    (status = 401, description = "DEVICE_REVOKED"), (status = 409, description = "DEVICE_OWNED_BY_OTHER_USER")))]
pub async fn register_device(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    ApiJson(b): ApiJson<RegisterBody>,
) -> Response {
    if id.client != "device" {
        return ApiError::new(StatusCode::FORBIDDEN, "ACCES_REFUSE", "Réservé aux sessions d'appareil.")
            .into_response();
    }
    if id.device_id.is_some_and(|d| d != b.id) {
        return field_error("id", "APPAREIL_DIFFERENT", "L'identifiant ne correspond pas à l'appareil de la session.")
            .into_response();
    }
    if !["android", "ios", "web"].contains(&b.platform.as_str()) {
        return field_error("platform", "VALEUR_INVALIDE", "Plateforme : android, ios ou web.").into_response();
    }
    if b.name.trim().is_empty() || b.app_version.trim().is_empty() {
        return field_error("name", "OBLIGATOIRE", "Nom et version de l'application obligatoires.").into_response();
    }
    let actor = id.actor(&ctx);
    let now = st.clock.now();
    let user_id = id.user.id;
    let info = (b.id, b.name.trim().to_string(), b.platform.clone(), b.app_version.trim().to_string());
    let res = st
        .dbmon
        .db()
        .write(|tx| {
            let actor = actor.clone();
            let info = ids::DeviceInfo {
                id: info.0,
                name: info.1.clone(),
                platform: info.2.clone(),
                app_version: info.3.clone(),
            };
            Box::pin(async move { ids::register_device(&**tx, user_id, info, &actor, now).await })
        })
        .await;
    match res {
        Ok((d, created)) => {
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            (status, Json(json!({"device": device_json(&d, Some(&id.user))}))).into_response()
        }
        Err(store::OpError::Rejected(r)) if r.code == "DEVICE_OWNED_BY_OTHER_USER" => {
            crate::auth::audit_refusal(
                &st,
                actor,
                store::audit::Change::new("DEVICE_OWNED_BY_OTHER_USER").security().entity("device", b.id),
            )
            .await;
            ApiError::from(r).into_response()
        }
        Err(e) => op_err(&st, e).into_response(),
    }
}

#[derive(Deserialize, IntoParams, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeviceQuery {
    pub user_id: Option<Uuid>,
    pub is_active: Option<bool>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

#[utoipa::path(get, path = "/api/admin/devices", tag = "identity", params(DeviceQuery), responses((status = 200, description = "Liste paginée")))]
pub async fn list_devices(State(st): State<AppState>, Query(q): Query<DeviceQuery>) -> Response {
    let (page, size) = match (PageQuery { page: q.page, page_size: q.page_size }).resolve() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let f = DeviceFilter { user_id: q.user_id, is_active: q.is_active };
    match ids::list_devices(st.dbmon.db(), &f, page, size).await {
        Ok((rows, total)) => {
            // PLATFORM.md §4.5: each device with its PENDING events and its FAILED ones of the last 24 h.
            let since = st.clock.now() - chrono::Duration::hours(24);
            let mut items = Vec::with_capacity(rows.len());
            for (d, u) in &rows {
                let mut v = device_json(d, u.as_ref());
                match store::sync::counts(st.dbmon.db().conn(), Some(d.id), since).await {
                    Ok(n) => {
                        v["pendingEvents"] = json!(n.pending);
                        v["failedEvents"] = json!(n.failed);
                    }
                    Err(e) => return ApiError::from(e).into_response(),
                }
                items.push(v);
            }
            Json(json!({"items": items, "total": total, "page": page, "pageSize": size})).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    reason: String,
}

pub const MIN_REASON: usize = 5;

/// Revokes a device: its sessions die in the same transaction; its next call gets `401 DEVICE_REVOKED`.
pub async fn revoke(st: &AppState, did: Uuid, reason: &str, id: &Identity, ctx: &Ctx) -> Result<ids::Device, ApiError> {
    if reason.trim().chars().count() < MIN_REASON {
        return Err(Rejection::motif_obligatoire(MIN_REASON).into());
    }
    let actor = id.actor(ctx);
    let now = st.clock.now();
    let reason = reason.trim().to_string();
    st.dbmon
        .db()
        .write(|tx| {
            let (actor, reason) = (actor.clone(), reason.clone());
            Box::pin(async move { ids::revoke_device(&**tx, did, &reason, &actor, now).await })
        })
        .await
        .map_err(|e| op_err(st, e))
}

pub async fn reactivate(st: &AppState, did: Uuid, id: &Identity, ctx: &Ctx) -> Result<ids::Device, ApiError> {
    let actor = id.actor(ctx);
    let now = st.clock.now();
    st.dbmon
        .db()
        .write(|tx| {
            let actor = actor.clone();
            Box::pin(async move { ids::reactivate_device(&**tx, did, &actor, now).await })
        })
        .await
        .map_err(|e| op_err(st, e))
}

#[utoipa::path(post, path = "/api/admin/devices/{id}/revoke", tag = "identity", request_body = RevokeBody, responses(
    (status = 200, description = "Appareil révoqué"), (status = 422, description = "MOTIF_OBLIGATOIRE")))]
pub async fn revoke_device(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(did): Path<Uuid>,
    ApiJson(b): ApiJson<RevokeBody>,
) -> Response {
    match revoke(&st, did, &b.reason, &id, &ctx).await {
        Ok(d) => Json(json!({"device": device_json(&d, None)})).into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(post, path = "/api/admin/devices/{id}/reactivate", tag = "identity", responses((status = 200, description = "Appareil réactivé")))]
pub async fn reactivate_device(State(st): State<AppState>, ctx: Ctx, id: Identity, Path(did): Path<Uuid>) -> Response {
    match reactivate(&st, did, &id, &ctx).await {
        Ok(d) => Json(json!({"device": device_json(&d, None)})).into_response(),
        Err(e) => e.into_response(),
    }
}
