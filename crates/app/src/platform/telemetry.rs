//! Logs (JSON in production, pretty in development), metrics recorder, optional Sentry (PLATFORM.md §9).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, LogFormat};

/// Installs the global subscriber once (tests build several servers in one process).
pub fn init_logging(config: &Config) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
        let fmt = match config.log_format {
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .boxed(),
            LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().boxed(),
        };
        #[allow(deprecated)] // the replacement layers are not in the no-default-features build
        let sentry = config.sentry_dsn.as_ref().map(|_| sentry::integrations::tracing::layer());
        let _ = tracing_subscriber::registry().with(filter).with(fmt).with(sentry).try_init();
    });
}

/// Starts Sentry when `SENTRY_DSN` is set; the guard flushes on drop (shutdown).
pub fn init_sentry(config: &Config) -> Option<sentry::ClientInitGuard> {
    let dsn = config.sentry_dsn.as_ref()?;
    let guard = sentry::init((
        dsn.as_str(),
        sentry::ClientOptions::new()
            .release(format!("manchengo@{}", env!("CARGO_PKG_VERSION")))
            .environment(config.app_env.name())
            .server_name("manchengo-backend")
            .traces_sample_rate(config.sentry_traces_sample_rate)
            .send_default_pii(false),
    ));
    sentry::configure_scope(|scope| scope.set_tag("instance", &config.instance_name));
    Some(guard)
}

/// The process-wide Prometheus recorder (the `metrics` facade is global: one recorder per process).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("http_request_duration_seconds".into()), &buckets)
            .expect("static bucket list is not empty")
            .set_buckets_for_metric(Matcher::Full("sync_push_duration_seconds".into()), &buckets)
            .expect("static bucket list is not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // A recorder may already be installed by another component of the process; ours still renders its own.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Resident memory of this process in bytes (from /proc), 0 where unknown.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// The cgroup memory limit, `None` when unlimited or unknown.
pub fn memory_limit_bytes() -> Option<u64> {
    std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|s| s.trim().parse::<u64>().ok())
}
