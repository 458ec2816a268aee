//! Login, refresh, logout and password change (PLATFORM.md §4.1–4.4), shared by the JSON API and the pages.

use axum::http::{HeaderValue, StatusCode};
use chrono::{DateTime, Utc};
use domain::identity::{RefreshVerdict, normalize_email, password_failures, refresh_verdict};
use domain::rejection::Rejection;
use serde_json::json;
use store::audit::Change;
use store::identity::{self as ids, NewSession, User};
use uuid::Uuid;

use super::{Ctx, Identity, audit_refusal, cookie_names, password, set_cookie, tokens};
use crate::platform::errors::ApiError;
use crate::state::AppState;

/// Tokens handed out by a login or a refresh.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access: String,
    pub access_expires_at: DateTime<Utc>,
    /// A new refresh token (absent in the 30-second grace of a benign reuse).
    pub refresh: Option<(String, DateTime<Utc>)>,
    pub csrf: Option<String>,
}

pub struct LoggedIn {
    pub user: User,
    pub session_id: Uuid,
    pub issued: Issued,
    /// `(id, registered, isActive)` for device clients.
    pub device: Option<(Uuid, bool, bool)>,
}

pub struct Refreshed {
    pub user: User,
    pub client: String,
    pub device_id: Option<Uuid>,
    pub issued: Issued,
}

fn store_err(st: &AppState, e: store::StoreError) -> ApiError {
    st.dbmon.report(&e);
    e.into()
}

pub fn op_err(st: &AppState, e: store::OpError) -> ApiError {
    match e {
        store::OpError::Store(e) => store_err(st, e),
        store::OpError::Rejected(r) => r.into(),
    }
}

pub fn access_token(st: &AppState, user: &User, session_id: Uuid, device_id: Option<Uuid>) -> (String, DateTime<Utc>) {
    let now = st.clock.now();
    let exp = now + chrono::Duration::from_std(st.config.access_token_ttl).unwrap_or(chrono::Duration::minutes(15));
    let claims = tokens::Claims {
        iss: tokens::ISSUER.into(),
        sub: user.id.to_string(),
        sid: session_id.to_string(),
        did: device_id.map(|d| d.to_string()),
        role: user.role.clone(),
        iat: now.timestamp(),
        exp: exp.timestamp(),
    };
    let secret = st.secrets.get().map(|s| s.jwt.as_str()).unwrap_or_default();
    (tokens::encode(&claims, secret), DateTime::from_timestamp(exp.timestamp(), 0).unwrap_or(exp))
}

fn refresh_ttl(st: &AppState, client: &str) -> chrono::Duration {
    let d = if client == "device" { st.config.refresh_token_ttl_device } else { st.config.refresh_token_ttl_web };
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(1))
}

/// `Set-Cookie` headers for a web session (PLATFORM.md §4.3).
pub fn web_cookies(st: &AppState, issued: &Issued) -> Vec<HeaderValue> {
    let names = cookie_names(st.config.is_production());
    let secure = st.config.is_production();
    let mut out =
        vec![set_cookie(names.access, &issued.access, st.config.access_token_ttl.as_secs() as i64, true, secure)];
    let rt_ttl = st.config.refresh_token_ttl_web.as_secs() as i64;
    if let Some((rt, _)) = &issued.refresh {
        out.push(set_cookie(names.refresh, rt, rt_ttl, true, secure));
    }
    if let Some(c) = &issued.csrf {
        out.push(set_cookie(names.csrf, c, rt_ttl, false, secure));
    }
    out
}

pub fn clear_cookies(st: &AppState) -> Vec<HeaderValue> {
    let names = cookie_names(st.config.is_production());
    let secure = st.config.is_production();
    [(names.access, true), (names.refresh, true), (names.csrf, false)]
        .into_iter()
        .map(|(n, http_only)| set_cookie(n, "", 0, http_only, secure))
        .collect()
}

pub fn invalid_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS", "Identifiants invalides.")
}

pub fn account_locked(retry_after: i64) -> ApiError {
    let minutes = (retry_after + 59) / 60;
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "ACCOUNT_LOCKED",
        format!("Trop de tentatives de connexion. Réessayez dans {minutes} minutes."),
    )
    .with_details(json!({"retryAfterSeconds": retry_after}))
    .with_retry_after(retry_after.max(1) as u64)
}

/// The lockout key: SHA-256 of the normalised e-mail (or of the trimmed input when it is not an e-mail).
pub fn email_key(email: &str) -> String {
    tokens::sha256_hex(&normalize_email(email).unwrap_or_else(|| email.trim().to_lowercase()))
}

