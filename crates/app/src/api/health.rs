//! Health endpoints (PLATFORM.md §9.1): exempt from rate limits, never cached.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::platform::health::{self as rules, CacheState, DatabaseState, Overall};
use serde_json::{Value, json};

use crate::platform::cache::CacheCheck;
use crate::platform::errors::ApiError;
use crate::platform::telemetry;
use crate::state::AppState;

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn no_store(status: StatusCode, body: Value) -> Response {
    let mut res = (status, Json(body)).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    res
}

/// Liveness: no dependency is checked.
#[utoipa::path(get, path = "/api/health", tag = "platform", responses((status = 200, description = "Le processus répond")))]
pub async fn live() -> Response {
    no_store(StatusCode::OK, json!({"status": "ok", "timestamp": now_rfc3339()}))
}

/// The result of the two readiness probes, shared by the health endpoints and the status page.
pub struct Checks {
    pub overall: Overall,
    pub db_state: DatabaseState,
    pub db_ms: u64,
    /// The `SELECT 1` itself failed (rather than answering before the bootstrap finished).
    pub db_failed: bool,
    pub cache: CacheCheck,
}

impl Checks {
    fn database_json(&self) -> Value {
        let mut v = json!({"status": if self.db_state == DatabaseState::Up { "up" } else { "down" }, "responseTimeMs": self.db_ms});
        if self.db_failed {
            v["error"] = json!("DATABASE_UNAVAILABLE");
        }
        v
    }

    fn cache_json(&self) -> Value {
        let c = &self.cache;
        let mut v = json!({"status": c.status, "mode": c.mode, "responseTimeMs": c.response_time_ms});
        if let Some(e) = c.error {
            v["error"] = json!(e);
        }
        v
    }
}

/// `SELECT 1` (2 s) and the cache `PING` (250 ms) in parallel.
pub async fn run_checks(st: &AppState) -> Checks {
    let db_check = async {
        let t = Instant::now();
        let res = st.dbmon.db().ping(Duration::from_secs(2)).await;
        (res, t.elapsed().as_millis() as u64)
    };
    let ((db_res, db_ms), cache) = tokio::join!(db_check, st.cache.check());
    if let Err(e) = &db_res {
        st.dbmon.report(e);
    }
    // Up means answering *and* ready for work (migrations and secrets done).
    let db_state = if db_res.is_ok() && st.dbmon.is_up() { DatabaseState::Up } else { DatabaseState::Down };
    let cache_state = match cache.status {
        "up" => CacheState::Up,
        "fallback" => CacheState::Fallback,
        _ => CacheState::Down,
    };
    let overall = rules::overall(st.is_draining(), db_state, cache_state);
    Checks { overall, db_state, db_ms, db_failed: db_res.is_err(), cache }
}

/// Readiness: 200 ready or degraded (cache down), 503 when the database is down or the server is draining.
#[utoipa::path(get, path = "/api/health/ready", tag = "platform", responses(
    (status = 200, description = "Prêt ou dégradé"), (status = 503, description = "Base de données indisponible ou arrêt en cours")))]
pub async fn ready(State(st): State<AppState>) -> Response {
    let c = run_checks(&st).await;
    let status = StatusCode::from_u16(c.overall.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    no_store(
        status,
        json!({"status": c.overall.ready_word(), "timestamp": now_rfc3339(),
               "checks": {"database": c.database_json(), "cache": c.cache_json()}}),
    )
}

/// May this request read diagnostics without a token? Only from an allow-listed address, never through a proxy.
pub fn allowed_by_ip(ext: &axum::http::Extensions, allow: &[domain::platform::net::Cidr]) -> bool {
    crate::platform::pipeline::client_of(ext)
        .is_some_and(|c| !c.via_trusted_proxy && domain::platform::net::any_contains(allow, c.ip))
}

/// Diagnostics are readable from an allow-listed address, or with an ADMIN session whatever the address (through
/// nginx, an operator presents a token).
pub fn diagnostics_allowed(req: &axum::extract::Request, allow: &[domain::platform::net::Cidr]) -> bool {
    allowed_by_ip(req.extensions(), allow)
        || req.extensions().get::<crate::auth::Identity>().is_some_and(|i| i.role == domain::identity::Role::Admin)
}

pub fn diagnostics_refused() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "Authentification requise (jeton administrateur).")
}

