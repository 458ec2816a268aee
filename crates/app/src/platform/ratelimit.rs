//! Rate limiting (PLATFORM.md §5.1): fixed windows shared through Redis when it answers, counted locally otherwise,
//! with the same semantics (the arithmetic lives in `domain::platform::ratelimit`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use domain::platform::ratelimit::{Decision, WindowState, decide, local_hit};

use super::redis_link::RedisLink;

const SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
";

const SHARDS: usize = 16;

pub struct RateLimiter {
    redis: Option<RedisLink>,
    script: redis::Script,
    shards: Vec<Mutex<HashMap<String, (u64, u64)>>>,
    epoch: Instant,
    limited_total: AtomicU64,
}

impl RateLimiter {
    pub fn new(redis_url: Option<&str>) -> Result<RateLimiter, String> {
        Ok(RateLimiter {
            redis: redis_url.map(RedisLink::new).transpose()?,
            script: redis::Script::new(SCRIPT),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            epoch: Instant::now(),
            limited_total: AtomicU64::new(0),
        })
    }

    /// `redis` while the shared counters answer, `local` otherwise.
    pub async fn backend(&self) -> &'static str {
        match &self.redis {
            Some(link) if link.current().await.is_some() => "redis",
            _ => "local",
        }
    }

    pub fn limited_total(&self) -> u64 {
        self.limited_total.load(Ordering::Relaxed)
    }

    /// Counts one hit for `limiter:identity` and decides.
    pub async fn hit(&self, limiter: &str, identity: &str, limit: u64, window: Duration) -> Decision {
        let key = format!("rl:{limiter}:{identity}");
        let window_ms = window.as_millis().max(1) as u64;
        let state = match self.redis_hit(&key, window_ms).await {
            Some(s) => s,
            None => self.local(&key, window_ms),
        };
        let d = decide(state, limit);
        if !d.allowed {
            self.limited_total.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("rate_limited_total", "limiter" => limiter.to_string()).increment(1);
        }
        d
    }

    async fn redis_hit(&self, key: &str, window_ms: u64) -> Option<WindowState> {
        let link = self.redis.as_ref()?;
        let (k, script) = (key.to_string(), self.script.clone());
        let res = link
            .run(|mut c| async move { script.key(k).arg(window_ms).invoke_async::<(i64, i64)>(&mut c).await })
            .await;
        match res {
            Ok((n, ttl)) => Some(WindowState { count: n.max(0) as u64, ttl_ms: ttl.max(0) as u64 }),
            Err(_) => None,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn local(&self, key: &str, window_ms: u64) -> WindowState {
        let shard = &self.shards[shard_of(key)];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.now_ms();
        let (count, ends_at) = local_hit(map.get(key).copied(), now, window_ms);
        map.insert(key.to_string(), (count, ends_at));
        WindowState { count, ttl_ms: ends_at.saturating_sub(now) }
    }

    /// Drops expired local windows (every 60 s) and reconnects to Redis when it was lost.
    pub async fn housekeeping(&self) -> usize {
        let now = self.now_ms();
        let mut removed = 0;
        for shard in &self.shards {
            let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
            let before = map.len();
            map.retain(|_, (_, ends_at)| *ends_at > now);
            removed += before - map.len();
        }
        removed
    }

    /// Reconnects the shared counters if they were lost (called by the 5 s probe).
    pub async fn probe(&self) {
        if let Some(link) = &self.redis
            && link.current().await.is_none()
        {
            let _ = link.connect().await;
        }
    }
}

fn shard_of(key: &str) -> usize {
    // FNV-1a: cheap and stable, enough to spread identities over shards.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % SHARDS as u64) as usize
}
