//! Fixed-window rate limiting (PLATFORM.md §5.1): the window starts at the first hit; Redis and the local map both
//! produce a (count, milliseconds left) pair and this function turns it into the answer and its headers.

/// What the counter store reported for this hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    /// Hits in the current window, this one included.
    pub count: u64,
    /// Milliseconds until the window ends.
    pub ttl_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Seconds to the end of the window (`RateLimit-Reset`), rounded up.
    pub reset_secs: u64,
    /// `Retry-After` seconds for a refused request: at least 1.
    pub retry_after_secs: u64,
}

pub fn decide(state: WindowState, limit: u64) -> Decision {
    let reset_secs = state.ttl_ms.div_ceil(1000);
    Decision {
        allowed: state.count <= limit,
        limit,
        remaining: limit.saturating_sub(state.count),
        reset_secs,
        retry_after_secs: reset_secs.max(1),
    }
}

/// The local counter's arithmetic, same semantics as the Redis script: a hit on an expired (or absent) window opens a
/// new one of `window_ms`; otherwise the count grows. Returns the new (count, window end).
pub fn local_hit(existing: Option<(u64, u64)>, now_ms: u64, window_ms: u64) -> (u64, u64) {
    match existing {
        Some((count, ends_at)) if ends_at > now_ms => (count + 1, ends_at),
        _ => (1, now_ms + window_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_the_limit_counts_down() {
        let d = decide(WindowState { count: 1, ttl_ms: 60_000 }, 100);
        assert_eq!(d, Decision { allowed: true, limit: 100, remaining: 99, reset_secs: 60, retry_after_secs: 60 });
        let d = decide(WindowState { count: 100, ttl_ms: 1 }, 100);
        assert!(d.allowed);
        assert_eq!((d.remaining, d.reset_secs), (0, 1));
    }

    #[test]
    fn the_hit_after_the_limit_is_refused_with_a_retry_after_of_at_least_one_second() {
        let d = decide(WindowState { count: 101, ttl_ms: 12_300 }, 100);
        assert!(!d.allowed);
        assert_eq!((d.remaining, d.reset_secs, d.retry_after_secs), (0, 13, 13));
        let d = decide(WindowState { count: 500, ttl_ms: 0 }, 100);
        assert_eq!(d.retry_after_secs, 1);
    }

    #[test]
    fn local_window_opens_at_the_first_hit_and_resets_after_it_ends() {
        assert_eq!(local_hit(None, 1_000, 60_000), (1, 61_000));
        assert_eq!(local_hit(Some((1, 61_000)), 30_000, 60_000), (2, 61_000));
        assert_eq!(local_hit(Some((7, 61_000)), 61_000, 60_000), (1, 121_000));
    }
}
