//! Money (centimes), quantities (milli-units) and rates (basis points): the arithmetic of DOMAIN.md §0.1 and the
//! French display formats of UI.md §1.4. Never a float.

use crate::rejection::Rejection;

/// `round_div(n, d) = (n + d/2) / d`: round half-up for n ≥ 0, d > 0 (half away from zero for negatives).
pub fn round_div(n: i128, d: i128) -> i128 {
    if n >= 0 { (n + d / 2) / d } else { -((-n + d / 2) / d) }
}

pub fn valeur_hors_limites() -> Rejection {
    Rejection::new("VALEUR_HORS_LIMITES", 422, "Valeur hors limites.")
}

fn fit(v: i128) -> Result<i64, Rejection> {
    i64::try_from(v).map_err(|_| valeur_hors_limites())
}

/// Amount of a quantity at a price per base unit: `round_half_up(qty_milli × price_c / 1000)`, in i128.
pub fn amount(qty_milli: i64, price_c: i64) -> Result<i64, Rejection> {
    fit(round_div(qty_milli as i128 * price_c as i128, 1000))
}

/// A rate applied to an amount: `round_half_up(amount_c × rate_bp / 10 000)`.
pub fn apply_rate(amount_c: i64, rate_bp: i32) -> Result<i64, Rejection> {
    fit(round_div(amount_c as i128 * rate_bp as i128, 10_000))
}

/// Checked sum of amounts (a total of lines).
pub fn sum(values: impl IntoIterator<Item = i64>) -> Result<i64, Rejection> {
    fit(values.into_iter().map(i128::from).sum())
}

/// `1 234 567` with narrow no-break spaces (UI.md §1.4).
pub fn group_thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202F}');
        }
        out.push(ch);
    }
    out
}

/// `1 234 567,89 DA`: narrow no-break spaces between thousands, a comma, a no-break space before `DA`, U+2212 for
/// negatives.
pub fn fmt_money(c: i64) -> String {
    let sign = if c < 0 { "\u{2212}" } else { "" };
    let a = (c as i128).unsigned_abs();
    format!("{sign}{},{:02}\u{00A0}DA", group_thousands(a / 100), a % 100)
}

/// Parses what users type for money: `1234,5`, `1 234,50`, `1234.50`, `1 234` (spaces of any kind as separators).
/// At most two decimals; `None` when it is not a non-negative amount.
pub fn parse_money(input: &str) -> Option<i64> {
    let s: String = input.chars().filter(|c| !c.is_whitespace() && *c != '\u{202F}' && *c != '\u{00A0}').collect();
    let s = s.strip_suffix("DA").unwrap_or(&s).replace(',', ".");
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    if int.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 2
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = int.parse().ok()?;
    let cents: i64 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(cents)
}

/// Parses a quantity typed in base units (`12,5` kg → 12 500), at most three decimals.
/// A quantity as a form field shows it for editing — `600`, `12,5`, `0,125` — which [`parse_qty`] reads back.
pub fn fmt_qty_input(milli: i64) -> String {
    let (whole, frac) = (milli / 1000, (milli % 1000).abs());
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:03}");
    format!("{whole},{}", frac.trim_end_matches('0'))
}

pub fn parse_qty(input: &str) -> Option<i64> {
    let s: String = input.chars().filter(|c| !c.is_whitespace() && *c != '\u{202F}' && *c != '\u{00A0}').collect();
    let s = s.replace(',', ".");
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    if int.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 3
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = int.parse().ok()?;
    let milli: i64 = format!("{frac:0<3}").parse().ok()?;
    whole.checked_mul(1000)?.checked_add(milli)
}

/// A rate in basis points: `19 %` (`decimals` 0), `2,00 %` (2), `90,0 %` (1).
pub fn fmt_rate(bp: i64, decimals: u32) -> String {
    let sign = if bp < 0 { "\u{2212}" } else { "" };
    let a = bp.unsigned_abs();
    let whole = a / 100;
    let frac = a % 100;
    match decimals {
        0 => format!("{sign}{}\u{202F}%", (a + 50) / 100),
        1 => {
            let tenths = (a + 5) / 10;
            format!("{sign}{},{}\u{202F}%", tenths / 10, tenths % 10)
        }
        _ => format!("{sign}{whole},{frac:02}\u{202F}%"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_div_matches_the_domain_examples() {
        assert_eq!(round_div(2500, 1000), 3);
        assert_eq!(round_div(2499, 1000), 2);
        assert_eq!(amount(3000, 133_333).unwrap(), 399_999);
    }

    #[test]
    fn scenario_1_and_2_rounding_once_per_line() {
        // 1.5 kg × 333.33 DA/kg → 49 999.5 c → 50 000 c.
        assert_eq!(amount(1500, 33_333).unwrap(), 50_000);
        // HT 3 333.33 DA at 9 % → 29 999.97 c → 30 000 c; HT 4 100.00 at 19 % → 779.00.
        assert_eq!(apply_rate(333_333, 900).unwrap(), 30_000);
        assert_eq!(apply_rate(410_000, 1900).unwrap(), 77_900);
        // Reception example of §6.3: 100 kg at 50.00 DA, 9 % → HT 500 000 c, TVA 45 000 c.
        assert_eq!(amount(100_000, 5_000).unwrap(), 500_000);
        assert_eq!(apply_rate(500_000, 900).unwrap(), 45_000);
    }

    #[test]
    fn overflow_is_a_rejection_not_a_wrap() {
        assert_eq!(amount(i64::MAX, i64::MAX).unwrap_err().code, "VALEUR_HORS_LIMITES");
        assert_eq!(sum([i64::MAX, 1]).unwrap_err().code, "VALEUR_HORS_LIMITES");
        assert_eq!(sum([1, 2, 3]).unwrap(), 6);
    }

    #[test]
    fn money_reads_the_french_way_and_parses_what_users_type() {
        assert_eq!(fmt_money(123_456_789), "1\u{202F}234\u{202F}567,89\u{00A0}DA");
        assert_eq!(fmt_money(-125_000), "\u{2212}1\u{202F}250,00\u{00A0}DA");
        assert_eq!(fmt_money(5), "0,05\u{00A0}DA");
        assert_eq!(parse_money("1234,5"), Some(123_450));
        assert_eq!(parse_money("1 234,50"), Some(123_450));
        assert_eq!(parse_money("1234.50"), Some(123_450));
        assert_eq!(parse_money("1\u{202F}234"), Some(123_400));
        for bad in ["", "-5", "12,345", "abc", "1,2,3"] {
            assert_eq!(parse_money(bad), None, "{bad}");
        }
        assert_eq!(parse_qty("12,5"), Some(12_500));
        assert_eq!(parse_qty("0,001"), Some(1));
        assert_eq!(parse_qty("1,0001"), None);
    }

    #[test]
    fn rates_read_the_french_way() {
        assert_eq!(fmt_rate(1900, 0), "19\u{202F}%");
        assert_eq!(fmt_rate(200, 2), "2,00\u{202F}%");
        assert_eq!(fmt_rate(9000, 1), "90,0\u{202F}%");
        assert_eq!(fmt_rate(150, 2), "1,50\u{202F}%");
    }

    #[test]
    fn quantities_for_a_form_field_read_back() {
        for (milli, shown) in [(600_000, "600"), (12_500, "12,5"), (125, "0,125"), (1_000_010, "1000,01")] {
            assert_eq!(fmt_qty_input(milli), shown);
            assert_eq!(parse_qty(shown), Some(milli));
        }
    }
}
