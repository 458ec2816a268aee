//! Building the application and serving it with a graceful shutdown (PLATFORM.md §10.2).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::platform::cache::Cache;
use crate::platform::dbstate::{Bootstrap, DbMonitor};
use crate::platform::jobs::{Clock, Job, Schedule, Scheduler, SystemClock};
use crate::platform::ratelimit::RateLimiter;
use crate::platform::redis_link::with_db;
use crate::state::{AppState, Inner, Secrets};

/// Options tests change; `serve` uses the defaults.
pub struct Options {
    pub clock: Arc<dyn Clock>,
    /// How often the scheduler looks at its jobs.
    pub job_tick: Duration,
    /// Extra jobs (tests register their own to prove leases).
    pub extra_jobs: Vec<Job>,
    /// Extra routes behind the whole pipeline (tests add a slow route to prove the drain).
    pub extra_routes: Option<Router<AppState>>,
    /// Role declarations of the extra routes: like every route, they are refused unless declared.
    pub extra_access: Vec<(&'static str, &'static str, domain::identity::Access)>,
    /// The embedded database's own backup job (PLATFORM.md §8). Tests that drive `manchengo backup` by hand turn it
    /// off: its first run at start would race theirs for the same `latest` link.
    pub scheduled_backup: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            clock: Arc::new(SystemClock),
            job_tick: Duration::from_secs(1),
            extra_jobs: Vec::new(),
            extra_routes: None,
            extra_access: Vec::new(),
            scheduled_backup: true,
        }
    }
}

/// A leased calendar job working on the database at the clock's `now`; its error text is the job's last error.
fn db_job<F, Fut, E>(
    name: &'static str,
    calendar: domain::platform::schedule::Calendar,
    lease_secs: u64,
    db: &store::Db,
    clock: &Arc<dyn Clock>,
    work: F,
) -> Job
where
    F: Fn(store::Db, chrono::DateTime<chrono::Utc>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let (db, clock, work) = (db.clone(), clock.clone(), Arc::new(work));
    Job {
        name,
        schedule: Schedule::At(calendar),
        lease_ttl: Duration::from_secs(lease_secs),
        leased: true,
        run: Arc::new(move || {
            let fut = work(db.clone(), clock.now());
            Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
        }),
    }
}

pub fn db_options(config: &Config, statement_timeout: Duration) -> store::DbOptions {
    store::DbOptions {
        url: config.database_url.clone(),
        pool_max: config.db_pool_max,
        application_name: format!("manchengo-{}", config.instance_name),
        statement_timeout,
        acquire_timeout: Duration::from_secs(2),
        busy_timeout: Duration::from_secs(5),
    }
}

/// Loads configured secrets or generates them once in the database.
async fn load_secrets(db: &store::Db, config: &Config) -> Result<Secrets, store::StoreError> {
    let jwt = match &config.jwt_secret {
        Some(s) => s.clone(),
        None => store::secrets::get_or_create(db, "JWT_SECRET").await?,
    };
    let qr = match &config.qr_secret {
        Some(s) => s.clone(),
        None => store::secrets::get_or_create(db, "QR_SECRET").await?,
    };
    Ok(Secrets { jwt, qr })
}

/// While no user exists, prints the one-time token the first-run screen asks for (DOMAIN.md §20). It lives in the
/// database so that every instance prints the same one, and is deleted when the first administrator is created.
async fn announce_setup_token(db: &store::Db, pretty_logs: bool) -> Result<(), store::StoreError> {
    if store::identity::count_users(db).await? > 0 {
        return Ok(());
    }
    let token = store::secrets::get_or_create(db, store::secrets::SETUP_TOKEN).await?;
    // In a JSON log stream the token is a field of one log line (`… | grep setup_token`); at a terminal it is also
    // printed as a block a person can read.
    tracing::warn!(setup_token = %token, "no user yet: create the first administrator at /installation with this token");
    if !pretty_logs {
        return Ok(());
    }
    eprintln!(
        "\nAucun utilisateur : créez l'administrateur sur /installation avec le jeton d'installation\n\n    {token}\n\n\
         ou en ligne de commande : manchengo user create-admin --email …\n"
    );
    Ok(())
}

