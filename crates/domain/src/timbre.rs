//! The timbre fiscal (DOMAIN.md §11): a pure function of (TTC, payment method, invoice date) over a dated rule table.
//! The table is configuration (stored as JSON, ADMIN-editable); [`default_rules`] are the shipped values, which the
//! company's accountant must confirm.

use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::rejection::Rejection;

/// One bracket of the **whole** TTC: up to `upto` centimes (inclusive; `None` = no upper bound), `rate` centimes per
/// tranche.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bracket {
    pub upto: Option<i64>,
    pub rate: i64,
}

/// One version of the rule table (centimes everywhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub code: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    /// TTC at or below this is exempt; `None` = no exemption.
    pub exempt_upto: Option<i64>,
    /// Size of a tranche; a started tranche counts.
    pub tranche: i64,
    pub brackets: Vec<Bracket>,
    pub minimum: i64,
    pub cap: Option<i64>,
}

impl Rule {
    pub fn applies_on(&self, d: NaiveDate) -> bool {
        self.valid_from.is_none_or(|f| f <= d) && self.valid_to.is_none_or(|t| d <= t)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "code": self.code, "validFrom": self.valid_from, "validTo": self.valid_to, "exemptUpto": self.exempt_upto,
            "tranche": self.tranche, "minimum": self.minimum, "cap": self.cap,
            "brackets": self.brackets.iter().map(|b| json!({"upto": b.upto, "rate": b.rate})).collect::<Vec<_>>(),
        })
    }

    /// Reads a rule written by [`Rule::to_json`]; `None` when a field is missing or of the wrong type.
    pub fn from_json(v: &Value) -> Option<Rule> {
        let date = |k: &str| -> Option<Option<NaiveDate>> {
            match v.get(k) {
                None | Some(Value::Null) => Some(None),
                Some(Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(Some),
                _ => None,
            }
        };
        let opt_i64 = |x: Option<&Value>| -> Option<Option<i64>> {
            match x {
                None | Some(Value::Null) => Some(None),
                Some(n) => n.as_i64().map(Some),
            }
        };
        let brackets = v
            .get("brackets")?
            .as_array()?
            .iter()
            .map(|b| Some(Bracket { upto: opt_i64(b.get("upto"))?, rate: b.get("rate")?.as_i64()? }))
            .collect::<Option<Vec<_>>>()?;
        let rule = Rule {
            code: v.get("code")?.as_str()?.to_string(),
            valid_from: date("validFrom")?,
            valid_to: date("validTo")?,
            exempt_upto: opt_i64(v.get("exemptUpto"))?,
            tranche: v.get("tranche")?.as_i64()?,
            brackets,
            minimum: v.get("minimum")?.as_i64()?,
            cap: opt_i64(v.get("cap"))?,
        };
        check_rule(&rule).ok()?;
        Some(rule)
    }
}

/// A rule is usable: positive tranche, at least one bracket, the last one open-ended, bounds increasing, amounts ≥ 0.
pub fn check_rule(r: &Rule) -> Result<(), Rejection> {
    let bad = || crate::money::valeur_hors_limites().with_details(json!({"rule": r.code}));
    if r.tranche <= 0 || r.minimum < 0 || r.cap.is_some_and(|c| c < r.minimum) || r.exempt_upto.is_some_and(|e| e < 0) {
        return Err(bad());
    }
    if r.brackets.last().is_none_or(|b| b.upto.is_some()) || r.brackets.iter().any(|b| b.rate < 0) {
        return Err(bad());
    }
    let bounds: Vec<i64> = r.brackets.iter().filter_map(|b| b.upto).collect();
    if bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad());
    }
    if let (Some(f), Some(t)) = (r.valid_from, r.valid_to)
        && t < f
    {
        return Err(bad());
    }
    Ok(())
}