pub struct LoginInput {
    pub email: String,
    pub password: String,
    pub device_client: bool,
    pub device_id: Option<Uuid>,
}

/// Records a failed password check: counts it, locks at the fifth, audits both. Returns the error to answer.
async fn record_failure(st: &AppState, key: &str, user: Option<&User>, ctx: &Ctx) -> ApiError {
    let now = st.clock.now();
    let db = st.dbmon.db();
    let key = key.to_string();
    let actor = match user {
        Some(u) => ctx.actor(u, None),
        None => ctx.anonymous(),
    };
    let user_id = user.map(|u| u.id);
    let result = db
        .write(|tx| {
            let key = key.clone();
            let actor = actor.clone();
            Box::pin(async move {
                let before = ids::attempts(&**tx, &key).await?;
                let after = before.after_failure(now.timestamp());
                ids::save_attempts(&**tx, &key, after).await?;
                let mut change = Change::new("LOGIN_FAILURE")
                    .security()
                    .after(json!({"failures": after.failures, "emailKey": key, "knownUser": user_id.is_some()}));
                if let Some(id) = user_id {
                    change = change.entity("user", id);
                }
                store::audit::append(&**tx, &actor, change, now).await?;
                if after.locked_for(now.timestamp()).is_some() && before.locked_for(now.timestamp()).is_none() {
                    let mut change = Change::new("ACCOUNT_LOCKED")
                        .security()
                        .after(json!({"lockedUntil": after.locked_until, "emailKey": key}));
                    if let Some(id) = user_id {
                        change = change.entity("user", id);
                    }
                    store::audit::append(&**tx, &actor, change, now).await?;
                }
                Ok::<_, store::StoreError>(())
            })
        })
        .await;
    match result {
        Ok(()) => invalid_credentials(),
        Err(e) => store_err(st, e),
    }
}

pub async fn login(st: &AppState, input: LoginInput, ctx: &Ctx) -> Result<LoggedIn, ApiError> {
    let db = st.dbmon.db();
    let now = st.clock.now();
    let key = email_key(&input.email);
    let attempts = ids::attempts(db.conn(), &key).await.map_err(|e| store_err(st, e))?;
    let user = match normalize_email(&input.email) {
        Some(e) => ids::user_by_email(db.conn(), &e).await.map_err(|e| store_err(st, e))?,
        None => None,
    };
    if let Some(left) = attempts.locked_for(now.timestamp()) {
        let actor = user.as_ref().map(|u| ctx.actor(u, None)).unwrap_or_else(|| ctx.anonymous());
        audit_refusal(
            st,
            actor,
            Change::new("LOGIN_FAILURE").security().after(json!({"locked": true, "emailKey": key})),
        )
        .await;
        return Err(account_locked(left));
    }
    // The per-(IP, e-mail) limiter is a wider net than the account lockout (PLATFORM.md §5.1); a locked account
    // answers ACCOUNT_LOCKED first, whatever the limiter says.
    let ip = ctx.ip.clone().unwrap_or_default();
    let d = st
        .limiter
        .hit("login", &format!("{ip}:{key}"), st.config.rate_limit_login_max, std::time::Duration::from_secs(900))
        .await;
    if !d.allowed {
        tracing::warn!(limiter = "login", identity = %ip, "rate_limited");
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            format!("Trop de tentatives depuis cette adresse. Réessayez dans {} s.", d.retry_after_secs),
        )
        .with_details(json!({"limiter": "login", "limit": d.limit, "windowSeconds": 900, "layer": "app"}))
        .with_retry_after(d.retry_after_secs));
    }
    let (valid, rehash) =
        password::verify(input.password.clone(), user.as_ref().map(|u| u.password_hash.clone())).await?;
    let user = match user {
        Some(u) if valid && u.is_active => u,
        other => return Err(record_failure(st, &key, other.as_ref(), ctx).await),
    };

    // Device checks come after the password: an unauthenticated caller learns nothing about devices.
    let mut device = None;
    if input.device_client
        && let Some(did) = input.device_id
    {
        match ids::device(db.conn(), did).await.map_err(|e| store_err(st, e))? {
            Some(d) if d.user_id != user.id => {
                audit_refusal(
                    st,
                    ctx.actor(&user, Some(did)),
                    Change::new("DEVICE_OWNED_BY_OTHER_USER").security().entity("device", did),
                )
                .await;
                return Err(ids::device_owned_by_other().into());
            }
            Some(d) if !d.is_active => {
                audit_refusal(
                    st,
                    ctx.actor(&user, Some(did)),
                    Change::new("LOGIN_FAILURE").security().entity("device", did).after(json!({"deviceRevoked": true})),
                )
                .await;
                return Err(ids::device_revoked().into());
            }
            Some(_) => device = Some((did, true, true)),
            None => device = Some((did, false, true)),
        }
    }
    let client: &'static str = if input.device_client { "device" } else { "web" };
    let refresh = tokens::new_refresh_token();
    let refresh_hash = tokens::sha256_hex(&refresh);
    let ttl = refresh_ttl(st, client);
    let device_id = device.map(|d| d.0);
    let actor = ctx.actor(&user, device_id);
    let (user_id, ip, ua) = (user.id, ctx.ip.clone(), ctx.user_agent.clone());
    let (session_id, refresh_exp) = db
        .write(|tx| {
            let (key, refresh_hash, actor, ip, ua) =
                (key.clone(), refresh_hash.clone(), actor.clone(), ip.clone(), ua.clone());
            Box::pin(async move {
                ids::clear_attempts(&**tx, &key).await?;
                let sid =
                    ids::create_session(&**tx, NewSession { user_id, device_id, client, ip, user_agent: ua }, now)
                        .await?;
                let exp = ids::issue_refresh(&**tx, sid, &refresh_hash, now, ttl).await?;
                ids::record_login(&**tx, user_id, now).await?;
                store::audit::append(
                    &**tx,
                    &actor,
                    Change::new("LOGIN_SUCCESS").entity("session", sid).after(json!({"client": client})),
                    now,
                )
                .await?;
                Ok::<_, store::StoreError>((sid, exp))
            })
        })
        .await
        .map_err(|e| store_err(st, e))?;
    if rehash {
        let h = password::hash(input.password).await?;
        if let Err(e) = ids::upgrade_hash(db, user.id, h).await {
            tracing::warn!(error = %e, "password re-hash failed");
        }
    }
    let (access, access_expires_at) = access_token(st, &user, session_id, device_id);
    Ok(LoggedIn {
        user,
        session_id,
        issued: Issued {
            access,
            access_expires_at,
            refresh: Some((refresh, refresh_exp)),
            csrf: (client == "web").then(tokens::new_csrf_token),
        },
        device,
    })
}