/// Backups as PLATFORM.md §9.1 shows them: the last verified one, its age, the last restore test (null when unknown).
async fn backups_json(st: &AppState) -> Value {
    let db = st.dbmon.db();
    if !st.dbmon.is_up() {
        return Value::Null;
    }
    let last = store::backups::last_ok(db, "BACKUP").await.ok().flatten();
    let test = store::backups::last(db, "RESTORE_TEST").await.ok().flatten();
    let now = st.clock.now();
    json!({
        "lastAt": last.as_ref().map(|b| b.finished_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "lastFile": last.as_ref().and_then(|b| b.file.as_deref().and_then(|f| f.rsplit('/').next()).map(str::to_string)),
        "ageHours": last.as_ref().map(|b| ((now - b.finished_at).num_minutes() as f64 / 6.0).round() / 10.0),
        "lastRestoreTestAt": test.as_ref().map(|t| t.finished_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "lastRestoreTestStatus": test.as_ref().map(|t| t.status.clone()),
    })
}

/// Sync figures (PLATFORM.md §9.1): PENDING events, FAILED ones of the last 24 h (the runbook's window), devices.
pub async fn sync_json(st: &AppState) -> Value {
    let c = st.dbmon.db().conn();
    let now = st.clock.now();
    let counts = store::sync::counts(c, None, now - chrono::Duration::hours(24)).await;
    let devices = store::identity::all_devices(c).await;
    let head = store::sync::head(c).await;
    match (counts, devices, head) {
        (Ok(n), Ok(devices), Ok(head)) => json!({
            "pending": n.pending, "failed": n.failed, "failedTechnical": n.failed_technical,
            "oldestPendingAgeSeconds": n.oldest_pending.map(|t| (now - t).num_seconds().max(0)),
            "activeDevices": devices.iter().filter(|d| d.is_active).count(),
            "offlineDevices": devices.iter()
                .filter(|d| domain::kpi::device_offline(d.is_active, d.last_sync_at, d.registered_at, now)).count(),
            "feedHead": head,
        }),
        _ => json!({"error": "DATABASE_UNAVAILABLE"}),
    }
}

/// The detailed report of `/api/health/detailed`.
pub async fn detailed_report(st: &AppState) -> Value {
    let c = run_checks(st).await;
    let stats = st.cache.stats();
    let db = st.dbmon.db();
    let (size, idle, max) = db.pool_stats();
    let mut database = c.database_json();
    database["backend"] = json!(db.backend().name());
    database["pool"] = json!({"size": size, "idle": idle, "max": max});
    if c.db_state == DatabaseState::Up {
        database["schemaVersion"] = json!(store::migration::schema_version(db).await.ok());
    }
    let jobs = st.scheduler.views(&st.dbmon).await;
    let backups = backups_json(st).await;
    let sync =
        if c.db_state == DatabaseState::Up { sync_json(st).await } else { json!({"error": "DATABASE_UNAVAILABLE"}) };
    let uptime = st.started.elapsed().as_secs();
    let rss = telemetry::rss_bytes();
    json!({
        "status": c.overall.detailed_word(),
        "timestamp": now_rfc3339(),
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("MANCHENGO_GIT_COMMIT").unwrap_or("unknown"),
        "environment": st.config.app_env.name(),
        "instance": st.config.instance_name,
        "uptime": {"seconds": uptime, "human": rules::uptime_human(uptime)},
        "checks": {"database": database, "cache": c.cache_json()},
        "cache": {
            "hits": stats.hits, "misses": stats.misses, "sets": stats.sets, "invalidations": stats.invalidations,
            "hitRate": rules::hit_rate(stats.hits, stats.misses),
            "hitRateFormatted": rules::hit_rate_formatted(stats.hits, stats.misses),
            "mode": stats.mode.metric_label(),
            "fallbackSince": stats.fallback_since.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        },
        "rateLimit": {
            "backend": st.limiter.backend().await,
            "limited429Total": st.limiter.limited_total(),
            "max": st.config.rate_limit_max,
            "ttlSeconds": st.config.rate_limit_ttl.as_secs(),
            "loginMax": st.config.rate_limit_login_max,
        },
        "sync": sync,
        "jobs": jobs,
        "backups": backups,
        "tls": tls_json(st),
        "memory": {"rssBytes": rss, "rss": rules::memory_human(rss), "limitBytes": telemetry::memory_limit_bytes()},
    })
}

/// The watched certificate (`TLS_CERT_FILE`): its `notAfter` and the whole days left; null when none is configured.
fn tls_json(st: &AppState) -> Value {
    let Some(path) = st.config.tls_cert_file.as_deref() else { return Value::Null };
    match crate::platform::tls::not_after(path) {
        Some(t) => {
            let not_after = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
            json!({
                "notAfter": not_after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "daysLeft": (not_after - st.clock.now()).num_days(),
            })
        }
        None => json!({"notAfter": null, "daysLeft": null, "error": "CERTIFICAT_ILLISIBLE"}),
    }
}

/// Everything an operator needs in one JSON (runbook: `curl -s http://localhost:3000/api/health/detailed | jq .`).
#[utoipa::path(get, path = "/api/health/detailed", tag = "platform", responses(
    (status = 200, description = "Rapport détaillé"), (status = 401, description = "Adresse non autorisée et pas de jeton ADMIN")))]
