//! Stock KPIs (DOMAIN.md §7.2, §17): the appro status of an MP, DLC buckets, the stock health score. Inputs are
//! counts and quantities the store reads from the ledger; nothing here is cached.

use chrono::NaiveDate;

/// §7.2 appro status of one MP; the first matching row wins, "below" is strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApproStatus {
    Rupture,
    Critique,
    ACommander,
    Ok,
}

impl ApproStatus {
    pub fn code(self) -> &'static str {
        match self {
            ApproStatus::Rupture => "RUPTURE",
            ApproStatus::Critique => "CRITIQUE",
            ApproStatus::ACommander => "A_COMMANDER",
            ApproStatus::Ok => "OK",
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            ApproStatus::Rupture => "Rupture",
            ApproStatus::Critique => "Critique",
            ApproStatus::ACommander => "À commander",
            ApproStatus::Ok => "OK",
        }
    }
}

/// What §7.2 needs to know of one MP (quantities in milli-units).
#[derive(Debug, Clone, Copy, Default)]
pub struct MpSupply {
    pub stock_disponible: i64,
    pub safety_threshold: i64,
    pub reorder_threshold: i64,
    /// Σ PRODUCTION_OUT − Σ PRODUCTION_CANCEL over the last 30 days (§7.1).
    pub consumption_30: i64,
    pub lead_time_days: i64,
}

/// §7.2 with the integer form of "coverage < lead time": stock × 30 < consumption_30 × lead_time (no consumption
/// means infinite coverage).
pub fn appro_status(m: &MpSupply) -> ApproStatus {
    let coverage_short = m.consumption_30 > 0
        && i128::from(m.stock_disponible) * 30 < i128::from(m.consumption_30) * i128::from(m.lead_time_days);
    if m.stock_disponible <= 0 {
        ApproStatus::Rupture
    } else if m.stock_disponible < m.safety_threshold || coverage_short {
        ApproStatus::Critique
    } else if m.stock_disponible < m.reorder_threshold {
        ApproStatus::ACommander
    } else {
        ApproStatus::Ok
    }
}

/// §17 "Lots à échéance" buckets for a usable-or-quarantined lot: J0, J+1, J+2–3, J+4–7; `None` outside [today,
/// today + 7].
pub fn echeance_bucket(dlc: NaiveDate, today: NaiveDate) -> Option<usize> {
    match (dlc - today).num_days() {
        0 => Some(0),
        1 => Some(1),
        2..=3 => Some(2),
        4..=7 => Some(3),
        _ => None,
    }
}

pub const ECHEANCE_LABELS: [&str; 4] = ["J0", "J+1", "J+2–3", "J+4–7"];

/// The terms of the §17 stock health score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthInputs {
    /// Bloquante MPs in RUPTURE.
    pub b: i64,
    /// Other MPs in RUPTURE.
    pub r: i64,
    /// Active PFs with min_stock > 0 and available_to_promise ≤ 0.
    pub p: i64,
    /// BLOCKED(EXPIRED) lots not written off.
    pub e: i64,
    /// MPs in CRITIQUE.
    pub c: i64,
    /// Usable lots with dlc ≤ today + 3.
    pub x: i64,
    /// Counts in PENDING or PENDING_DOUBLE.
    pub i: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthBand {
    Excellent,
    Bon,
    ASurveiller,
    Critique,
}

impl HealthBand {
    pub fn code(self) -> &'static str {
        match self {
            HealthBand::Excellent => "EXCELLENT",
            HealthBand::Bon => "BON",
            HealthBand::ASurveiller => "A_SURVEILLER",
            HealthBand::Critique => "CRITIQUE",
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            HealthBand::Excellent => "Excellent",
            HealthBand::Bon => "Bon",
            HealthBand::ASurveiller => "À surveiller",
            HealthBand::Critique => "Critique",
        }
    }
}

