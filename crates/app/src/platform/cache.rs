//! The cache (PLATFORM.md §6): memory and Redis behind one interface. When Redis fails at runtime the instance
//! switches to its memory store within the same request, logs once, re-probes every 5 s and switches back; no
//! request ever fails because of the cache.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use moka::Expiry;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::redis_link::RedisLink;

const KEY_PREFIX: &str = "mc:v1:";
const CHANNEL: &str = "mc:invalidate";
/// Near-cache copies of Redis values live at most this long (bounds the cost of a lost pub/sub message).
const NEAR_TTL: Duration = Duration::from_secs(10);
const JOURNAL_MAX: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// No Redis configured.
    Memory,
    Redis,
    /// Redis configured but failing: served from memory.
    Fallback,
}

impl CacheMode {
    pub fn metric_label(self) -> &'static str {
        match self {
            CacheMode::Memory => "memory",
            CacheMode::Redis => "redis",
            CacheMode::Fallback => "fallback",
        }
    }
}

#[derive(Clone)]
struct Entry {
    bytes: Arc<Vec<u8>>,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, value: &Entry, _now: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

struct State {
    mode: CacheMode,
    fallback_since: Option<DateTime<Utc>>,
    fallback_started: Option<Instant>,
    last_error: Option<&'static str>,
    switching_back: bool,
    journal: Vec<String>,
    journal_overflow: bool,
}

pub struct Cache {
    instance: String,
    redis: Option<RedisLink>,
    local: moka::future::Cache<String, Entry>,
    state: Mutex<State>,
    hits: AtomicU64,
    misses: AtomicU64,
    sets: AtomicU64,
    invalidations: AtomicU64,
}

/// What readiness reports about the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheCheck {
    pub status: &'static str,
    pub mode: &'static str,
    pub response_time_ms: u64,
    pub error: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub sets: u64,
    pub invalidations: u64,
    pub mode: CacheMode,
    pub fallback_since: Option<DateTime<Utc>>,
}