/// Exchanges a refresh token: rotation, the 30-second grace, or reuse detection (PLATFORM.md §4.2).
pub async fn refresh(st: &AppState, token: &str, ctx: &Ctx) -> Result<Refreshed, ApiError> {
    let db = st.dbmon.db();
    let now = st.clock.now();
    let hash = tokens::sha256_hex(token);
    let Some((t, s)) = ids::find_refresh(db.conn(), &hash).await.map_err(|e| store_err(st, e))? else {
        return Err(super::unauthenticated());
    };
    let user = ids::user_by_id(db.conn(), s.user_id)
        .await
        .map_err(|e| store_err(st, e))?
        .ok_or_else(super::unauthenticated)?;
    if let Some(did) = s.device_id
        && let Some(d) = ids::device(db.conn(), did).await.map_err(|e| store_err(st, e))?
        && !d.is_active
    {
        return Err(super::device_revoked());
    }
    if !user.is_active {
        return Err(super::session_revoked());
    }
    let verdict = refresh_verdict(
        t.rotated_at.map(|r| r.timestamp()),
        t.revoked_at.is_some(),
        t.expires_at.timestamp(),
        s.revoked_at.is_some(),
        now.timestamp(),
    );
    let web = s.client == "web";
    match verdict {
        RefreshVerdict::Invalid if s.revoked_at.is_some() || t.revoked_at.is_some() => Err(super::session_revoked()),
        RefreshVerdict::Invalid => Err(super::unauthenticated()),
        RefreshVerdict::Reuse => {
            let actor = ctx.actor(&user, s.device_id);
            let sid = s.id;
            let ua = ctx.user_agent.clone();
            db.write(|tx| {
                let (actor, ua) = (actor.clone(), ua.clone());
                Box::pin(async move {
                    ids::revoke_session(&**tx, sid, "REFRESH_TOKEN_REUSE", now).await?;
                    store::audit::append(
                        &**tx,
                        &actor,
                        Change::new("REFRESH_TOKEN_REUSE")
                            .security()
                            .entity("session", sid)
                            .after(json!({"userAgent": ua, "rotatedAt": t.rotated_at})),
                        now,
                    )
                    .await?;
                    Ok::<_, store::StoreError>(())
                })
            })
            .await
            .map_err(|e| store_err(st, e))?;
            tracing::warn!(user = %user.id, session = %sid, "refresh token reuse: family revoked");
            Err(super::session_revoked())
        }
        RefreshVerdict::Grace => {
            let (access, access_expires_at) = access_token(st, &user, s.id, s.device_id);
            Ok(Refreshed {
                user,
                client: s.client,
                device_id: s.device_id,
                issued: Issued { access, access_expires_at, refresh: None, csrf: None },
            })
        }
        RefreshVerdict::Rotate => {
            let new = tokens::new_refresh_token();
            let new_hash = tokens::sha256_hex(&new);
            let ttl = refresh_ttl(st, &s.client);
            let (tid, sid) = (t.id, s.id);
            let rotated = db
                .write(|tx| {
                    let new_hash = new_hash.clone();
                    Box::pin(async move {
                        if !ids::mark_rotated(&**tx, tid, now).await? {
                            return Ok(None);
                        }
                        Ok::<_, store::StoreError>(Some(ids::issue_refresh(&**tx, sid, &new_hash, now, ttl).await?))
                    })
                })
                .await
                .map_err(|e| store_err(st, e))?;
            let (access, access_expires_at) = access_token(st, &user, s.id, s.device_id);
            // Another request rotated it a moment ago: the grace answer.
            let refresh = rotated.map(|exp| (new, exp));
            let csrf = (web && refresh.is_some()).then(tokens::new_csrf_token);
            Ok(Refreshed {
                user,
                client: s.client,
                device_id: s.device_id,
                issued: Issued { access, access_expires_at, refresh, csrf },
            })
        }
    }
}