/// clamp(100 − 10·B − 5·(R + P) − 3·E − 2·C − 1·(X + I), 0, 100) and its band.
pub fn health_score(h: &HealthInputs) -> (i64, HealthBand) {
    let score = (100 - 10 * h.b - 5 * (h.r + h.p) - 3 * h.e - 2 * h.c - (h.x + h.i)).clamp(0, 100);
    let band = match score {
        90.. => HealthBand::Excellent,
        70..=89 => HealthBand::Bon,
        50..=69 => HealthBand::ASurveiller,
        _ => HealthBand::Critique,
    };
    (score, band)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn health_score_example_of_domain_17() {
        let h = HealthInputs { b: 0, r: 1, p: 1, e: 2, c: 3, x: 4, i: 1 };
        assert_eq!(health_score(&h), (73, HealthBand::Bon));
    }

    #[test]
    fn health_score_is_clamped_and_banded_at_the_edges() {
        assert_eq!(health_score(&HealthInputs::default()), (100, HealthBand::Excellent));
        assert_eq!(health_score(&HealthInputs { x: 10, ..Default::default() }), (90, HealthBand::Excellent));
        assert_eq!(health_score(&HealthInputs { x: 11, ..Default::default() }).1, HealthBand::Bon);
        assert_eq!(health_score(&HealthInputs { b: 3, ..Default::default() }), (70, HealthBand::Bon));
        assert_eq!(health_score(&HealthInputs { b: 3, x: 1, ..Default::default() }).1, HealthBand::ASurveiller);
        assert_eq!(health_score(&HealthInputs { b: 5, ..Default::default() }), (50, HealthBand::ASurveiller));
        assert_eq!(health_score(&HealthInputs { b: 5, i: 1, ..Default::default() }), (49, HealthBand::Critique));
        assert_eq!(health_score(&HealthInputs { b: 20, ..Default::default() }), (0, HealthBand::Critique));
    }

    #[test]
    fn appro_status_follows_the_first_matching_row() {
        // The §7.2 example: safety 1 000 L, reorder 1 500 L, lead 2 days, 36 000 L in 30 days, 2 000 L in stock.
        let m = MpSupply {
            stock_disponible: 2_000_000,
            safety_threshold: 1_000_000,
            reorder_threshold: 1_500_000,
            consumption_30: 36_000_000,
            lead_time_days: 2,
        };
        assert_eq!(appro_status(&m), ApproStatus::Critique);
        // Without consumption the coverage is infinite: 2 000 ≥ 1 500 → OK.
        assert_eq!(appro_status(&MpSupply { consumption_30: 0, ..m }), ApproStatus::Ok);
        assert_eq!(
            appro_status(&MpSupply { consumption_30: 0, stock_disponible: 1_499_999, ..m }),
            ApproStatus::ACommander
        );
        // "Below" is strict: exactly the reorder threshold is OK, exactly the safety threshold is À commander.
        assert_eq!(appro_status(&MpSupply { consumption_30: 0, stock_disponible: 1_500_000, ..m }), ApproStatus::Ok);
        assert_eq!(
            appro_status(&MpSupply { consumption_30: 0, stock_disponible: 1_000_000, ..m }),
            ApproStatus::ACommander
        );
        assert_eq!(
            appro_status(&MpSupply { consumption_30: 0, stock_disponible: 999_999, ..m }),
            ApproStatus::Critique
        );
        assert_eq!(appro_status(&MpSupply { stock_disponible: 0, ..m }), ApproStatus::Rupture);
        // Coverage exactly the lead time is not short: 2 400 L at 1 200 L/day over 2 days.
        assert_eq!(appro_status(&MpSupply { stock_disponible: 2_400_000, ..m }), ApproStatus::Ok);
    }

    #[test]
    fn echeance_buckets() {
        let today = d("2025-03-14");
        let b = |s: &str| echeance_bucket(d(s), today);
        assert_eq!(b("2025-03-13"), None);
        assert_eq!(b("2025-03-14"), Some(0));
        assert_eq!(b("2025-03-15"), Some(1));
        assert_eq!(b("2025-03-16"), Some(2));
        assert_eq!(b("2025-03-17"), Some(2));
        assert_eq!(b("2025-03-18"), Some(3));
        assert_eq!(b("2025-03-21"), Some(3));
        assert_eq!(b("2025-03-22"), None);
    }
}
