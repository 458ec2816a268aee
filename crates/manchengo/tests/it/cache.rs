//! The cache in both modes (memory, Redis) and the runtime fallback between them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use app::platform::cache::{Cache, CacheMode};

use crate::support::{PrivateRedis, eventually};

async fn counted(calls: &AtomicU32, value: u32) -> Result<u32, String> {
    calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(value)
}

#[tokio::test]
async fn memory_mode_loads_once_for_concurrent_misses_and_counts_hits() {
    let cache = Cache::new("a", None, 1000, 1 << 20).await.unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (cache, calls) = (cache.clone(), calls.clone());
        tasks.push(tokio::spawn(async move {
            cache.get_or_load("stock:pf", Duration::from_secs(30), || counted(&calls, 7)).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(7));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "single flight");
    let s = cache.stats();
    assert_eq!((s.misses, s.hits, s.sets), (1, 9, 1));
    assert_eq!(s.mode, CacheMode::Memory);

    cache.invalidate_prefix("stock:").await;
    assert_eq!(cache.get_or_load("stock:pf", Duration::from_secs(30), || counted(&calls, 8)).await, Ok(8));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "invalidated by prefix");
    // Another prefix is untouched.
    cache.get_or_load("ref:clients", Duration::from_secs(30), || counted(&calls, 1)).await.unwrap();
    cache.invalidate_prefix("stock:").await;
    cache.get_or_load("ref:clients", Duration::from_secs(30), || counted(&calls, 2)).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(cache.stats().invalidations, 2);
}

#[tokio::test]
async fn a_loader_error_is_returned_and_not_cached() {
    let cache = Cache::new("a", None, 1000, 1 << 20).await.unwrap();
    let r: Result<u32, String> =
        cache.get_or_load("kpi:x", Duration::from_secs(30), || async { Err("panne".to_string()) }).await;
    assert_eq!(r, Err("panne".to_string()));
    let r: Result<u32, String> = cache.get_or_load("kpi:x", Duration::from_secs(30), || async { Ok(3) }).await;
    assert_eq!(r, Ok(3));
}

#[tokio::test]
async fn redis_mode_shares_values_and_invalidations_across_instances() {
    let redis = PrivateRedis::start();
    let a = Cache::new("backend", Some(&redis.url()), 1000, 1 << 20).await.unwrap();
    let b = Cache::new("web", Some(&redis.url()), 1000, 1 << 20).await.unwrap();
    assert_eq!((a.mode(), b.mode()), (CacheMode::Redis, CacheMode::Redis));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(a.clone().run(stop.clone()));
    tokio::spawn(b.clone().run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await; // subscribers connected

    let calls = AtomicU32::new(0);
    assert_eq!(a.get_or_load("stock:lots", Duration::from_secs(60), || counted(&calls, 42)).await, Ok(42));
    assert_eq!(b.get_or_load("stock:lots", Duration::from_secs(60), || counted(&calls, 99)).await, Ok(42));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "b read a's value from Redis");
    assert_eq!(b.stats().hits, 1);

    a.invalidate_prefix("stock:").await;
    // b's near-cache copy is dropped by the pub/sub message, and Redis no longer has the key.
    eventually(Duration::from_secs(3), "b sees the invalidation", || async {
        b.get_or_load("stock:lots", Duration::from_secs(60), || counted(&calls, 43)).await == Ok(43)
    })
    .await;
    let _ = stop_tx.send(true);
}

#[tokio::test]
async fn redis_dying_switches_to_memory_within_the_request_and_recovery_replays_invalidations() {
    let mut redis = PrivateRedis::start();
    let cache = Cache::new("backend", Some(&redis.url()), 1000, 1 << 20).await.unwrap();
    let calls = AtomicU32::new(0);
    cache.get_or_load("ref:clients", Duration::from_secs(300), || counted(&calls, 1)).await.unwrap();

    redis.kill();
    // The very next operation that needs Redis fails over and is still answered.
    let r = cache.get_or_load("kpi:today", Duration::from_secs(300), || counted(&calls, 5)).await;
    assert_eq!(r, Ok(5));
    assert_eq!(cache.mode(), CacheMode::Fallback);
    assert!(cache.stats().fallback_since.is_some());
    let check = cache.check().await;
    assert_eq!((check.status, check.mode), ("down", "memory"));
    assert!(check.error.is_some());
    // An invalidation during the outage is journaled.
    cache.invalidate_prefix("ref:").await;

    redis.restart();
    // Redis is empty after a restart, so plant a stale value that the journal must delete.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET").arg("mc:v1:ref:clients").arg("stale").query_async(&mut conn).await.unwrap();
    cache.probe().await;
    assert_eq!(cache.mode(), CacheMode::Redis);
    assert_eq!(cache.stats().fallback_since, None);
    let exists: i64 = redis::cmd("EXISTS").arg("mc:v1:ref:clients").query_async(&mut conn).await.unwrap();
    assert_eq!(exists, 0, "journaled invalidation replayed on recovery");
}
