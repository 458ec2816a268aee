//! Inventory counts (DOMAIN.md §13): the difference, its risk, the validations it needs, the suspicious pattern and
//! the cooldown. The store posts the movements.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::money::round_div;
use crate::rejection::Rejection;

/// What kind of product is counted: the risk bands differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    PerishableMp,
    NonPerishableMp,
    Pf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Risk {
    Low,
    Medium,
    High,
    Critical,
}

impl Risk {
    pub fn code(self) -> &'static str {
        match self {
            Risk::Low => "LOW",
            Risk::Medium => "MEDIUM",
            Risk::High => "HIGH",
            Risk::Critical => "CRITICAL",
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            Risk::Low => "Faible",
            Risk::Medium => "Moyen",
            Risk::High => "Élevé",
            Risk::Critical => "Critique",
        }
    }
}

/// 50 000.00 DA: above it a count is CRITICAL whatever its percentage.
pub const CRITICAL_VALUE_C: i64 = 5_000_000;

/// |difference| in basis points of the theoretical stock (10 000 when theoretical is 0 and difference is not).
pub fn pct_bp(theoretical: i64, declared: i64) -> i64 {
    let diff = (declared - theoretical).abs();
    match (theoretical, diff) {
        (_, 0) => 0,
        (0, _) => 10_000,
        (t, d) => round_div(i128::from(d) * 10_000, i128::from(t)) as i64,
    }
}

/// Weighted average cost over lots with something left, else the latest lot's cost, else 0. `lots` are
/// `(remaining, unit_cost)` oldest first.
pub fn unit_value(lots: &[(i64, i64)]) -> i64 {
    let (qty, value): (i128, i128) = lots
        .iter()
        .filter(|(r, _)| *r > 0)
        .fold((0, 0), |(q, v), (r, c)| (q + i128::from(*r), v + i128::from(*r) * i128::from(*c)));
    if qty > 0 { round_div(value, qty) as i64 } else { lots.last().map(|(_, c)| *c).unwrap_or(0) }
}

/// Risk from the percentage and the value (bounds inclusive).
pub fn risk(kind: Counted, pct_bp: i64, value_c: i64) -> Risk {
    if value_c > CRITICAL_VALUE_C {
        return Risk::Critical;
    }
    let (low, medium, high) = match kind {
        Counted::PerishableMp => (200, 500, 1000),
        Counted::NonPerishableMp => (300, 800, 1600),
        Counted::Pf => (100, 300, 600),
    };
    if pct_bp <= low {
        Risk::Low
    } else if pct_bp <= medium {
        Risk::Medium
    } else if pct_bp <= high {
        Risk::High
    } else {
        Risk::Critical
    }
}

/// Where a new count starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initial {
    /// Posted at once (LOW and not suspect, or no difference).
    Approved,
    /// One validator.
    Pending,
    /// Two different validators.
    PendingDouble,
}

impl Initial {
    pub fn code(self) -> &'static str {
        match self {
            Initial::Approved => "APPROVED",
            Initial::Pending => "PENDING",
            Initial::PendingDouble => "PENDING_DOUBLE",
        }
    }
}

/// The assessment of a declared count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub difference: i64,
    pub pct_bp: i64,
    pub unit_value_c: i64,
    pub value_c: i64,
    pub risk: Risk,
    pub suspect: bool,
    pub initial: Initial,
}

/// `previous_same_counter` are the differences of this counter's previous **approved** counts of the product within
/// 30 days, newest first.
pub fn assess(
    kind: Counted,
    theoretical: i64,
    declared: i64,
    lots: &[(i64, i64)],
    previous_same_counter: &[i64],
) -> Assessment {
    let difference = declared - theoretical;
    let pct = pct_bp(theoretical, declared);
    let unit_value_c = unit_value(lots);
    let value_c = round_div(i128::from(difference.abs()) * i128::from(unit_value_c), 1000) as i64;
    let risk = risk(kind, pct, value_c);
    let suspect =
        difference < 0 && previous_same_counter.len() >= 2 && previous_same_counter[..2].iter().all(|d| *d < 0);
    let initial = if difference == 0 {
        Initial::Approved
    } else {
        match risk {
            Risk::Critical => Initial::PendingDouble,
            Risk::Low if !suspect => Initial::Approved,
            _ => Initial::Pending,
        }
    };
    Assessment { difference, pct_bp: pct, unit_value_c, value_c, risk, suspect, initial }
}