impl Cache {
    /// Builds the cache; with a Redis URL it tries to connect once (250 ms) and otherwise starts in fallback — Redis
    /// down at start is the same case as Redis dying later.
    pub async fn new(
        instance: &str,
        redis_url: Option<&str>,
        max_entries: u64,
        max_bytes: u64,
    ) -> Result<Arc<Cache>, String> {
        let redis = redis_url.map(RedisLink::new).transpose()?;
        // One capacity in moka: weigh each entry at least max_bytes/max_entries so both bounds hold.
        let floor = (max_bytes / max_entries.max(1)).max(1);
        let local = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(move |k: &String, v: &Entry| {
                let w = (k.len() + v.bytes.len()) as u64;
                w.max(floor).min(u32::MAX as u64) as u32
            })
            .expire_after(PerEntryTtl)
            .support_invalidation_closures()
            .build();
        let mut state = State {
            mode: CacheMode::Memory,
            fallback_since: None,
            fallback_started: None,
            last_error: None,
            switching_back: false,
            journal: Vec::new(),
            journal_overflow: false,
        };
        if let Some(link) = &redis {
            match link.connect().await {
                Ok(_) => state.mode = CacheMode::Redis,
                Err(class) => {
                    tracing::warn!(error_class = class, "cache_fallback");
                    state.mode = CacheMode::Fallback;
                    state.fallback_since = Some(Utc::now());
                    state.fallback_started = Some(Instant::now());
                    state.last_error = Some(class);
                }
            }
        }
        Ok(Arc::new(Cache {
            instance: instance.to_string(),
            redis,
            local,
            state: Mutex::new(state),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            sets: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn mode(&self) -> CacheMode {
        self.state().mode
    }

    pub fn stats(&self) -> CacheStats {
        let s = self.state();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            sets: self.sets.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            mode: s.mode,
            fallback_since: s.fallback_since,
        }
    }

    /// Switches to the memory fallback (once) after a Redis failure.
    fn enter_fallback(&self, class: &'static str) {
        let mut s = self.state();
        s.last_error = Some(class);
        if s.mode == CacheMode::Redis {
            s.mode = CacheMode::Fallback;
            s.fallback_since = Some(Utc::now());
            s.fallback_started = Some(Instant::now());
            drop(s);
            tracing::warn!(error_class = class, "cache_fallback");
        }
    }

    /// Returns the cached value of `key` or runs `loader` once per instance for concurrent misses and stores it.
    /// Any cache failure degrades to calling the loader.
    pub async fn get_or_load<T, E, F, Fut>(&self, key: &str, ttl: Duration, loader: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: Clone + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let full = format!("{KEY_PREFIX}{key}");
        let via_redis = self.mode() == CacheMode::Redis;
        let local_ttl = if via_redis { ttl.min(NEAR_TTL) } else { ttl };
        let init = async {
            if via_redis && let Some(bytes) = self.redis_get(&full).await {
                return Ok::<_, E>((Entry { bytes: Arc::new(bytes), ttl: local_ttl }, true));
            }
            let value = loader().await?;
            let Ok(bytes) = rmp_serde::to_vec_named(&value) else {
                // Not serializable: never cached, served anyway. Marked with an empty, already-expired entry.
                return Ok((Entry { bytes: Arc::new(Vec::new()), ttl: Duration::ZERO }, false));
            };
            self.sets.fetch_add(1, Ordering::Relaxed);
            if via_redis {
                self.redis_set(&full, &bytes, ttl).await;
            }
            Ok((Entry { bytes: Arc::new(bytes), ttl: local_ttl }, false))
        };
        let mut from_redis = false;
        let entry = self
            .local
            .entry(full.clone())
            .or_try_insert_with(async {
                let (entry, hit) = init.await?;
                from_redis = hit;
                Ok::<_, E>(entry)
            })
            .await;
        let entry = match entry {
            Ok(e) => e,
            Err(arc_err) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                return Err((*arc_err).clone());
            }
        };
        if entry.is_fresh() && !from_redis {
            self.misses.fetch_add(1, Ordering::Relaxed);
        } else {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        match rmp_serde::from_slice::<T>(&entry.value().bytes) {
            Ok(v) => Ok(v),
            Err(_) => {
                // A value of another shape (should not happen thanks to the key version): drop it and load.
                self.local.invalidate(&full).await;
                loader().await
            }
        }
    }

    async fn redis_get(&self, full: &str) -> Option<Vec<u8>> {
        let link = self.redis.as_ref()?;
        let key = full.to_string();
        match link
            .run(|mut c| async move { redis::cmd("GET").arg(&key).query_async::<Option<Vec<u8>>>(&mut c).await })
            .await
        {
            Ok(v) => v,
            Err(class) => {
                self.enter_fallback(class);
                None
            }
        }
    }

    async fn redis_set(&self, full: &str, bytes: &[u8], ttl: Duration) {
        let Some(link) = self.redis.as_ref() else { return };
        let (key, val, ms) = (full.to_string(), bytes.to_vec(), ttl.as_millis().max(1) as u64);
        let res = link
            .run(|mut c| async move {
                redis::cmd("SET").arg(&key).arg(val).arg("PX").arg(ms).query_async::<()>(&mut c).await
            })
            .await;
        if let Err(class) = res {
            self.enter_fallback(class);
        }
    }

    /// Drops every value under `prefix` (e.g. `stock:`) here and, through Redis, on every instance. Call after COMMIT.
    pub async fn invalidate_prefix(&self, prefix: &str) {
        self.invalidations.fetch_add(1, Ordering::Relaxed);
        self.drop_local(prefix);
        match self.mode() {
            CacheMode::Memory => {}
            CacheMode::Redis => {
                if let Err(class) = self.redis_invalidate(prefix).await {
                    self.enter_fallback(class);
                    self.journal(prefix);
                }
            }
            CacheMode::Fallback => self.journal(prefix),
        }
    }

    fn drop_local(&self, prefix: &str) {
        let full = format!("{KEY_PREFIX}{prefix}");
        let _ = self.local.invalidate_entries_if(move |k, _| k.starts_with(&full));
    }

    fn journal(&self, prefix: &str) {
        let mut s = self.state();
        if s.journal.len() >= JOURNAL_MAX {
            s.journal_overflow = true;
        } else if !s.journal.iter().any(|p| p == prefix) {
            s.journal.push(prefix.to_string());
        }
    }

    async fn redis_invalidate(&self, prefix: &str) -> Result<(), &'static str> {
        let Some(link) = self.redis.as_ref() else { return Ok(()) };
        let pattern = format!("{KEY_PREFIX}{prefix}*");
        let mut cursor: u64 = 0;
        loop {
            let p = pattern.clone();
            let (next, keys): (u64, Vec<String>) = link
                .run(|mut c| async move {
                    redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&p).arg("COUNT").arg(500).query_async(&mut c).await
                })
                .await?;
            if !keys.is_empty() {
                link.run(|mut c| async move { redis::cmd("UNLINK").arg(&keys).query_async::<i64>(&mut c).await })
                    .await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let msg = serde_json::json!({"prefix": prefix, "origin": self.instance}).to_string();
        link.run(|mut c| async move { redis::cmd("PUBLISH").arg(CHANNEL).arg(msg).query_async::<i64>(&mut c).await })
            .await?;
        Ok(())
    }

    /// Readiness: `PING` within 250 ms (never touches the hit counters).
    pub async fn check(&self) -> CacheCheck {
        let Some(link) = self.redis.as_ref() else {
            return CacheCheck { status: "up", mode: "memory", response_time_ms: 0, error: None };
        };
        let started = Instant::now();
        let mode = self.mode();
        let res = if mode == CacheMode::Redis {
            link.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await }).await.map(|_| ())
        } else {
            link.connect().await.map(|_| ())
        };
        let ms = started.elapsed().as_millis() as u64;
        match (res, mode) {
            (Ok(()), CacheMode::Redis) => CacheCheck { status: "up", mode: "redis", response_time_ms: ms, error: None },
            (Ok(()), _) => CacheCheck { status: "fallback", mode: "memory", response_time_ms: ms, error: None },
            (Err(class), _) => {
                self.enter_fallback(class);
                CacheCheck { status: "down", mode: "memory", response_time_ms: ms, error: Some(class) }
            }
        }
    }

    /// One probe: detect an outage while idle, or recover from one (replay the journal, clear the local store,
    /// switch back). Called every 5 s.
    pub async fn probe(&self) {
        let Some(link) = self.redis.as_ref() else { return };
        match self.mode() {
            CacheMode::Memory => {}
            CacheMode::Redis => {
                let res = link.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await }).await;
                if let Err(class) = res {
                    self.enter_fallback(class);
                }
            }
            CacheMode::Fallback => {
                if link.connect().await.is_err() {
                    return;
                }
                let (journal, overflow) = {
                    let mut s = self.state();
                    s.switching_back = true;
                    (std::mem::take(&mut s.journal), std::mem::replace(&mut s.journal_overflow, false))
                };
                let replay = if overflow {
                    self.redis_invalidate("").await
                } else {
                    let mut r = Ok(());
                    for p in &journal {
                        r = self.redis_invalidate(p).await;
                        if r.is_err() {
                            break;
                        }
                    }
                    r
                };
                let mut s = self.state();
                s.switching_back = false;
                if let Err(class) = replay {
                    // Still failing: keep what must be replayed.
                    s.journal = journal;
                    s.journal_overflow |= overflow;
                    s.last_error = Some(class);
                    return;
                }
                // Entries written during the outage may have missed other instances' invalidations.
                self.local.invalidate_all();
                let outage = s.fallback_started.map(|t| t.elapsed().as_secs()).unwrap_or(0);
                s.mode = CacheMode::Redis;
                s.fallback_since = None;
                s.fallback_started = None;
                s.last_error = None;
                drop(s);
                tracing::info!(outage_seconds = outage, "cache_recovered");
            }
        }
    }

    /// Background work: the 5 s probe and the invalidation subscriber. Returns when `stop` flips.
    pub async fn run(self: Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        if self.redis.is_none() {
            return;
        }
        let probe = super::every(Duration::from_secs(5), stop.clone(), || self.probe());
        let subscriber = {
            let me = self.clone();
            let mut stop = stop.clone();
            async move {
                loop {
                    tokio::select! {
                        _ = me.listen() => {}
                        _ = stop.changed() => return,
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        };
        tokio::join!(probe, subscriber);
    }

    async fn listen(&self) {
        let Some(link) = self.redis.as_ref() else { return };
        let Ok(Ok(mut pubsub)) = tokio::time::timeout(Duration::from_secs(2), link.client().get_async_pubsub()).await
        else {
            return;
        };
        if pubsub.subscribe(CHANNEL).await.is_err() {
            return;
        }
        let mut stream = pubsub.into_on_message();
        while let Some(msg) = stream.next().await {
            let Ok(payload) = msg.get_payload::<String>() else { continue };
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&payload)
                && let Some(prefix) = v.get("prefix").and_then(|p| p.as_str())
            {
                self.drop_local(prefix);
            }
        }
    }
}
