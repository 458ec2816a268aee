//! Authentication and authorization (PLATFORM.md §4): who is calling, through which session, and whether the route
//! they called is open to their role. The guard runs on every routed request; handlers read [`Identity`].

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use domain::identity::{Access, Refusal, Role};
use store::audit::{Actor, Change};
use store::identity::User;
use uuid::Uuid;

use crate::platform::errors::{ApiError, current_request_id};
use crate::state::AppState;

pub mod password;
pub mod session;
pub mod tokens;

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Identity {
    pub user: User,
    pub role: Role,
    pub session_id: Uuid,
    pub client: String,
    pub device_id: Option<Uuid>,
    /// Authenticated by cookie (web) rather than by bearer token: unsafe methods need the CSRF token.
    pub via_cookie: bool,
    pub access_expires_at: DateTime<Utc>,
}

/// Where a request comes from, for sessions and audit entries.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: String,
}

impl Ctx {
    pub fn of(ext: &axum::http::Extensions, headers: &HeaderMap) -> Ctx {
        Ctx {
            ip: crate::platform::pipeline::client_of(ext).map(|c| c.ip.to_string()),
            user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string),
            request_id: current_request_id(),
        }
    }

    pub fn anonymous(&self) -> Actor {
        Actor { ip: self.ip.clone(), request_id: Some(self.request_id.clone()), ..Actor::default() }
    }

    pub fn actor(&self, user: &User, device_id: Option<Uuid>) -> Actor {
        Actor {
            user_id: Some(user.id),
            role: Some(user.role.clone()),
            label: Some(user.email.clone()),
            device_id: device_id.map(|d| d.to_string()),
            ip: self.ip.clone(),
            request_id: Some(self.request_id.clone()),
        }
    }
}

impl Identity {
    pub fn actor(&self, ctx: &Ctx) -> Actor {
        ctx.actor(&self.user, self.device_id)
    }
}

// ---- cookies ---------------------------------------------------------------------------------------------------

pub struct CookieNames {
    pub access: &'static str,
    pub refresh: &'static str,
    pub csrf: &'static str,
}

/// `__Host-` names in production (Secure, path /, no domain), plain names on `http://localhost` in development.
pub fn cookie_names(production: bool) -> CookieNames {
    if production {
        CookieNames { access: "__Host-mc_at", refresh: "__Host-mc_rt", csrf: "__Host-mc_csrf" }
    } else {
        CookieNames { access: "mc_at", refresh: "mc_rt", csrf: "mc_csrf" }
    }
}

pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

pub fn set_cookie(name: &str, value: &str, max_age: i64, http_only: bool, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; Max-Age={max_age}; SameSite=Lax");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

/// The user id of a well-signed, unexpired access token, without touching the database: the identity of the
/// general rate limiter (PLATFORM.md §5.1).
pub fn token_subject(st: &AppState, headers: &HeaderMap) -> Option<String> {
    let token = bearer(headers).or_else(|| read_cookie(headers, cookie_names(st.config.is_production()).access))?;
    let secrets = st.secrets.get()?;
    let keys = jwt_keys(st, secrets);
    tokens::decode(&token, &keys, st.clock.now().timestamp()).ok().map(|c| c.sub)
}

fn jwt_keys<'a>(st: &'a AppState, secrets: &'a crate::state::Secrets) -> Vec<&'a str> {
    let mut keys = vec![secrets.jwt.as_str()];
    if let Some(p) = &st.config.jwt_secret_previous {
        keys.push(p.as_str());
    }
    keys
}

// ---- errors ----------------------------------------------------------------------------------------------------

pub fn unauthenticated() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "Authentification requise.")
}

pub fn token_expired() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED", "Votre session a expiré : renouvelez le jeton d'accès.")
}

pub fn session_revoked() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "SESSION_REVOKED", "Cette session a été fermée. Reconnectez-vous.")
}

pub fn device_revoked() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "DEVICE_REVOKED", "Cet appareil a été révoqué.")
}

pub fn csrf_invalid() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "CSRF_INVALID",
        "Jeton anti-falsification absent ou invalide. Rechargez la page et recommencez.",
    )
}

pub fn password_change_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "PASSWORD_CHANGE_REQUIRED",
        "Vous devez changer votre mot de passe avant de continuer.",
    )
}

pub fn acces_refuse() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "ACCES_REFUSE", "Vous n'avez pas les droits pour cette action.")
}

// ---- the guard -------------------------------------------------------------------------------------------------

/// The CSRF token set by a transparent refresh in this very response (pages render it into their forms).
#[derive(Clone, Debug)]
pub struct FreshCsrf(pub String);

/// What an authentication attempt found.
enum Found {
    None,
    Identity(Box<Identity>),
    Refused(ApiError),
}