/// No new count of a product within 4 h of the previous one (REJECTED and EXPIRED ones ignored by the caller).
pub fn check_cooldown(previous_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<(), Rejection> {
    match previous_at {
        Some(t) if now < t + chrono::Duration::hours(4) => {
            let next = t + chrono::Duration::hours(4) + chrono::Duration::hours(1);
            let heure = next.format("%H:%M").to_string();
            Err(Rejection::new(
                "INVENTAIRE_DELAI",
                429,
                format!("Un comptage de ce produit a eu lieu il y a moins de 4 heures (prochain possible à {heure})."),
            )
            .with_details(json!({"heure": heure})))
        }
        _ => Ok(()),
    }
}

/// A validation by `validator` of a count in `status`: the new status. The counter never validates; the two
/// validators of a critical count differ.
pub fn validate(
    status: &str,
    counter: &str,
    first_validator: Option<&str>,
    validator: &str,
) -> Result<&'static str, Rejection> {
    if validator == counter {
        return Err(Rejection::new(
            "AUTO_VALIDATION_INTERDITE",
            403,
            "Vous ne pouvez pas valider ou rejeter votre propre comptage.",
        ));
    }
    match status {
        "PENDING_DOUBLE" => Ok("PENDING"),
        "PENDING" if first_validator == Some(validator) => Err(Rejection::new(
            "VALIDATEUR_IDENTIQUE",
            403,
            "La seconde validation doit être faite par une autre personne.",
        )),
        "PENDING" => Ok("APPROVED"),
        other => Err(Rejection::transition_invalide(other, "APPROVED")),
    }
}

/// A rejection (reason ≥ 10) by anyone but the counter, of a count still waiting.
pub fn reject(status: &str, counter: &str, validator: &str, reason: &str) -> Result<&'static str, Rejection> {
    if validator == counter {
        return Err(Rejection::new(
            "AUTO_VALIDATION_INTERDITE",
            403,
            "Vous ne pouvez pas valider ou rejeter votre propre comptage.",
        ));
    }
    if !matches!(status, "PENDING" | "PENDING_DOUBLE") {
        return Err(Rejection::transition_invalide(status, "REJECTED"));
    }
    if reason.trim().chars().count() < 10 {
        return Err(Rejection::new("MOTIF_TROP_COURT", 422, "Le motif doit contenir au moins 10 caractères.")
            .with_details(json!({"n": 10})));
    }
    Ok("REJECTED")
}

