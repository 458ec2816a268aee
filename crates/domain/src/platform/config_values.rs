//! Parsing of configuration values (PLATFORM.md §3.1): durations accept `900`, `15m`, `1d`; sizes accept `2MiB`.

/// Parses a duration in seconds: a bare number is seconds, or a number followed by `s`, `m`, `h` or `d`.
pub fn parse_duration_secs(raw: &str) -> Result<u64, String> {
    let s = raw.trim();
    let (digits, factor) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (s, 1),
        Some((i, _)) => {
            let factor = match &s[i..] {
                "s" => 1,
                "m" => 60,
                "h" => 3_600,
                "d" => 86_400,
                _ => return Err("durée attendue, ex. 900, 20s, 15m, 1d".into()),
            };
            (&s[..i], factor)
        }
    };
    let n: u64 = digits.parse().map_err(|_| "durée attendue, ex. 900, 20s, 15m, 1d".to_string())?;
    n.checked_mul(factor).ok_or_else(|| "durée trop grande".to_string())
}

/// Parses a size in bytes: a bare number is bytes, or a number followed by `B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`
/// (both spellings mean powers of 1024, which is what an operator writing `2MB` means for a body limit).
pub fn parse_size_bytes(raw: &str) -> Result<u64, String> {
    let s = raw.trim();
    let err = || "taille attendue, ex. 2MiB, 512KiB, 1048576".to_string();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| err())?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "kib" | "k" => 1 << 10,
        "mb" | "mib" | "m" => 1 << 20,
        "gb" | "gib" | "g" => 1 << 30,
        _ => return Err(err()),
    };
    n.checked_mul(factor).ok_or_else(err)
}

/// Parses a positive integer (`> 0`).
pub fn parse_positive(raw: &str) -> Result<u64, String> {
    match raw.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("entier > 0 attendu".into()),
    }
}

/// Parses a boolean written `true/false`, `1/0`, `yes/no`, `oui/non`.
pub fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "oui" | "on" => Ok(true),
        "false" | "0" | "no" | "non" | "off" => Ok(false),
        _ => Err("booléen attendu (true ou false)".into()),
    }
}

/// A secret given in the configuration must be long enough and not a placeholder (PLATFORM.md §3.2, JWT_SECRET).
pub fn check_secret(raw: &str) -> Result<(), String> {
    let lower = raw.to_ascii_lowercase();
    if raw.len() < 32 {
        return Err("au moins 32 caractères attendus".into());
    }
    if ["change", "secret", "example"].iter().any(|p| lower.starts_with(p)) {
        return Err("valeur d'exemple refusée, générez une vraie clé".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_the_documented_spellings() {
        assert_eq!(parse_duration_secs("900"), Ok(900));
        assert_eq!(parse_duration_secs("15m"), Ok(900));
        assert_eq!(parse_duration_secs("1d"), Ok(86_400));
        assert_eq!(parse_duration_secs("20s"), Ok(20));
        assert_eq!(parse_duration_secs("2h"), Ok(7_200));
        assert!(parse_duration_secs("abc").is_err());
        assert!(parse_duration_secs("15x").is_err());
        assert!(parse_duration_secs("").is_err());
        assert!(parse_duration_secs("m").is_err());
    }

    #[test]
    fn sizes_are_binary_multiples() {
        assert_eq!(parse_size_bytes("2MiB"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_size_bytes("10MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size_bytes("64MB"), Ok(64 * 1024 * 1024));
        assert_eq!(parse_size_bytes("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size_bytes("1024"), Ok(1024));
        assert!(parse_size_bytes("lots").is_err());
        assert!(parse_size_bytes("2TB").is_err());
    }

    #[test]
    fn positive_integers_refuse_zero_and_words() {
        assert_eq!(parse_positive("200"), Ok(200));
        assert!(parse_positive("0").is_err());
        assert!(parse_positive("abc").is_err());
        assert!(parse_positive("-3").is_err());
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("false"), Ok(false));
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert!(parse_bool("peut-être").is_err());
    }

    #[test]
    fn placeholder_and_short_secrets_are_refused() {
        assert!(check_secret("short").is_err());
        assert!(check_secret("change-me-change-me-change-me-change-me").is_err());
        assert!(check_secret("secretsecretsecretsecretsecretsecret").is_err());
        assert!(check_secret("q8Jf0c1VbX9mN2pL7rT4sW6yZ3aE5dG8hK1").is_ok());
    }
}