/// A built application: its router and the background work to start next to it.
pub struct App {
    pub state: AppState,
    pub router: Router,
    stop: watch::Sender<bool>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl App {
    pub async fn build(config: Config, options: Options) -> Result<App, String> {
        // The recorder must exist before the first counter is touched.
        crate::platform::telemetry::metrics_handle();
        let db = store::Db::open(&db_options(&config, Duration::from_secs(15)))
            .await
            .map_err(|e| format!("base de données / database: {e}"))?;
        let dbmon = DbMonitor::new(db);
        let cache = Cache::new(
            &config.instance_name,
            config.redis_url.as_deref(),
            config.cache_max_entries,
            config.cache_max_bytes,
        )
        .await?;
        let rl_url = config.redis_url.as_deref().map(|u| with_db(u, config.redis_rate_limit_db));
        let limiter = Arc::new(RateLimiter::new(rl_url.as_deref())?);
        limiter.probe().await;

        let mut jobs = vec![{
            let limiter = limiter.clone();
            Job {
                name: "ratelimit-sweep",
                schedule: Schedule::Every(Duration::from_secs(60)),
                lease_ttl: Duration::from_secs(30),
                leased: false,
                run: Arc::new(move || {
                    let limiter = limiter.clone();
                    Box::pin(async move {
                        limiter.housekeeping().await;
                        Ok(())
                    })
                }),
            }
        }];
        use domain::platform::schedule::Calendar::{Daily, EveryHours, Hourly};
        let (db, clock) = (dbmon.db(), &options.clock);
        // DOMAIN.md §5.6: every day at 00:05 Algiers, lots past their DLC become BLOCKED(EXPIRED). A missed slot
        // (server down at 00:05) runs at start-up: the scheduler catches up the latest slot.
        jobs.push(db_job("stock-expiry", Daily { hour: 0, minute: 5 }, 300, db, clock, |db, now| async move {
            let blocked = db.write(|tx| Box::pin(async move { store::stock::expire_lots(&**tx, now).await })).await?;
            if !blocked.is_empty() {
                tracing::warn!(lots = blocked.len(), "expired lots blocked");
            }
            Ok::<_, store::StoreError>(())
        }));
        // DOMAIN.md §5.6: every day at 06:00 Algiers, J-7 / J-3 / J-1 alerts.
        jobs.push(db_job("stock-pre-expiry", Daily { hour: 6, minute: 0 }, 300, db, clock, |db, now| async move {
            db.write(|tx| Box::pin(async move { store::stock::pre_expiry_alerts(&**tx, now).await })).await?;
            Ok::<_, store::StoreError>(())
        }));
        // DOMAIN.md §13: counts still waiting 48 h after their declaration expire, every hour.
        jobs.push(db_job("inventory-expiry", Hourly { minute: 15 }, 120, db, clock, |db, now| async move {
            db.write(|tx| Box::pin(async move { store::inventory::expire(&**tx, now).await })).await?;
            Ok::<_, store::StoreError>(())
        }));
        // PLATFORM.md §8 `appro-alerts`, hourly at :00: the MP alerts of the supply cockpit (DOMAIN.md §7.2, §7.3)
        // and late purchase orders (§6.4), in one transaction.
        jobs.push(db_job("appro-alerts", Hourly { minute: 0 }, 600, db, clock, |db, now| async move {
            db.write(|tx| {
                Box::pin(async move {
                    store::appro::scan(&**tx, now).await?;
                    store::purchase::late_order_alerts(&**tx, now).await
                })
            })
            .await?;
            Ok::<_, store::StoreError>(())
        }));
        if db.backend() == store::Backend::Sqlite && options.scheduled_backup {
            // PLATFORM.md §8, §12.1: embedded mode backs itself up every BACKUP_INTERVAL_HOURS (slots from 00:00
            // Algiers); with PostgreSQL the backup container does it.
            let config = config.clone();
            let every = EveryHours { hours: config.backup_interval_hours.clamp(1, 24) as u32 };
            jobs.push(db_job("backup", every, 3600, db, clock, move |db, now| {
                let config = config.clone();
                async move { crate::ops::backup::backup(&config, &db, None, now).await.map(|_| ()) }
            }));
        }
        // PLATFORM.md §8: daily 03:30, idempotency keys older than 24 h go.
        jobs.push(db_job("retention", Daily { hour: 3, minute: 30 }, 3600, db, clock, |db, now| async move {
            store::idempotency::purge(&db, now).await?;
            // Sync: ACKED events after a year, the feed after 90 days (devices behind it bootstrap again).
            db.write(|tx| {
                Box::pin(async move {
                    store::sync::purge_acked(&**tx, now - chrono::Duration::days(365)).await?;
                    store::sync::purge_feed(&**tx, now - chrono::Duration::days(90)).await
                })
            })
            .await?;
            Ok::<_, store::StoreError>(())
        }));
        // DOMAIN.md §20: `manchengo check` every night at 02:00 Algiers; a failure raises INTEGRITE_ECHEC and shows as
        // this job's last error in detailed health.
        jobs.push(db_job("integrity-check", Daily { hour: 2, minute: 0 }, 1800, db, clock, |db, now| async move {
            let report = store::integrity::run(&db, None, false).await.map_err(|e| e.to_string())?;
            if report.clean() {
                return Ok(());
            }
            store::integrity::raise_failure(&db, &report, now).await.map_err(|e| e.to_string())?;
            let findings = report.problems();
            tracing::error!(findings = ?findings, "integrity check failed");
            Err(format!("INTEGRITE_ECHEC : {}", findings.join(" ; ")))
        }));
        // PLATFORM.md §7.3: every 2 s, leased (a dead holder is replaced within 8 s), the due sync events are applied
        // through the same path as a push; it needs the application state, set once built.
        let app_for_worker: Arc<OnceLock<AppState>> = Arc::new(OnceLock::new());
        {
            let app = app_for_worker.clone();
            jobs.push(Job {
                name: "sync-worker",
                schedule: Schedule::Every(Duration::from_secs(2)),
                lease_ttl: Duration::from_secs(6),
                leased: true,
                run: Arc::new(move || {
                    let app = app.clone();
                    Box::pin(async move {
                        match app.get() {
                            Some(st) => crate::sync::work(st).await.map(|_| ()),
                            None => Ok(()),
                        }
                    })
                }),
            });
        }
        jobs.extend(options.extra_jobs);
        let scheduler =
            Scheduler::new(jobs, options.clock.clone(), &config.instance_name, options.job_tick, Some(cache.clone()));
        let secrets = Arc::new(OnceLock::new());
        let state = AppState(Arc::new(Inner {
            config,
            dbmon: dbmon.clone(),
            cache: cache.clone(),
            limiter: limiter.clone(),
            scheduler: scheduler.clone(),
            started: Instant::now(),
            draining: AtomicBool::new(false),
            secrets: secrets.clone(),
            clock: options.clock.clone(),
            extra_access: options.extra_access,
        }));

        let _ = app_for_worker.set(state.clone());
        let (stop, stop_rx) = watch::channel(false);
        let bootstrap: Bootstrap = {
            let config = state.config.clone();
            let secrets = secrets.clone();
            let cache = cache.clone();
            Box::new(move |db: store::Db| {
                let config = config.clone();
                let secrets = secrets.clone();
                let cache = cache.clone();
                Box::pin(async move {
                    if config.migrate_on_start {
                        let applied = store::migration::migrate(&db).await?;
                        if !applied.is_empty() {
                            tracing::info!(migrations = ?applied, "migrations applied");
                        }
                    }
                    let s = load_secrets(&db, &config).await?;
                    let _ = secrets.set(s);
                    announce_setup_token(&db, config.log_format == crate::config::LogFormat::Pretty).await?;
                    cache.invalidate_prefix(crate::platform::jobs::JOBS_PREFIX).await;
                    Ok(())
                })
            })
        };
        let mut background = vec![tokio::spawn(dbmon.clone().run(bootstrap, stop_rx.clone()))];
        background.push(tokio::spawn(cache.clone().run(stop_rx.clone())));
        background.push(tokio::spawn({
            let limiter = limiter.clone();
            let stop = stop_rx.clone();
            async move { crate::platform::every(Duration::from_secs(5), stop, || limiter.probe()).await }
        }));
        background.push(tokio::spawn(scheduler.clone().run(dbmon.clone(), stop_rx.clone())));

        let router = router(state.clone(), options.extra_routes);
        Ok(App { state, router, stop, background })
    }

    /// Serves until `shutdown` resolves, then drains: in-flight requests get `SHUTDOWN_TIMEOUT` to finish, jobs stop
    /// at a safe point and release their leases, pools close.
    pub async fn serve(self, listener: TcpListener, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        let App { state, router, stop, background } = self;
        // Our own accept loop (rather than `axum::serve`) so that the connections still open when the drain budget
        // runs out are really aborted: their tasks live in this JoinSet, not detached.
        let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut connections = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: wait a little rather than spin.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let router = router.clone();
                    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                        tower::ServiceExt::oneshot(router.clone(), req)
                    });
                    let conn = builder
                        .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service)
                        .into_owned();
                    let conn = graceful.watch(conn);
                    connections.spawn(async move {
                        let _ = conn.await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                _ = &mut shutdown => break,
            }
        }
        drop(listener);
        state.draining.store(true, Ordering::Release);
        tracing::info!(open_connections = connections.len(), "shutdown requested: draining");
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(state.config.shutdown_timeout) => {
                tracing::warn!(aborted = connections.len(), "drain timeout reached: aborting remaining requests");
            }
        }
        connections.shutdown().await;
        let _ = stop.send(true);
        for t in background {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        state.dbmon.db().clone().close().await;
        tracing::info!("stopped");
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState, extra: Option<Router<AppState>>) -> Router {
    let (api, _doc) = crate::api::router();
    let body_limit = state.config.body_limit;
    // Swagger UI (development by default, `DOCS_ENABLED` in production) reads the same generated document.
    let docs: Router<AppState> = if state.config.docs_enabled {
        utoipa_swagger_ui::SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::new(["/api/openapi.json"])).into()
    } else {
        Router::new()
    };
    Router::new()
        .merge(api)
        .merge(docs)
        .merge(extra.unwrap_or_default())
        .route("/metrics", axum::routing::get(crate::api::health::metrics))
        .merge(crate::web::router())
        .fallback(crate::api::fallback)
        .method_not_allowed_fallback(crate::api::method_not_allowed)
        .route_layer(from_fn_with_state(state.clone(), crate::auth::guard))
        .route_layer(from_fn(crate::platform::pipeline::record_route))
        .layer(DefaultBodyLimit::max(body_limit))
        // The extractors keep `BODY_LIMIT`; only the sync push reads up to `SYNC_BODY_LIMIT` (PLATFORM.md §2.2).
        .layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit.max(state.config.sync_body_limit)))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(from_fn_with_state(state.clone(), crate::platform::pipeline::pipeline))
        .with_state(state)
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