/// The shipped table (§11): TIMBRE_2025 from 2025-01-01, TIMBRE_AVANT_2025 until 2024-12-31.
pub fn default_rules() -> Vec<Rule> {
    let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd);
    vec![
        Rule {
            code: "TIMBRE_AVANT_2025".into(),
            valid_from: None,
            valid_to: d(2024, 12, 31),
            exempt_upto: None,
            tranche: 10_000,
            brackets: vec![Bracket { upto: None, rate: 100 }],
            minimum: 500,
            cap: Some(1_000_000),
        },
        Rule {
            code: "TIMBRE_2025".into(),
            valid_from: d(2025, 1, 1),
            valid_to: None,
            exempt_upto: Some(30_000),
            tranche: 10_000,
            brackets: vec![
                Bracket { upto: Some(3_000_000), rate: 100 },
                Bracket { upto: Some(10_000_000), rate: 150 },
                Bracket { upto: None, rate: 200 },
            ],
            minimum: 500,
            cap: None,
        },
    ]
}

/// The payment methods of an invoice (§10.1); only ESPECES bears the timbre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Especes,
    Cheque,
    Virement,
}

impl Method {
    pub const ALL: [Method; 3] = [Method::Especes, Method::Cheque, Method::Virement];

    pub fn code(self) -> &'static str {
        match self {
            Method::Especes => "ESPECES",
            Method::Cheque => "CHEQUE",
            Method::Virement => "VIREMENT",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.code() == s.trim().to_uppercase())
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            Method::Especes => "Espèces",
            Method::Cheque => "Chèque",
            Method::Virement => "Virement",
        }
    }
}

/// How a timbre was computed (the timbre journal prints the rule and the tranches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub rule: Option<String>,
    pub tranches: i64,
    pub rate: i64,
    pub amount: i64,
}

/// The rule in force on `d` (the first whose validity contains it).
pub fn rule_on(rules: &[Rule], d: NaiveDate) -> Option<&Rule> {
    rules.iter().find(|r| r.applies_on(d))
}

/// `timbre(ttc, method, date)` with its working. No rule in force on the date means no timbre.
pub fn stamp(ttc: i64, method: Method, d: NaiveDate, rules: &[Rule]) -> Stamp {
    let none = |rule: Option<&Rule>| Stamp { rule: rule.map(|r| r.code.clone()), tranches: 0, rate: 0, amount: 0 };
    if method != Method::Especes || ttc <= 0 {
        return none(None);
    }
    let Some(r) = rule_on(rules, d) else { return none(None) };
    if r.exempt_upto.is_some_and(|e| ttc <= e) {
        return none(Some(r));
    }
    let tranches = (ttc + r.tranche - 1) / r.tranche;
    let rate = r.brackets.iter().find(|b| b.upto.is_none_or(|u| ttc <= u)).map_or(0, |b| b.rate);
    let mut amount = tranches.saturating_mul(rate).max(r.minimum);
    if let Some(cap) = r.cap {
        amount = amount.min(cap);
    }
    Stamp { rule: Some(r.code.clone()), tranches, rate, amount }
}

/// The timbre alone, in centimes.
pub fn timbre(ttc: i64, method: Method, d: NaiveDate, rules: &[Rule]) -> i64 {
    stamp(ttc, method, d, rules).amount
}