pub async fn detailed(State(st): State<AppState>, req: axum::extract::Request) -> Response {
    if !diagnostics_allowed(&req, &st.config.health_detailed_allow) {
        return diagnostics_refused().into_response();
    }
    no_store(StatusCode::OK, detailed_report(&st).await)
}

/// Prometheus text format (PLATFORM.md §9.2), from `METRICS_ALLOW` or with an ADMIN token.
pub async fn metrics(State(st): State<AppState>, req: axum::extract::Request) -> Response {
    if !diagnostics_allowed(&req, &st.config.metrics_allow) {
        return diagnostics_refused().into_response();
    }
    // Instance gauges are set at scrape time from this instance's state.
    metrics::gauge!("db_up").set(if st.dbmon.is_up() { 1.0 } else { 0.0 });
    let mode = st.cache.mode().metric_label();
    for m in ["redis", "memory", "fallback"] {
        metrics::gauge!("cache_mode", "mode" => m).set(if m == mode { 1.0 } else { 0.0 });
    }
    let stats = st.cache.stats();
    metrics::counter!("cache_hits_total").absolute(stats.hits);
    metrics::counter!("cache_misses_total").absolute(stats.misses);
    let (size, idle, max) = st.dbmon.db().pool_stats();
    metrics::gauge!("db_pool_connections", "state" => "idle").set(idle as f64);
    metrics::gauge!("db_pool_connections", "state" => "in_use").set(size.saturating_sub(idle) as f64);
    metrics::gauge!("db_pool_connections", "state" => "max").set(max as f64);
    metrics::gauge!("process_resident_memory_bytes").set(telemetry::rss_bytes() as f64);
    if st.dbmon.is_up()
        && let Ok(Some(b)) = store::backups::last_ok(st.dbmon.db(), "BACKUP").await
    {
        metrics::gauge!("backup_last_success_timestamp_seconds").set(b.finished_at.timestamp() as f64);
    }
    if st.dbmon.is_up()
        && let Ok(rows) =
            store::sync::by_status(st.dbmon.db().conn(), st.clock.now() - chrono::Duration::hours(24)).await
    {
        // Every series is written, at 0 when no row has it, so an alert on it never reads a stale value.
        let series = [("PENDING", ""), ("APPLIED", ""), ("ACKED", ""), ("FAILED", "business"), ("FAILED", "technical")];
        for (status, class) in series {
            let n: i64 = rows.iter().filter(|(s, c, _)| s == status && c == class).map(|(_, _, n)| n).sum();
            metrics::gauge!("sync_events", "status" => status, "class" => class).set(n as f64);
        }
    }
    if let Some(t) = st.config.tls_cert_file.as_deref().and_then(crate::platform::tls::not_after) {
        metrics::gauge!("tls_certificate_not_after_seconds").set(t as f64);
    }
    if let Some(limit) = telemetry::memory_limit_bytes() {
        metrics::gauge!("process_memory_limit_bytes").set(limit as f64);
    }
    metrics::gauge!("build_info", "version" => env!("CARGO_PKG_VERSION"),
        "commit" => option_env!("MANCHENGO_GIT_COMMIT").unwrap_or("unknown"))
    .set(1.0);
    let body = telemetry::metrics_handle().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4"), (header::CACHE_CONTROL, "no-store")], body).into_response()
}
