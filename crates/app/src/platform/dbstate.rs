//! The database state machine (PLATFORM.md §10.1): the server starts without its database, answers 503 at once while
//! it is down, and recovers by itself when it returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use store::{Db, StoreError};
use tokio::sync::Notify;

/// Work to do once, the first time the database answers: migrations, secrets.
pub type Bootstrap = Box<dyn Fn(Db) -> futures_util::future::BoxFuture<'static, Result<(), StoreError>> + Send + Sync>;

pub struct DbMonitor {
    db: Db,
    up: AtomicBool,
    bootstrapped: AtomicBool,
    wake: Notify,
}

impl DbMonitor {
    pub fn new(db: Db) -> Arc<DbMonitor> {
        Arc::new(DbMonitor {
            db,
            up: AtomicBool::new(false),
            bootstrapped: AtomicBool::new(false),
            wake: Notify::new(),
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Called when a request met a connection-class error: the next requests fail fast instead of waiting.
    pub fn report(&self, err: &StoreError) {
        if matches!(err, StoreError::Unavailable(_)) {
            self.mark_down(&err.to_string());
        }
    }

    fn mark_down(&self, reason: &str) {
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(reason = %short(reason), "database_down");
            metrics::gauge!("db_up").set(0.0);
            self.wake.notify_one();
        }
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            tracing::info!("database_up");
            metrics::gauge!("db_up").set(1.0);
        }
    }

    /// Probes `SELECT 1` every second while down and every 5 s while up; runs `bootstrap` once before the first up.
    pub async fn run(self: Arc<Self>, bootstrap: Bootstrap, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let ok = match self.db.ping(Duration::from_secs(1)).await {
                Ok(()) if self.bootstrapped.load(Ordering::Acquire) => true,
                Ok(()) => match bootstrap(self.db.clone()).await {
                    Ok(()) => {
                        self.bootstrapped.store(true, Ordering::Release);
                        backoff = Duration::from_secs(1);
                        true
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "database bootstrap failed; retrying");
                        // Bootstrap failures (a failing migration) back off 1 → 2 → 4 … 15 s.
                        backoff = (backoff * 2).min(Duration::from_secs(15));
                        false
                    }
                },
                Err(e) => {
                    self.mark_down(&e.to_string());
                    false
                }
            };
            if ok {
                self.mark_up();
            }
            let wait = if ok {
                Duration::from_secs(5)
            } else if self.bootstrapped.load(Ordering::Acquire) {
                Duration::from_secs(1)
            } else {
                backoff
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }
}

fn short(reason: &str) -> String {
    reason.chars().take(200).collect()
}
