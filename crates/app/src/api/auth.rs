//! Sessions (PLATFORM.md §4.1): login, refresh, logout, me, change-password. Web clients get cookies, devices get
//! tokens in the body.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::session::{self, Issued, LoginInput};
use crate::auth::{Ctx, Identity, cookie_names, read_cookie};
use crate::platform::errors::{ApiError, ApiJson};
use crate::state::AppState;

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The user as the API shows it to themselves.
pub fn user_json(u: &store::identity::User) -> Value {
    json!({"id": u.id, "code": u.code, "email": u.email, "firstName": u.first_name, "lastName": u.last_name,
           "role": u.role, "mustChangePassword": u.must_change_password})
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoginBody {
    email: String,
    password: String,
    /// `web` (cookies) or `device` (tokens in the body).
    client: Option<String>,
    device_id: Option<Uuid>,
}

fn with_cookies(mut res: Response, cookies: Vec<axum::http::HeaderValue>) -> Response {
    for c in cookies {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

fn token_body(user: &store::identity::User, issued: &Issued) -> Value {
    let mut body = json!({
        "user": user_json(user),
        "accessToken": issued.access,
        "accessTokenExpiresAt": rfc3339(issued.access_expires_at),
    });
    if let Some((rt, exp)) = &issued.refresh {
        body["refreshToken"] = json!(rt);
        body["refreshTokenExpiresAt"] = json!(rfc3339(*exp));
    }
    body
}

/// Opens a session. Same answer for an unknown e-mail and a wrong password; 5 failures lock the account 15 min.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginBody, responses(
    (status = 200, description = "Session ouverte"), (status = 401, description = "INVALID_CREDENTIALS, DEVICE_REVOKED"),
    (status = 409, description = "DEVICE_OWNED_BY_OTHER_USER"), (status = 429, description = "RATE_LIMITED, ACCOUNT_LOCKED")))]
pub async fn login(
    State(st): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    ApiJson(b): ApiJson<LoginBody>,
) -> Response {
    let header_device = headers.get("x-device-id").and_then(|v| v.to_str().ok()).and_then(|v| Uuid::parse_str(v).ok());
    let device_client = match b.client.as_deref() {
        Some("device") => true,
        Some("web") => false,
        None => header_device.is_some(),
        Some(_) => {
            return ApiError::validation("Client inconnu : « web » ou « device » attendu.")
                .with_details(
                    json!({"fields": [{"field": "client", "code": "VALEUR_INVALIDE", "message": "web ou device"}]}),
                )
                .into_response();
        }
    };
    let input =
        LoginInput { email: b.email, password: b.password, device_client, device_id: b.device_id.or(header_device) };
    let done = match session::login(&st, input, &ctx).await {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    if device_client {
        let mut body = token_body(&done.user, &done.issued);
        if let Some((id, registered, active)) = done.device {
            body["device"] = json!({"id": id, "registered": registered, "isActive": active});
        }
        return Json(body).into_response();
    }
    let body = json!({
        "user": user_json(&done.user),
        "accessTokenExpiresAt": rfc3339(done.issued.access_expires_at),
        "csrfToken": done.issued.csrf,
    });
    with_cookies(Json(body).into_response(), session::web_cookies(&st, &done.issued))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshBody {
    refresh_token: Option<String>,
}

/// A new token pair for a refresh token (cookie for web, body for devices). A rotated token replayed after 30 s
/// revokes its whole family.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshBody, responses(
    (status = 200, description = "Nouveaux jetons"), (status = 401, description = "SESSION_REVOKED, DEVICE_REVOKED, UNAUTHENTICATED")))]
pub async fn refresh(State(st): State<AppState>, ctx: Ctx, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let parsed: RefreshBody = if body.is_empty() {
        RefreshBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(_) => {
                return ApiError::validation("Corps invalide : {\"refreshToken\": \"…\"} attendu.").into_response();
            }
        }
    };
    let names = cookie_names(st.config.is_production());
    let (token, web) = match parsed.refresh_token {
        Some(t) => (t, false),
        None => match read_cookie(&headers, names.refresh) {
            Some(t) => {
                // A cookie refresh is a cookie-authenticated POST: it carries the CSRF token.
                let cookie = read_cookie(&headers, names.csrf);
                let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
                if !matches!((&cookie, sent), (Some(c), Some(s)) if crate::auth::tokens::same(c, s)) {
                    return crate::auth::csrf_invalid().into_response();
                }
                (t, true)
            }
            None => return crate::auth::unauthenticated().into_response(),
        },
    };
    let r = match session::refresh(&st, &token, &ctx).await {
        Ok(r) => r,
        Err(e) => {
            let res = e.into_response();
            return if web { with_cookies(res, session::clear_cookies(&st)) } else { res };
        }
    };
    if web {
        let body = json!({
            "user": user_json(&r.user),
            "accessTokenExpiresAt": rfc3339(r.issued.access_expires_at),
            "csrfToken": r.issued.csrf.clone().or_else(|| read_cookie(&headers, names.csrf)),
        });
        return with_cookies(Json(body).into_response(), session::web_cookies(&st, &r.issued));
    }
    let mut body = token_body(&r.user, &r.issued);
    if let Some(did) = r.device_id {
        body["device"] = json!({"id": did});
    }
    Json(body).into_response()
}

/// Closes the current session family and clears the cookies.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", responses((status = 204, description = "Session fermée")))]
pub async fn logout(State(st): State<AppState>, ctx: Ctx, id: Identity) -> Response {
    match session::logout(&st, &id, &ctx).await {
        Ok(()) => with_cookies(StatusCode::NO_CONTENT.into_response(), session::clear_cookies(&st)),
        Err(e) => e.into_response(),
    }
}

/// The caller and their session.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", responses((status = 200, description = "Utilisateur courant")))]
pub async fn me(id: Identity) -> Response {
    Json(json!({
        "user": user_json(&id.user),
        "session": {"id": id.session_id, "client": id.client, "deviceId": id.device_id,
                    "expiresAt": rfc3339(id.access_expires_at)},
    }))
    .into_response()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password; every other session is closed and this one gets fresh tokens (cookies for web,
/// a `200` token body for devices since a 204 cannot carry them).
#[utoipa::path(post, path = "/api/auth/change-password", tag = "auth", request_body = ChangePasswordBody, responses(
    (status = 204, description = "Mot de passe changé (web)"), (status = 200, description = "Mot de passe changé (appareil) : nouveaux jetons"),
    (status = 401, description = "INVALID_CREDENTIALS"), (status = 422, description = "MOT_DE_PASSE_FAIBLE")))]
pub async fn change_password(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    ApiJson(b): ApiJson<ChangePasswordBody>,
) -> Response {
    match session::change_password(&st, &id, b.current_password, b.new_password, &ctx).await {
        Ok(issued) if id.client == "web" => {
            with_cookies(StatusCode::NO_CONTENT.into_response(), session::web_cookies(&st, &issued))
        }
        Ok(issued) => {
            let mut user = id.user.clone();
            user.must_change_password = false;
            Json(token_body(&user, &issued)).into_response()
        }
        Err(e) => e.into_response(),
    }
}
