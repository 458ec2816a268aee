//! Release versions (PLATFORM.md §11.3): a binary runs on a schema only if it is at least the schema's
//! `min_reader_version`.

/// `major.minor.patch` as numbers; anything after a `-` or `+` is ignored; unreadable parts count as 0.
fn parts(v: &str) -> [u64; 3] {
    let core = v.trim().split(['-', '+']).next().unwrap_or_default();
    let mut out = [0; 3];
    for (i, p) in core.split('.').take(3).enumerate() {
        out[i] = p.parse().unwrap_or(0);
    }
    out
}

pub fn at_least(version: &str, min: &str) -> bool {
    parts(version) >= parts(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(at_least("0.1.0", "0.1.0"));
        assert!(at_least("0.10.0", "0.9.3"));
        assert!(!at_least("0.1.0", "0.2.0"));
        assert!(!at_least("1.2.3", "1.10.0"));
        assert!(at_least("2.0.0-rc1", "2.0.0"));
    }
}
