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
}

/// The most recent slot that started at or before `now` (Unix seconds): its start and its key.
pub fn latest_slot(cal: Calendar, now: i64) -> (i64, String) {
    let local = now + ALGIERS_OFFSET_SECS;
    let (period, offset) = match cal {
        Calendar::Daily { hour, minute } => (86_400, (hour * 3_600 + minute * 60) as i64),
        Calendar::Hourly { minute } => (3_600, (minute * 60) as i64),
    };
    let start_local = (local - offset).div_euclid(period) * period + offset;
    let (y, m, d) = civil_from_days(start_local.div_euclid(86_400));
    let key = match cal {
        Calendar::Daily { .. } => format!("{y:04}-{m:02}-{d:02}"),
        Calendar::Hourly { .. } => format!("{y:04}-{m:02}-{d:02}T{:02}", start_local.rem_euclid(86_400) / 3_600),
    };
    (start_local - ALGIERS_OFFSET_SECS, key)
}

/// The first slot strictly after `now`.
pub fn next_slot(cal: Calendar, now: i64) -> i64 {
    let period = match cal {
        Calendar::Daily { .. } => 86_400,
        Calendar::Hourly { .. } => 3_600,
    };
    latest_slot(cal, now).0 + period
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
    fn hourly_slots_carry_the_local_hour() {
        let cal = Calendar::Hourly { minute: 20 };
        // 2025-03-15 00:05 local → the last :20 was 2025-03-14 23:20 local.
        let (start, key) = latest_slot(cal, MIDNIGHT_FIVE);
        assert_eq!(key, "2025-03-14T23");
        assert_eq!(start, MIDNIGHT_FIVE - 45 * 60);
        assert_eq!(next_slot(cal, MIDNIGHT_FIVE), MIDNIGHT_FIVE + 15 * 60);
    }
}
