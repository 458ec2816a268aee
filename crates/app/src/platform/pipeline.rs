//! The request pipeline (PLATFORM.md §2.2): request id, client IP, rate limit, gates, then the handler; on the way
//! out the error envelope for anything the handlers did not produce, security headers, the access log and metrics.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::platform::net::{ClientIp, client_ip};
use domain::platform::ratelimit::Decision;
use serde_json::json;
use tracing::Instrument;

use super::errors::{ApiError, Enveloped, REQUEST_ID};
use crate::state::AppState;

/// The route template that served a response (for metrics), copied from the router.
#[derive(Clone)]
pub struct RouteTemplate(pub String);

pub async fn record_route(req: Request, next: Next) -> Response {
    let template = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    let mut res = next.run(req).await;
    if let Some(t) = template {
        res.extensions_mut().insert(RouteTemplate(t));
    }
    res
}

fn exempt_from_limits(path: &str) -> bool {
    path.starts_with("/api/health") || path == "/metrics" || path.starts_with("/assets/")
}

/// Routes that can answer without the database (health, metrics, the status page, static files, the drivers' app
/// shell).
fn works_without_database(path: &str) -> bool {
    exempt_from_limits(path)
        || path == "/"
        || path == "/api/openapi.json"
        || path.starts_with("/docs")
        || path == "/app"
        || path.starts_with("/app/")
}

pub async fn pipeline(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| domain::platform::request_id::is_acceptable(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let forwarded: Vec<&str> =
        req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    let client = client_ip(peer, &forwarded, &st.config.trusted_proxies);
    req.extensions_mut().insert(client);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let is_api = path == "/api" || path.starts_with("/api/");
    // CORS (PLATFORM.md §2.6): only for the exact origins of `CORS_ORIGINS`; others just get no CORS headers.
    let cors_origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| st.config.cors_origins.iter().any(|c| c == o))
        .map(str::to_string);
    if method == axum::http::Method::OPTIONS
        && let Some(origin) = &cors_origin
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let mut res = StatusCode::NO_CONTENT.into_response();
        cors_headers(&mut res, origin);
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "Content-Type, Authorization, X-CSRF-Token, X-Request-Id, X-Device-Id, Idempotency-Key",
            ),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        security_headers(&mut res, &path, is_api, st.config.is_production());
        return res;
    }

    let span = tracing::info_span!("request", request_id = %request_id);
    let inner = async {
        let mut limit: Option<Decision> = None;
        if !exempt_from_limits(&path) {
            // Many users of one factory share one public IP: a signed-in user is counted by user id.
            let identity = crate::auth::token_subject(&st, req.headers())
                .map(|sub| format!("user:{sub}"))
                .unwrap_or_else(|| format!("ip:{}", client.ip));
            let d = st.limiter.hit("general", &identity, st.config.rate_limit_max, st.config.rate_limit_ttl).await;
            if !d.allowed {
                tracing::warn!(limiter = "general", identity = %identity, "rate_limited");
                let mut res = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "RATE_LIMITED",
                    format!("Trop de requêtes. Réessayez dans {} s.", d.retry_after_secs),
                )
                .with_details(json!({
                    "limiter": "general", "limit": d.limit,
                    "windowSeconds": st.config.rate_limit_ttl.as_secs(), "layer": "app"
                }))
                .with_retry_after(d.retry_after_secs)
                .into_response();
                put_limit_headers(&mut res, &d);
                return res;
            }
            limit = Some(d);
        }
        // Body limit by route (PLATFORM.md §2.2): `SYNC_BODY_LIMIT` for the sync push, `BODY_LIMIT` elsewhere. A
        // declared length over it is refused before the body is read; extractors and the push enforce it while reading.
        let body_limit = if path == "/api/sync/push" { st.config.sync_body_limit } else { st.config.body_limit };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > body_limit) {
            return ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE).into_response();
        }
        if st.is_draining() && !path.starts_with("/api/health") {
            return gate_response(is_api, ApiError::draining());
        }
        if !works_without_database(&path) && !st.dbmon.is_up() {
            return gate_response(is_api, ApiError::database_unavailable());
        }
        let mut res = next.run(req).await;
        if let Some(d) = limit {
            put_limit_headers(&mut res, &d);
        }
        res
    };
    let mut res = REQUEST_ID.scope(request_id.clone(), inner.instrument(span.clone())).await;

    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // Errors our handlers shaped themselves (the envelope, or a health report) are JSON already; anything else
    // (router fallbacks, body limits, panics) gets the envelope here.
    let shaped = res.extensions().get::<Enveloped>().is_some() || is_json;
    if is_api && (status.is_client_error() || status.is_server_error()) && !shaped {
        let allow = res.headers().get(header::ALLOW).cloned();
        res = REQUEST_ID.sync_scope(request_id.clone(), || ApiError::for_status(status).into_response());
        if let Some(allow) = allow {
            res.headers_mut().insert(header::ALLOW, allow);
        }
    }
    security_headers(&mut res, &path, is_api, st.config.is_production());
    if let Some(origin) = &cors_origin {
        cors_headers(&mut res, origin);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(HeaderName::from_static("x-request-id"), v);
    }

    let route = res.extensions().get::<RouteTemplate>().map(|r| r.0.clone()).unwrap_or_else(|| "unmatched".into());
    let latency = started.elapsed();
    let status = res.status().as_u16();
    metrics::counter!("http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method.to_string(), "route" => route.clone())
        .record(latency.as_secs_f64());
    let _enter = span.enter();
    let latency_ms = latency.as_millis() as u64;
    if status >= 500 {
        tracing::error!(request_id = %request_id, method = %method, route = %route, status, latency_ms, "request");
        // 503s of an outage or a drain are expected degradations (alerted by DatabaseDown), not bugs: not sent.
        if st.config.sentry_dsn.is_some() && status != 503 {
            sentry::with_scope(
                |scope| scope.set_tag("request_id", &request_id),
                || sentry::capture_message(&format!("{status} on {method} {route}"), sentry::Level::Error),
            );
        }
    } else if exempt_from_limits(&path) {
        tracing::debug!(request_id = %request_id, method = %method, route = %route, status, latency_ms, "request");
    } else {
        tracing::info!(request_id = %request_id, method = %method, route = %route, status, latency_ms, "request");
    }
    res
}

fn gate_response(is_api: bool, err: ApiError) -> Response {
    if is_api {
        return err.into_response();
    }
    let mut res = crate::web::unavailable_page(&err.message);
    if let Some(s) = err.retry_after {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    res
}

fn cors_headers(res: &mut Response, origin: &str) {
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

fn put_limit_headers(res: &mut Response, d: &Decision) {
    let h = res.headers_mut();
    h.insert("ratelimit-limit", HeaderValue::from(d.limit));
    h.insert("ratelimit-remaining", HeaderValue::from(d.remaining));
    h.insert("ratelimit-reset", HeaderValue::from(d.reset_secs));
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; \
connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Swagger UI (third-party, `/docs` only) sets inline `style` attributes; nothing of ours ever gets this policy.
const CSP_DOCS: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// PLATFORM.md §4.6, on every response including errors and assets.
fn security_headers(res: &mut Response, path: &str, is_api: bool, production: bool) {
    let h = res.headers_mut();
    let csp = if path == "/docs" || path.starts_with("/docs/") { CSP_DOCS } else { CSP };
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(self), microphone=(), geolocation=(self), payment=()"),
    );
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    if is_api && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if production {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
}

/// The client as the pipeline resolved it.
pub fn client_of(req_ext: &axum::http::Extensions) -> Option<ClientIp> {
    req_ext.get::<ClientIp>().copied()
}
