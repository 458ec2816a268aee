//! Request ids (PLATFORM.md §2.2): an incoming `X-Request-Id` is kept only if it matches `^[A-Za-z0-9._:-]{1,128}$`.

pub fn is_acceptable(candidate: &str) -> bool {
    (1..=128).contains(&candidate.len())
        && candidate.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::is_acceptable;

    #[test]
    fn pattern_of_the_contract() {
        assert!(is_acceptable("0195a3c2-7f1e-7c3a-9b1d-2f4e5a6b7c8d"));
        assert!(is_acceptable("nginx:abc.def_1"));
        assert!(!is_acceptable(""));
        assert!(!is_acceptable("with space"));
        assert!(!is_acceptable("<script>"));
        assert!(!is_acceptable(&"a".repeat(129)));
        assert!(is_acceptable(&"a".repeat(128)));
    }
}