/// Resolves the session behind an access token: one query for user, session family and device.
async fn resolve(st: &AppState, token: &str, via_cookie: bool) -> Found {
    let Some(secrets) = st.secrets.get() else { return Found::None };
    let now = st.clock.now();
    let claims = match tokens::decode(token, &jwt_keys(st, secrets), now.timestamp()) {
        Ok(c) => c,
        Err(tokens::JwtError::Expired) => return Found::Refused(token_expired()),
        Err(tokens::JwtError::Invalid) => return Found::Refused(unauthenticated()),
    };
    let Ok(sid) = Uuid::parse_str(&claims.sid) else { return Found::Refused(unauthenticated()) };
    let row = match store::identity::load_auth(st.dbmon.db(), sid).await {
        Ok(Some(r)) => r,
        Ok(None) => return Found::Refused(unauthenticated()),
        Err(e) => {
            st.dbmon.report(&e);
            return Found::Refused(e.into());
        }
    };
    if row.user.id.to_string() != claims.sub {
        return Found::Refused(unauthenticated());
    }
    if row.device_active == Some(false) {
        return Found::Refused(device_revoked());
    }
    if row.session_revoked || !row.user.is_active {
        return Found::Refused(session_revoked());
    }
    let role = store::identity::role_of(&row.user);
    Found::Identity(Box::new(Identity {
        user: row.user,
        role,
        session_id: sid,
        client: row.client,
        device_id: row.device_id,
        via_cookie,
        access_expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or(now),
    }))
}

fn is_page(path: &str) -> bool {
    !(path == "/api" || path.starts_with("/api/") || path == "/metrics" || path.starts_with("/assets/"))
}

/// Routes a `mustChangePassword` user may still use.
fn allowed_before_password_change(method: &Method, template: &str) -> bool {
    matches!(
        (method.as_str(), template),
        ("GET", "/api/auth/me")
            | ("POST", "/api/auth/change-password")
            | ("POST", "/api/auth/logout")
            | ("POST", "/api/auth/refresh")
            | (_, "/mot-de-passe")
            | ("POST", "/deconnexion")
    )
}

/// `Origin`, when sent, must be ours: `PUBLIC_URL`'s origin, a `CORS_ORIGINS` entry, or (without `PUBLIC_URL`) the
/// `Host` the browser addressed.
fn origin_allowed(st: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    if st.config.cors_origins.iter().any(|o| o == origin) {
        return true;
    }
    match &st.config.public_url {
        Some(url) => {
            let trimmed = url.trim_end_matches('/');
            let base = trimmed.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
            base == origin
        }
        None => headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|host| origin == format!("http://{host}") || origin == format!("https://{host}")),
    }
}

/// A form's `_csrf` field: the body is read (it is bounded by the body limit) and put back for the handler.
async fn form_csrf(req: Request, limit: usize) -> (Request, Option<String>) {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let multipart = crate::web::multipart::boundary(content_type);
    if !content_type.starts_with("application/x-www-form-urlencoded") && multipart.is_none() {
        return (req, None);
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit).await.unwrap_or_default();
    let token = match multipart {
        Some(b) => crate::web::multipart::text(&crate::web::multipart::parse(&bytes, &b), "_csrf"),
        None => serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "_csrf").map(|(_, v)| v)),
    };
    (Request::from_parts(parts, axum::body::Body::from(bytes)), token)
}

/// Writes an audit entry for a refusal, in its own transaction (the refused operation wrote nothing).
pub async fn audit_refusal(st: &AppState, actor: Actor, change: Change) {
    if let Err(e) = store::audit::append_alone(st.dbmon.db(), &actor, change, st.clock.now()).await {
        tracing::error!(error = %e, "could not write a refusal to the audit log");
    }
}

