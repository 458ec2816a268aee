//! The in-process job scheduler (PLATFORM.md §8). Leased jobs run once across instances through `job_leases`;
//! calendar jobs run once per Algiers slot, a missed slot runs at the next start, a failed slot is retried every
//! 10 minutes. The clock is injected so tests can be "tomorrow" without waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use domain::platform::schedule::{Calendar, latest_slot, next_slot};
use futures_util::future::BoxFuture;

use super::cache::Cache;
use super::dbstate::DbMonitor;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests move by hand.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Arc<ManualClock> {
        Arc::new(ManualClock(Mutex::new(at)))
    }
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Schedule {
    Every(Duration),
    At(Calendar),
}

pub type JobFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

#[derive(Clone)]
pub struct Job {
    pub name: &'static str,
    pub schedule: Schedule,
    pub lease_ttl: Duration,
    /// Runs once across instances (lease in the database) rather than on every instance.
    pub leased: bool,
    pub run: JobFn,
}

/// What health shows of a job.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub name: String,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub holder: Option<String>,
}

pub struct Scheduler {
    jobs: Vec<Job>,
    clock: Arc<dyn Clock>,
    holder: String,
    tick: Duration,
    local: Mutex<HashMap<&'static str, JobView>>,
    cache: Option<Arc<Cache>>,
}

/// Cache prefix of the jobs view (`GET /api/system/jobs`), invalidated after every recorded run.
pub const JOBS_PREFIX: &str = "jobs:";

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_else(Utc::now)
}

