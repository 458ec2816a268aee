//! Calendar schedules of background jobs (PLATFORM.md §8), computed in Africa/Algiers (fixed UTC+1, no DST).
//! A slot is named by its local date (`2025-03-14`) or date and hour (`2025-03-14T06`): a job runs once per slot.

use crate::format::civil_from_days;

pub const ALGIERS_OFFSET_SECS: i64 = 3_600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calendar {
    /// Every day at hh:mm Algiers time.
    Daily { hour: u32, minute: u32 },
    /// Every hour at :mm.
    Hourly { minute: u32 },
    /// Every `hours` hours from 00:00 Algiers each day (6 → 00:00, 06:00, 12:00, 18:00).
    EveryHours { hours: u32 },
}

/// The most recent slot that started at or before `now` (Unix seconds): its start and its key.
pub fn latest_slot(cal: Calendar, now: i64) -> (i64, String) {
    let local = now + ALGIERS_OFFSET_SECS;
    let start_local = match cal {
        Calendar::Daily { hour, minute } => {
            let offset = (hour * 3_600 + minute * 60) as i64;
            (local - offset).div_euclid(86_400) * 86_400 + offset
        }
        Calendar::Hourly { minute } => {
            let offset = (minute * 60) as i64;
            (local - offset).div_euclid(3_600) * 3_600 + offset
        }
        Calendar::EveryHours { hours } => {
            let period = i64::from(hours.clamp(1, 24)) * 3_600;
            let day = local.div_euclid(86_400) * 86_400;
            day + (local - day) / period * period
        }
    };
    let (y, m, d) = civil_from_days(start_local.div_euclid(86_400));
    let key = match cal {
        Calendar::Daily { .. } => format!("{y:04}-{m:02}-{d:02}"),
        Calendar::Hourly { .. } | Calendar::EveryHours { .. } => {
            format!("{y:04}-{m:02}-{d:02}T{:02}", start_local.rem_euclid(86_400) / 3_600)
        }
    };
    (start_local - ALGIERS_OFFSET_SECS, key)
}

/// The first slot strictly after `now`.
pub fn next_slot(cal: Calendar, now: i64) -> i64 {
    match cal {
        Calendar::Daily { .. } => latest_slot(cal, now).0 + 86_400,
        Calendar::Hourly { .. } => latest_slot(cal, now).0 + 3_600,
        // The last slot of a day may be shorter (hours not dividing 24): the next day's 00:00 comes first.
        Calendar::EveryHours { hours } => {
            let start = latest_slot(cal, now).0;
            let local_start = start + ALGIERS_OFFSET_SECS;
            let next_day = (local_start.div_euclid(86_400) + 1) * 86_400 - ALGIERS_OFFSET_SECS;
            (start + i64::from(hours.clamp(1, 24)) * 3_600).min(next_day)
        }
    }
}

/// The first Sunday `hour`:00 (Algiers) strictly after `now` — the weekly restore test (PLATFORM.md §12.4).
pub fn next_sunday_at(hour: u32, now: i64) -> i64 {
    let daily = Calendar::Daily { hour, minute: 0 };
    let mut t = next_slot(daily, now);
    // Day 0 (1970-01-01) was a Thursday, so days ≡ 3 (mod 7) are Sundays.
    while (t + ALGIERS_OFFSET_SECS).div_euclid(86_400) % 7 != 3 {
        t = next_slot(daily, t);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2025-03-14T23:05:00Z = 2025-03-15 00:05 in Algiers.
    const MIDNIGHT_FIVE: i64 = 1_741_993_500;

    #[test]
    fn the_nightly_slot_is_named_by_the_algiers_date() {
        let cal = Calendar::Daily { hour: 0, minute: 5 };
        assert_eq!(latest_slot(cal, MIDNIGHT_FIVE), (MIDNIGHT_FIVE, "2025-03-15".to_string()));
        // One second earlier it is still the previous night's slot.
        assert_eq!(latest_slot(cal, MIDNIGHT_FIVE - 1).1, "2025-03-14");
        assert_eq!(next_slot(cal, MIDNIGHT_FIVE - 1), MIDNIGHT_FIVE);
        assert_eq!(next_slot(cal, MIDNIGHT_FIVE), MIDNIGHT_FIVE + 86_400);
    }

    #[test]
    fn the_weekly_restore_test_is_on_sunday_at_four() {
        // Saturday 2025-03-15 00:05 Algiers → Sunday 2025-03-16 04:00 Algiers = 03:00 UTC.
        assert_eq!(next_sunday_at(4, MIDNIGHT_FIVE), 1_742_094_000);
        // At that very instant, the next one is a week later.
        assert_eq!(next_sunday_at(4, 1_742_094_000), 1_742_094_000 + 7 * 86_400);
    }

    #[test]
    fn backup_slots_start_at_midnight_algiers() {
        let cal = Calendar::EveryHours { hours: 6 };
        // 2025-03-15 00:05 Algiers → the 00:00 slot; 05:59 still; 06:00 the next.
        assert_eq!(latest_slot(cal, MIDNIGHT_FIVE), (MIDNIGHT_FIVE - 300, "2025-03-15T00".to_string()));
        assert_eq!(next_slot(cal, MIDNIGHT_FIVE), MIDNIGHT_FIVE - 300 + 6 * 3_600);
        assert_eq!(latest_slot(cal, MIDNIGHT_FIVE - 300 + 6 * 3_600).1, "2025-03-15T06");
        // 5-hour slots: 00, 05, 10, 15, 20, then the next day's 00 (not 01).
        let five = Calendar::EveryHours { hours: 5 };
        let at_20 = MIDNIGHT_FIVE - 300 + 20 * 3_600;
        assert_eq!(latest_slot(five, at_20 + 10).1, "2025-03-15T20");
        assert_eq!(next_slot(five, at_20 + 10), MIDNIGHT_FIVE - 300 + 24 * 3_600);
    }

    #[test]
    fn hourly_slots_carry_the_local_hour() {
        let cal = Calendar::Hourly { minute: 20 };
        // 2025-03-15 00:05 local → the last :20 was 2025-03-14 23:20 local.
        let (start, key) = latest_slot(cal, MIDNIGHT_FIVE);
        assert_eq!(key, "2025-03-14T23");
        assert_eq!(start, MIDNIGHT_FIVE - 45 * 60);
        assert_eq!(next_slot(cal, MIDNIGHT_FIVE), MIDNIGHT_FIVE + 15 * 60);
    }
}