/// A waiting count expires 48 h after its declaration.
pub fn expired(status: &str, declared_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    matches!(status, "PENDING" | "PENDING_DOUBLE") && now >= declared_at + chrono::Duration::hours(48)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn scenario_53_54_perishable_mp_bands_are_inclusive() {
        let lots = [(1_000_000, 300)];
        let a = assess(Counted::PerishableMp, 1_000_000, 985_000, &lots, &[]);
        assert_eq!((a.difference, a.pct_bp, a.risk, a.initial), (-15_000, 150, Risk::Low, Initial::Approved));
        let a = assess(Counted::PerishableMp, 1_000_000, 980_000, &lots, &[]);
        assert_eq!((a.pct_bp, a.risk), (200, Risk::Low));
        let a = assess(Counted::PerishableMp, 1_000_000, 979_000, &lots, &[]);
        assert_eq!((a.pct_bp, a.risk, a.initial), (210, Risk::Medium, Initial::Pending));
    }

    #[test]
    fn scenario_55_pf_and_the_counter_never_validates() {
        let a = assess(Counted::Pf, 200_000, 195_000, &[(200_000, 50_000)], &[]);
        assert_eq!((a.pct_bp, a.risk, a.initial), (250, Risk::Medium, Initial::Pending));
        assert_eq!(validate("PENDING", "u1", None, "u1").unwrap_err().code, "AUTO_VALIDATION_INTERDITE");
        assert_eq!(validate("PENDING", "u1", None, "u2"), Ok("APPROVED"));
    }

    #[test]
    fn scenario_56_value_makes_it_critical_and_two_different_validators() {
        // 10 000 U, declared 9 900 (1 %), unit value 600.00 DA → 60 000.00 DA.
        let a = assess(Counted::NonPerishableMp, 10_000_000, 9_900_000, &[(10_000_000, 60_000)], &[]);
        assert_eq!((a.pct_bp, a.value_c, a.risk, a.initial), (100, 6_000_000, Risk::Critical, Initial::PendingDouble));
        assert_eq!(validate("PENDING_DOUBLE", "c", None, "x"), Ok("PENDING"));
        assert_eq!(validate("PENDING", "c", Some("x"), "x").unwrap_err().code, "VALIDATEUR_IDENTIQUE");
        assert_eq!(validate("PENDING", "c", Some("x"), "y"), Ok("APPROVED"));
        assert_eq!(validate("APPROVED", "c", Some("x"), "z").unwrap_err().code, "TRANSITION_INVALIDE");
    }

    #[test]
    fn scenario_57_cooldown_and_58_expiry() {
        let first = at("2025-03-14T07:00:00Z"); // 08:00 in Algiers
        let e = check_cooldown(Some(first), at("2025-03-14T10:59:00Z")).unwrap_err();
        assert_eq!(e.code, "INVENTAIRE_DELAI");
        assert_eq!(
            e.message,
            "Un comptage de ce produit a eu lieu il y a moins de 4 heures (prochain possible à 12:00)."
        );
        assert!(check_cooldown(Some(first), at("2025-03-14T11:00:00Z")).is_ok());
        assert!(!expired("PENDING", first, at("2025-03-16T06:59:59Z")));
        assert!(expired("PENDING", first, at("2025-03-16T07:00:00Z")));
        assert!(!expired("APPROVED", first, at("2025-03-20T07:00:00Z")));
    }

    #[test]
    fn scenario_59_suspicious_pattern_is_never_auto_approved() {
        let a = assess(Counted::PerishableMp, 1_000_000, 998_000, &[(1_000_000, 100)], &[-5_000, -3_000]);
        assert_eq!((a.pct_bp, a.risk, a.suspect, a.initial), (20, Risk::Low, true, Initial::Pending));
        let a = assess(Counted::PerishableMp, 1_000_000, 998_000, &[(1_000_000, 100)], &[-5_000, 3_000]);
        assert_eq!((a.suspect, a.initial), (false, Initial::Approved));
    }

    #[test]
    fn scenario_60_surplus_on_nothing_is_critical() {
        let a = assess(Counted::Pf, 0, 12_000, &[], &[]);
        assert_eq!((a.pct_bp, a.risk, a.initial), (10_000, Risk::Critical, Initial::PendingDouble));
        let a = assess(Counted::Pf, 0, 0, &[], &[]);
        assert_eq!((a.pct_bp, a.initial), (0, Initial::Approved));
        assert_eq!(unit_value(&[(0, 500), (0, 700)]), 700, "latest lot's cost when nothing is left");
        assert_eq!(unit_value(&[(1_000, 100), (3_000, 200)]), 175);
    }

    #[test]
    fn rejections_need_a_reason_and_another_person() {
        assert_eq!(
            reject("PENDING", "c", "c", "Recompter la chambre froide").unwrap_err().code,
            "AUTO_VALIDATION_INTERDITE"
        );
        assert_eq!(reject("PENDING", "c", "v", "court").unwrap_err().code, "MOTIF_TROP_COURT");
        assert_eq!(reject("PENDING_DOUBLE", "c", "v", "Recompter la chambre froide"), Ok("REJECTED"));
        assert_eq!(reject("EXPIRED", "c", "v", "Recompter la chambre froide").unwrap_err().code, "TRANSITION_INVALIDE");
    }
}
