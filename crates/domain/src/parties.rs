//! Identifier validation of suppliers, clients and the company (DOMAIN.md §4.2). Spaces and dots are stripped before
//! checking; the normalised value is what gets stored.

use serde_json::json;

use crate::rejection::Rejection;

/// A value that passed, possibly with a warning that is shown but does not refuse the command.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub value: String,
    pub warning: Option<Rejection>,
}

fn strip(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && *c != '.').collect()
}

fn fifteen_digits(raw: &str, code: &'static str, champ: &str) -> Result<String, Rejection> {
    let v = strip(raw);
    if v.len() == 15 && v.chars().all(|c| c.is_ascii_digit()) && v.chars().any(|c| c != '0') {
        Ok(v)
    } else {
        Err(Rejection::new(code, 422, format!("{champ} invalide : 15 chiffres attendus, non tous nuls."))
            .with_details(json!({"champ": champ})))
    }
}

pub fn nif(raw: &str) -> Result<String, Rejection> {
    fifteen_digits(raw, "NIF_INVALIDE", "NIF")
}

pub fn nis(raw: &str) -> Result<String, Rejection> {
    fifteen_digits(raw, "NIS_INVALIDE", "NIS")
}

/// Article d'imposition: 11 digits; 6–10 or 12–20 accepted with `AI_FORMAT_INHABITUEL`.
pub fn ai(raw: &str) -> Result<Checked, Rejection> {
    let v = strip(raw);
    let n = v.len();
    if !v.chars().all(|c| c.is_ascii_digit()) || !(6..=20).contains(&n) {
        return Err(Rejection::new("AI_INVALIDE", 422, "Article d'imposition invalide : 6 à 20 chiffres attendus."));
    }
    let warning = (n != 11).then(|| {
        Rejection::new(
            "AI_FORMAT_INHABITUEL",
            200,
            format!("Format d'article d'imposition inhabituel ({n} chiffres au lieu de 11)."),
        )
        .with_details(json!({"n": n}))
    });
    Ok(Checked { value: v, warning })
}

/// Registre du commerce: upper-case, trimmed, runs of spaces collapsed; 5–30 of [A-Z0-9 /-] with a digit.
pub fn rc(raw: &str) -> Result<String, Rejection> {
    let v = raw.trim().to_uppercase().split_whitespace().collect::<Vec<_>>().join(" ");
    let ok = (5..=30).contains(&v.chars().count())
        && v.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, ' ' | '/' | '-'))
        && v.chars().any(|c| c.is_ascii_digit());
    if ok { Ok(v) } else { Err(Rejection::new("RC_INVALIDE", 422, "Numéro de registre du commerce invalide.")) }
}

/// Algerian phone numbers: `+213` / `00213` become `0`; mobile `0[5-7]` + 8 digits, landline `0[2-4]` + 7 or 8.
pub fn phone(raw: &str) -> Result<String, Rejection> {
    let mut v: String = raw.chars().filter(|c| !c.is_whitespace() && !matches!(c, '.' | '-' | '(' | ')')).collect();
    if let Some(rest) = v.strip_prefix("+213").or_else(|| v.strip_prefix("00213")) {
        v = format!("0{rest}");
    }
    let digits = v.chars().all(|c| c.is_ascii_digit());
    let b = v.as_bytes();
    let mobile = digits && v.len() == 10 && b[0] == b'0' && (b'5'..=b'7').contains(&b[1]);
    let landline = digits && (v.len() == 9 || v.len() == 10) && b[0] == b'0' && (b'2'..=b'4').contains(&b[1]);
    if mobile || landline {
        Ok(v)
    } else {
        Err(Rejection::new("TELEPHONE_INVALIDE", 422, "Numéro de téléphone invalide."))
    }
}

pub fn email(raw: &str) -> Result<String, Rejection> {
    crate::identity::normalize_email(raw).ok_or_else(Rejection::email_invalide)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_3_phones() {
        assert_eq!(phone("+213 661 23 45 67").unwrap(), "0661234567");
        assert_eq!(phone("0812345678").unwrap_err().code, "TELEPHONE_INVALIDE");
        assert_eq!(phone("023 45 67 89").unwrap(), "023456789");
        assert_eq!(phone("+213 555 12 34 56").unwrap(), "0555123456");
        assert_eq!(phone("021 45 67 89").unwrap(), "021456789");
        assert_eq!(phone("00213 (0)21-45.67.89").unwrap_err().code, "TELEPHONE_INVALIDE", "a kept 0 makes 11 digits");
        assert_eq!(phone("0021321456789").unwrap(), "021456789");
        assert!(phone("").is_err());
    }

    #[test]
    fn scenario_4_tax_identifiers() {
        assert_eq!(nif("0016 1234 5678 901").unwrap(), "001612345678901");
        assert_eq!(nif("000000000000000").unwrap_err().code, "NIF_INVALIDE");
        assert_eq!(nif("00161234567890").unwrap_err().message, "NIF invalide : 15 chiffres attendus, non tous nuls.");
        assert_eq!(nis("1.9981.6010.0123.45").unwrap(), "199816010012345");
        let a = ai("1601234").unwrap();
        assert_eq!(a.value, "1601234");
        assert_eq!(a.warning.unwrap().message, "Format d'article d'imposition inhabituel (7 chiffres au lieu de 11).");
        assert_eq!(ai("16012345678").unwrap().warning, None);
        assert_eq!(ai("12345").unwrap_err().code, "AI_INVALIDE");
        assert_eq!(ai("1601234567A").unwrap_err().code, "AI_INVALIDE");
    }

    #[test]
    fn scenario_5_trade_register() {
        assert_eq!(rc("25 b  1204921 16/00").unwrap(), "25 B 1204921 16/00");
        assert_eq!(rc("B*12").unwrap_err().code, "RC_INVALIDE");
        assert_eq!(rc("ABCDEF").unwrap_err().code, "RC_INVALIDE", "at least one digit");
        assert_eq!(rc("16/00-0123456 B 05").unwrap(), "16/00-0123456 B 05");
    }
}