impl Scheduler {
    /// `cache` receives the invalidation of the jobs view after every recorded run.
    pub fn new(
        jobs: Vec<Job>,
        clock: Arc<dyn Clock>,
        holder: &str,
        tick: Duration,
        cache: Option<Arc<Cache>>,
    ) -> Arc<Scheduler> {
        let local = jobs.iter().map(|j| (j.name, JobView { name: j.name.to_string(), ..Default::default() })).collect();
        Arc::new(Scheduler { jobs, clock, holder: holder.to_string(), tick, local: Mutex::new(local), cache })
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn set_local(&self, name: &'static str, f: impl FnOnce(&mut JobView)) {
        let mut map = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = map.get_mut(name) {
            f(v);
        }
    }

    /// Jobs as health shows them: the lease table for leased jobs (whoever ran them), this instance's memory for the
    /// others.
    pub async fn views(&self, dbmon: &DbMonitor) -> Vec<JobView> {
        let leases = if dbmon.is_up() { store::jobs::list(dbmon.db()).await.unwrap_or_default() } else { Vec::new() };
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.jobs
            .iter()
            .map(|j| match leases.iter().find(|l| l.name == j.name).filter(|_| j.leased) {
                Some(l) => JobView {
                    name: l.name.clone(),
                    last_run_at: l.last_run_at,
                    last_status: l.last_status.clone(),
                    last_error: l.last_error.clone(),
                    next_run_at: l.next_run_at,
                    holder: l.holder.clone(),
                },
                None => local.get(j.name).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Runs every job until `stop` flips, then releases this instance's leases.
    pub async fn run(self: Arc<Self>, dbmon: Arc<DbMonitor>, stop: tokio::sync::watch::Receiver<bool>) {
        let tasks: Vec<_> = self
            .jobs
            .iter()
            .cloned()
            .map(|job| {
                let me = self.clone();
                let dbmon = dbmon.clone();
                let stop = stop.clone();
                tokio::spawn(async move { me.drive(job, dbmon, stop).await })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        if dbmon.is_up() {
            let _ = store::jobs::release_all(dbmon.db(), &self.holder).await;
        }
    }

    async fn drive(&self, job: Job, dbmon: Arc<DbMonitor>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut next_due = self.clock.now();
        let mut done_slot: Option<String> = None;
        let mut registered = false;
        loop {
            let now = self.clock.now();
            let (slot, next_run) = match job.schedule {
                Schedule::Every(d) => (None, now + chrono::Duration::from_std(d).unwrap_or_default()),
                Schedule::At(cal) => (Some(latest_slot(cal, now.timestamp()).1), at(next_slot(cal, now.timestamp()))),
            };
            let due = now >= next_due && (slot.is_none() || slot != done_slot);
            if job.leased && dbmon.is_up() && !registered {
                registered = store::jobs::register(dbmon.db(), job.name, next_run).await.is_ok();
            }
            if due && (!job.leased || dbmon.is_up()) {
                let acquired = if job.leased {
                    let ttl = chrono::Duration::from_std(job.lease_ttl).unwrap_or_default();
                    match store::jobs::try_acquire(dbmon.db(), job.name, &self.holder, now, ttl, slot.as_deref()).await
                    {
                        Ok(true) => true,
                        Ok(false) => {
                            // Someone else holds it or the slot already ran: look again in 10 s.
                            next_due = now + chrono::Duration::seconds(10);
                            if let (Some(s), Ok(rows)) = (&slot, store::jobs::list(dbmon.db()).await)
                                && rows.iter().any(|r| r.name == job.name && r.last_run_key.as_ref() == Some(s))
                            {
                                done_slot = slot.clone();
                            }
                            false
                        }
                        Err(e) => {
                            dbmon.report(&e);
                            next_due = now + chrono::Duration::seconds(10);
                            false
                        }
                    }
                } else {
                    true
                };
                if acquired {
                    let ok = self.run_once(&job, &dbmon, slot.clone(), next_run).await;
                    match (ok, &job.schedule) {
                        (true, _) => {
                            done_slot = slot.clone();
                            next_due = next_run;
                        }
                        (false, Schedule::At(_)) => next_due = self.clock.now() + chrono::Duration::minutes(10),
                        (false, Schedule::Every(_)) => next_due = next_run,
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.tick) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn run_once(&self, job: &Job, dbmon: &DbMonitor, slot: Option<String>, next_run: DateTime<Utc>) -> bool {
        let started = self.clock.now();
        self.set_local(job.name, |v| v.holder = Some(self.holder.clone()));
        let work = (job.run)();
        let result = if job.leased {
            // Renew the lease every ttl/3 while the work runs.
            let renew_every = (job.lease_ttl / 3).max(Duration::from_millis(100));
            tokio::pin!(work);
            loop {
                tokio::select! {
                    r = &mut work => break r,
                    _ = tokio::time::sleep(renew_every) => {
                        let until = self.clock.now() + chrono::Duration::from_std(job.lease_ttl).unwrap_or_default();
                        let _ = store::jobs::renew(dbmon.db(), job.name, &self.holder, until).await;
                    }
                }
            }
        } else {
            work.await
        };
        let status = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!("job_runs_total", "job" => job.name, "status" => status).increment(1);
        if let Err(e) = &result {
            tracing::error!(job = job.name, error = %e, "job failed");
        }
        let finished = self.clock.now();
        self.set_local(job.name, |v| {
            v.last_run_at = Some(started);
            v.last_status = Some(status.to_string());
            v.last_error = result.as_ref().err().cloned();
            v.next_run_at = Some(next_run);
            v.holder = None;
        });
        if job.leased {
            let outcome = store::jobs::RunOutcome {
                status,
                error: result.as_ref().err().cloned(),
                run_key: if result.is_ok() { slot } else { None },
                next_run_at: next_run,
            };
            match store::jobs::finish(dbmon.db(), job.name, &self.holder, finished, &outcome).await {
                // After COMMIT, as every invalidation (PLATFORM.md §6).
                Ok(()) => {
                    if let Some(cache) = &self.cache {
                        cache.invalidate_prefix(JOBS_PREFIX).await;
                    }
                }
                Err(e) => dbmon.report(&e),
            }
        }
        result.is_ok()
    }
}