/// A new rule version may only start after the latest validated invoice date (`REGLE_RETROACTIVE`).
pub fn check_new_rule(r: &Rule, latest_invoice: Option<NaiveDate>) -> Result<(), Rejection> {
    check_rule(r)?;
    if let Some(last) = latest_invoice
        && r.valid_from.is_none_or(|f| f <= last)
    {
        return Err(Rejection::new(
            "REGLE_RETROACTIVE",
            409,
            format!(
                "Une règle ne peut pas prendre effet avant la dernière facture validée ({}).",
                crate::stock::fmt_date(last)
            ),
        )
        .with_details(json!({"date": last})));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn every_worked_example_of_the_table() {
        let rules = default_rules();
        // (#, date, TTC centimes, method, tranches, timbre centimes) — DOMAIN.md §11.
        let cases = [
            (1, "2025-03-01", 25_000, Method::Especes, 0, 0),
            (2, "2025-03-01", 30_000, Method::Especes, 0, 0),
            (3, "2025-03-01", 30_100, Method::Especes, 4, 500),
            (4, "2025-03-01", 50_100, Method::Especes, 6, 600),
            (5, "2025-03-01", 119_000, Method::Especes, 12, 1_200),
            (6, "2025-03-01", 2_344_300, Method::Especes, 235, 23_500),
            (7, "2025-03-01", 3_000_000, Method::Especes, 300, 30_000),
            (8, "2025-03-01", 3_000_050, Method::Especes, 301, 45_150),
            (9, "2025-03-01", 3_000_100, Method::Especes, 301, 45_150),
            (10, "2025-03-01", 5_000_000, Method::Especes, 500, 75_000),
            (11, "2025-03-01", 10_000_000, Method::Especes, 1_000, 150_000),
            (12, "2025-03-01", 10_000_001, Method::Especes, 1_001, 200_200),
            (13, "2025-03-01", 23_800_000, Method::Especes, 2_380, 476_000),
            (14, "2025-03-01", 95_000_000, Method::Especes, 9_500, 1_900_000),
            (15, "2025-03-01", 500_000_000, Method::Especes, 50_000, 10_000_000),
            (16, "2025-03-01", 23_800_000, Method::Cheque, 0, 0),
            (17, "2024-12-31", 25_000, Method::Especes, 3, 500),
            (18, "2024-12-31", 5_000_000, Method::Especes, 500, 50_000),
            (19, "2024-12-31", 200_000_000, Method::Especes, 20_000, 1_000_000),
        ];
        for (n, date, ttc, method, tranches, expected) in cases {
            let s = stamp(ttc, method, d(date), &rules);
            assert_eq!(s.amount, expected, "example {n}");
            assert_eq!(s.tranches, tranches, "example {n} tranches");
        }
        assert_eq!(timbre(2_344_300, Method::Virement, d("2025-03-01"), &rules), 0);
        assert_eq!(stamp(3_000_050, Method::Especes, d("2025-03-01"), &rules).rule.as_deref(), Some("TIMBRE_2025"));
        assert_eq!(stamp(25_000, Method::Especes, d("2024-12-31"), &rules).rule.as_deref(), Some("TIMBRE_AVANT_2025"));
    }

    #[test]
    fn monotone_in_ttc_within_a_bracket() {
        let rules = default_rules();
        let day = d("2025-06-01");
        for (lo, hi) in [(30_001, 3_000_000), (3_000_001, 10_000_000), (10_000_001, 60_000_000)] {
            let mut last = 0;
            let mut ttc = lo;
            while ttc <= hi {
                let t = timbre(ttc, Method::Especes, day, &rules);
                assert!(t >= last, "timbre fell at {ttc}");
                last = t;
                ttc += 7_919;
            }
        }
    }

    #[test]
    fn rules_survive_their_json_and_bad_ones_are_refused() {
        for r in default_rules() {
            assert_eq!(Rule::from_json(&r.to_json()), Some(r.clone()));
        }
        let mut r = default_rules().remove(1);
        r.brackets.pop();
        assert!(Rule::from_json(&r.to_json()).is_none(), "the last bracket must be open");
        let mut r = default_rules().remove(1);
        r.tranche = 0;
        assert!(check_rule(&r).is_err());
    }

    #[test]
    fn a_new_rule_cannot_reach_back_before_the_last_invoice() {
        let mut r = default_rules().remove(1);
        r.code = "TIMBRE_2026".into();
        r.valid_from = Some(d("2026-01-01"));
        assert_eq!(check_new_rule(&r, Some(d("2026-01-01"))).unwrap_err().code, "REGLE_RETROACTIVE");
        assert!(check_new_rule(&r, Some(d("2025-12-31"))).is_ok());
        assert!(check_new_rule(&r, None).is_ok());
    }

    #[test]
    fn methods_read_back() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.code()), Some(m));
        }
        assert_eq!(Method::parse(" especes "), Some(Method::Especes));
        assert_eq!(Method::parse("CB"), None);
    }
}