pub async fn logout(st: &AppState, id: &Identity, ctx: &Ctx) -> Result<(), ApiError> {
    let now = st.clock.now();
    let actor = id.actor(ctx);
    let sid = id.session_id;
    st.dbmon
        .db()
        .write(|tx| {
            let actor = actor.clone();
            Box::pin(async move {
                ids::revoke_session(&**tx, sid, "LOGOUT", now).await?;
                store::audit::append(
                    &**tx,
                    &actor,
                    Change::new("SESSION_REVOKED").entity("session", sid).reason("LOGOUT"),
                    now,
                )
                .await?;
                Ok::<_, store::StoreError>(())
            })
        })
        .await
        .map_err(|e| store_err(st, e))
}

/// Changes the caller's password: the current one is checked (a failure counts toward the lockout), the policy
/// applied, every other session closed, and this session gets fresh tokens.
pub async fn change_password(
    st: &AppState,
    id: &Identity,
    current: String,
    new: String,
    ctx: &Ctx,
) -> Result<Issued, ApiError> {
    let key = email_key(&id.user.email);
    let now = st.clock.now();
    if let Some(left) =
        ids::attempts(st.dbmon.db().conn(), &key).await.map_err(|e| store_err(st, e))?.locked_for(now.timestamp())
    {
        return Err(account_locked(left));
    }
    let (valid, _) = password::verify(current.clone(), Some(id.user.password_hash.clone())).await?;
    if !valid {
        return Err(record_failure(st, &key, Some(&id.user), ctx).await);
    }
    let failed = password_failures(&new, Some(&current), &id.user.email);
    if !failed.is_empty() {
        return Err(Rejection::mot_de_passe_faible(&failed).into());
    }
    let hash = password::hash(new).await?;
    let user = id.user.clone();
    let actor = id.actor(ctx);
    let sid = id.session_id;
    let refresh = tokens::new_refresh_token();
    let refresh_hash = tokens::sha256_hex(&refresh);
    let ttl = refresh_ttl(st, &id.client);
    let refresh_exp = st
        .dbmon
        .db()
        .write(|tx| {
            let (user, actor, hash, refresh_hash) = (user.clone(), actor.clone(), hash.clone(), refresh_hash.clone());
            Box::pin(async move {
                ids::set_password(&**tx, &user, hash, false, Some(sid), &actor, now).await?;
                // This family continues with a fresh refresh token; the old ones die.
                ids::revoke_refresh_tokens(&**tx, sid, now).await?;
                ids::issue_refresh(&**tx, sid, &refresh_hash, now, ttl).await
            })
        })
        .await
        .map_err(|e| store_err(st, e))?;
    let mut user = id.user.clone();
    user.must_change_password = false;
    let (access, access_expires_at) = access_token(st, &user, sid, id.device_id);
    Ok(Issued {
        access,
        access_expires_at,
        refresh: Some((refresh, refresh_exp)),
        csrf: (id.client == "web").then(tokens::new_csrf_token),
    })
}
