//! Health status rules (PLATFORM.md §9.1).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseState {
    Up,
    Down,
}

/// What the cache reports to readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheState {
    /// Redis answering, or no Redis configured (memory mode).
    Up,
    /// Redis configured but failing: requests are served by the memory fallback.
    Down,
    /// Redis answers again; switch-back in progress.
    Fallback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overall {
    Ready,
    Degraded,
    Unavailable,
    Draining,
}

impl Overall {
    /// The `status` word of `/api/health/ready`.
    pub fn ready_word(self) -> &'static str {
        match self {
            Overall::Ready => "ready",
            Overall::Degraded => "degraded",
            Overall::Unavailable => "unavailable",
            Overall::Draining => "draining",
        }
    }

    /// The `status` word of `/api/health/detailed` (`ok` where ready says `ready`).
    pub fn detailed_word(self) -> &'static str {
        match self {
            Overall::Ready => "ok",
            other => other.ready_word(),
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Overall::Ready | Overall::Degraded => 200,
            Overall::Unavailable | Overall::Draining => 503,
        }
    }

    /// French label shown on the status page.
    pub fn label_fr(self) -> &'static str {
        match self {
            Overall::Ready => "Prêt",
            Overall::Degraded => "Dégradé",
            Overall::Unavailable => "Indisponible",
            Overall::Draining => "Arrêt en cours",
        }
    }
}

pub fn overall(draining: bool, database: DatabaseState, cache: CacheState) -> Overall {
    match (draining, database, cache) {
        (true, _, _) => Overall::Draining,
        (false, DatabaseState::Down, _) => Overall::Unavailable,
        (false, DatabaseState::Up, CacheState::Up) => Overall::Ready,
        (false, DatabaseState::Up, CacheState::Down | CacheState::Fallback) => Overall::Degraded,
    }
}

/// `hitRate` in tenths of a percent: `hits / (hits + misses) × 1000`, rounded half up, 0 when nothing was looked up.
pub fn hit_rate_tenths(hits: u64, misses: u64) -> u64 {
    let total = hits as u128 + misses as u128;
    if total == 0 {
        return 0;
    }
    ((hits as u128 * 1000 + total / 2) / total) as u64
}

/// `hitRate = hits / (hits + misses) × 100` with one decimal, as the JSON of detailed health carries it.
pub fn hit_rate(hits: u64, misses: u64) -> f64 {
    hit_rate_tenths(hits, misses) as f64 / 10.0
}

/// `80.0%` — the formatted twin of [`hit_rate`] in the JSON (pages use `format::percent_tenths`).
pub fn hit_rate_formatted(hits: u64, misses: u64) -> String {
    let t = hit_rate_tenths(hits, misses);
    format!("{}.{}%", t / 10, t % 10)
}

/// `1j 2h 3m 4s` (French: jours).
pub fn uptime_human(seconds: u64) -> String {
    let (d, h, m, s) = (seconds / 86_400, seconds / 3_600 % 24, seconds / 60 % 60, seconds % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}j {h}h {m}m {s}s"),
    }
}

/// `46MB` — memory in whole mebibytes as the runbook's readers expect it.
pub fn memory_human(bytes: u64) -> String {
    format!("{}MB", bytes / (1024 * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_of_the_contract() {
        use CacheState as C;
        use DatabaseState as D;
        assert_eq!(overall(false, D::Up, C::Up), Overall::Ready);
        assert_eq!(overall(false, D::Up, C::Down), Overall::Degraded);
        assert_eq!(overall(false, D::Up, C::Fallback), Overall::Degraded);
        assert_eq!(overall(false, D::Down, C::Up), Overall::Unavailable);
        assert_eq!(overall(false, D::Down, C::Down), Overall::Unavailable);
        assert_eq!(overall(true, D::Up, C::Up), Overall::Draining);
        assert_eq!(Overall::Degraded.http_status(), 200);
        assert_eq!(Overall::Unavailable.http_status(), 503);
        assert_eq!(Overall::Draining.http_status(), 503);
        assert_eq!(Overall::Ready.detailed_word(), "ok");
        assert_eq!(Overall::Ready.ready_word(), "ready");
    }

    #[test]
    fn hit_rate_of_the_example() {
        assert_eq!(hit_rate(1200, 300), 80.0);
        assert_eq!(hit_rate_formatted(1200, 300), "80.0%");
        assert_eq!(hit_rate(0, 0), 0.0);
        assert_eq!(hit_rate(2, 1), 66.7);
        assert_eq!(hit_rate(1, 2), 33.3);
        assert_eq!(hit_rate(5, 0), 100.0);
        assert_eq!(hit_rate_tenths(1, 2), 333);
        assert_eq!(hit_rate_formatted(2, 1), "66.7%");
    }

    #[test]
    fn uptime_reads_like_the_example() {
        assert_eq!(uptime_human(93_784), "1j 2h 3m 4s");
        assert_eq!(uptime_human(4), "4s");
        assert_eq!(uptime_human(64), "1m 4s");
        assert_eq!(uptime_human(3_600), "1h 0m 0s");
    }

    #[test]
    fn memory_in_megabytes() {
        assert_eq!(memory_human(48_234_496), "46MB");
    }
}