pub async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let template = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let page = is_page(&path);
    let declared = crate::access::lookup(method.as_str(), &template).or_else(|| {
        st.extra_access.iter().find(|(m, p, _)| *m == method.as_str() && *p == template).map(|(_, _, a)| *a)
    });
    // A declared path called with another method: 405 here, so an undeclared handler can never be reached.
    if declared.is_none() {
        let allow: Vec<&str> = crate::access::ROUTES.iter().filter(|r| r.path == template).map(|r| r.method).collect();
        if !allow.is_empty() {
            let mut res = ApiError::for_status(StatusCode::METHOD_NOT_ALLOWED).into_response();
            if let Ok(v) = HeaderValue::from_str(&allow.join(",")) {
                res.headers_mut().insert(header::ALLOW, v);
            }
            return res;
        }
    }
    let headers = req.headers().clone();
    let names = cookie_names(st.config.is_production());

    // Credentials: a bearer token (devices, scripts) or the access cookie (web). A page whose access cookie ran out
    // is refreshed transparently with the refresh cookie.
    let mut set_cookies: Vec<HeaderValue> = Vec::new();
    let mut fresh_csrf: Option<String> = None;
    let mut found = Found::None;
    if let Some(t) = bearer(&headers) {
        found = resolve(&st, &t, false).await;
    } else {
        if let Some(t) = read_cookie(&headers, names.access) {
            found = resolve(&st, &t, true).await;
        }
        let expired = matches!(&found, Found::None) || matches!(&found, Found::Refused(e) if e.code == "TOKEN_EXPIRED");
        if page
            && expired
            && let Some(rt) = read_cookie(&headers, names.refresh)
        {
            let ctx = Ctx::of(req.extensions(), &headers);
            match session::refresh(&st, &rt, &ctx).await {
                Ok(r) => {
                    set_cookies = session::web_cookies(&st, &r.issued);
                    fresh_csrf = r.issued.csrf.clone();
                    found = resolve(&st, &r.issued.access, true).await;
                }
                Err(e) => {
                    // A dead refresh cookie on a page: clear the cookies and treat the visitor as anonymous.
                    set_cookies = session::clear_cookies(&st);
                    if e.code == "DEVICE_REVOKED" || e.code == "SESSION_REVOKED" {
                        found = Found::None;
                    }
                }
            }
        }
    }

    let mut req = req;
    if let Some(c) = fresh_csrf {
        req.extensions_mut().insert(FreshCsrf(c));
    }
    if declared == Some(Access::Public) {
        if let Found::Identity(id) = found {
            req.extensions_mut().insert(*id);
        }
        return with_cookies(next.run(req).await, set_cookies);
    }

    let identity = match found {
        Found::Identity(id) => Some(*id),
        Found::Refused(e) if !page => return with_cookies(e.into_response(), set_cookies),
        Found::Refused(e) if e.status.is_server_error() => return with_cookies(e.into_response(), set_cookies),
        _ => None,
    };
    let ctx = Ctx::of(req.extensions(), &headers);

    match Access::check_declared(declared, identity.as_ref().map(|i| i.role)) {
        Ok(()) => {}
        Err(Refusal::Unauthenticated) => {
            if declared.is_none() {
                tracing::error!(method = %method, route = %template, "route without a role declaration refused");
            }
            let res = if page {
                let suite = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
                Redirect::to(&format!("/connexion?suite={}", urlencode(suite))).into_response()
            } else {
                unauthenticated().into_response()
            };
            return with_cookies(res, set_cookies);
        }
        Err(Refusal::Forbidden) => {
            let id = identity.as_ref().expect("forbidden implies an identity");
            if declared.is_none() {
                tracing::error!(method = %method, route = %template, "route without a role declaration refused");
            }
            tracing::warn!(user = %id.user.id, method = %method, route = %template, "access denied");
            audit_refusal(
                &st,
                id.actor(&ctx),
                Change::new("ACCESS_DENIED")
                    .security()
                    .after(serde_json::json!({"method": method.as_str(), "path": path, "route": template})),
            )
            .await;
            let res = if page { crate::web::forbidden_page(&st, id, &headers) } else { acces_refuse().into_response() };
            return with_cookies(res, set_cookies);
        }
    }
    let id = identity.expect("checked above");

    // CSRF (double submit) for cookie sessions on unsafe methods.
    if id.via_cookie && !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let cookie = read_cookie(&headers, names.csrf);
        let header_token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_string);
        let form_token = if header_token.is_none() && page {
            let (r, t) = form_csrf(req, st.config.body_limit).await;
            req = r;
            t
        } else {
            None
        };
        let presented = header_token.or(form_token);
        let ok =
            matches!((&cookie, &presented), (Some(c), Some(p)) if tokens::same(c, p)) && origin_allowed(&st, &headers);
        if !ok {
            tracing::warn!(user = %id.user.id, route = %template, "csrf check failed");
            let res = if page { crate::web::csrf_page(&st, &id, &headers) } else { csrf_invalid().into_response() };
            return with_cookies(res, set_cookies);
        }
    }

    if id.user.must_change_password && !allowed_before_password_change(&method, &template) {
        let res = if page {
            Redirect::to("/mot-de-passe").into_response()
        } else {
            password_change_required().into_response()
        };
        return with_cookies(res, set_cookies);
    }

    req.extensions_mut().insert(id);
    with_cookies(next.run(req).await, set_cookies)
}

fn with_cookies(mut res: Response, cookies: Vec<HeaderValue>) -> Response {
    for c in cookies {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The identity the guard attached; handlers of non-public routes always have one.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Identity>().cloned().ok_or_else(unauthenticated)
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Identity {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Option<Self>, std::convert::Infallible> {
        Ok(parts.extensions.get::<Identity>().cloned())
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Ctx::of(&parts.extensions, &parts.headers))
    }
}
