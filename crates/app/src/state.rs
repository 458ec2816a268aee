//! What every handler can reach.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::config::Config;
use crate::platform::cache::Cache;
use crate::platform::dbstate::DbMonitor;
use crate::platform::jobs::{Clock, Scheduler};
use crate::platform::ratelimit::RateLimiter;

/// Keys loaded from the configuration or generated once in the database.
#[derive(Clone)]
pub struct Secrets {
    pub jwt: String,
    pub qr: String,
}

pub struct Inner {
    pub config: Config,
    pub dbmon: Arc<DbMonitor>,
    pub cache: Arc<Cache>,
    pub limiter: Arc<RateLimiter>,
    pub scheduler: Arc<Scheduler>,
    pub started: Instant,
    pub draining: AtomicBool,
    pub secrets: Arc<OnceLock<Secrets>>,
    /// The time every session and audit decision uses (tests move it).
    pub clock: Arc<dyn Clock>,
    /// Declarations of routes added by tests (`server::Options::extra_access`).
    pub extra_access: Vec<(&'static str, &'static str, domain::identity::Access)>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Inner {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}
