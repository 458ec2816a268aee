//! The scheduler: a leased calendar job runs once per slot across two instances; the clock is injected.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use app::platform::jobs::{Job, ManualClock, Schedule};
use chrono::TimeZone;
use domain::platform::schedule::Calendar;

use crate::support::{TestServer, config_for, eventually, on_both};

fn nightly(counter: Arc<AtomicU32>) -> Job {
    Job {
        name: "test-nightly",
        schedule: Schedule::At(Calendar::Daily { hour: 0, minute: 5 }),
        lease_ttl: Duration::from_secs(60),
        leased: true,
        run: Arc::new(move || {
            let c = counter.clone();
            Box::pin(async move {
                c.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(())
            })
        }),
    }
}

#[tokio::test]
async fn a_leased_job_runs_once_per_slot_across_two_instances() {
    on_both(|t| async move {
        // 2025-03-15 00:06 in Algiers: the night's slot is due.
        let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2025, 3, 14, 23, 6, 0).unwrap());
        let runs = Arc::new(AtomicU32::new(0));
        let mut servers = Vec::new();
        for name in ["backend", "web"] {
            let cfg = config_for(&t.url, t.dir.path(), &[("INSTANCE_NAME", name)]);
            let opts = app::server::Options {
                clock: clock.clone(),
                job_tick: Duration::from_millis(50),
                extra_jobs: vec![nightly(runs.clone())],
                extra_routes: None,
                extra_access: Vec::new(),
                scheduled_backup: true,
            };
            servers.push(TestServer::start_with(cfg, opts).await);
        }
        eventually(Duration::from_secs(10), "the nightly slot ran", || async { runs.load(Ordering::SeqCst) >= 1 })
            .await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{:?}: once across both instances", t.kind);

        // "Tomorrow" without waiting: the next slot runs once more.
        clock.advance(chrono::Duration::days(1));
        eventually(Duration::from_secs(10), "the next slot ran", || async { runs.load(Ordering::SeqCst) >= 2 }).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);

        let (_, detailed) = crate::support::get_json(&servers[0].url("/api/health/detailed")).await;
        let job = detailed["jobs"].as_array().unwrap().iter().find(|j| j["name"] == "test-nightly").unwrap().clone();
        assert_eq!(job["lastStatus"], "ok");
        assert_eq!(job["nextRunAt"], "2025-03-16T23:05:00Z");
        for s in servers {
            s.stop().await;
        }
    })
    .await;
}

/// The jobs view is cached for 10 s but a recorded run invalidates it (after COMMIT), so it never shows a stale run.
#[tokio::test]
async fn a_recorded_run_invalidates_the_cached_jobs_view() {
    let t = crate::support::TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2025, 3, 14, 23, 6, 0).unwrap());
    let runs = Arc::new(AtomicU32::new(0));
    let opts = app::server::Options {
        clock: clock.clone(),
        job_tick: Duration::from_millis(50),
        extra_jobs: vec![nightly(runs.clone())],
        extra_routes: None,
        extra_access: Vec::new(),
        scheduled_backup: true,
    };
    let srv = TestServer::start_with(config_for(&t.url, t.dir.path(), &[]), opts).await;
    let last_run = || async {
        let (_, body) = crate::support::get_json(&srv.url("/api/system/jobs")).await;
        // The job's row may not be in a view cached before it was registered: absent reads as not run yet.
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == "test-nightly")
            .map(|j| j["lastRunAt"].clone())
            .unwrap_or(serde_json::Value::Null)
    };
    eventually(Duration::from_secs(10), "first run recorded", || async { last_run().await == "2025-03-14T23:06:00Z" })
        .await;
    let hits_before = srv.state.cache.stats().hits;
    assert_eq!(last_run().await, "2025-03-14T23:06:00Z");
    assert!(srv.state.cache.stats().hits > hits_before, "the view is served from the cache");

    clock.advance(chrono::Duration::days(1));
    eventually(Duration::from_secs(10), "second run", || async { runs.load(Ordering::SeqCst) >= 2 }).await;
    // Well within the 10 s TTL: only the invalidation can make the new run visible.
    eventually(Duration::from_secs(2), "fresh view", || async { last_run().await == "2025-03-15T23:06:00Z" }).await;
    srv.stop().await;
}
