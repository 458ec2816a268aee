//! Idempotency-Key (PLATFORM.md §2.5): what a repeated key gets.

use sha2::{Digest, Sha256};

/// SHA-256 (hex) of the canonical JSON of a request body: the same body in another key order hashes the same.
pub fn request_hash(body: &serde_json::Value) -> String {
    Sha256::digest(crate::canonical::to_string(body).as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Same route and body: the stored answer, no side effect.
    Replay,
    /// Same key, another body or route: `409 IDEMPOTENCE_CONFLIT`.
    Conflict,
}

pub fn verdict(stored_route: &str, stored_hash: &str, route: &str, hash: &str) -> Verdict {
    if stored_route == route && stored_hash == hash { Verdict::Replay } else { Verdict::Conflict }
}

/// A key must be a UUID (v4 or v7, PLATFORM.md §1).
pub fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
        && matches!(b[14], b'4' | b'7')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_body_in_another_order_replays_another_body_conflicts() {
        let a = request_hash(&json!({"lotNumber": "L1", "quantity": 20}));
        let b = request_hash(&json!({"quantity": 20, "lotNumber": "L1"}));
        assert_eq!(a, b);
        assert_eq!(verdict("/api/stock/losses", &a, "/api/stock/losses", &b), Verdict::Replay);
        let c = request_hash(&json!({"quantity": 21, "lotNumber": "L1"}));
        assert_eq!(verdict("/api/stock/losses", &a, "/api/stock/losses", &c), Verdict::Conflict);
        assert_eq!(verdict("/api/receptions", &a, "/api/stock/losses", &a), Verdict::Conflict);
    }

    #[test]
    fn keys_are_uuids_v4_or_v7() {
        assert!(valid_key("0192f0c1-8a7b-7c3d-9e4f-123456789abc"));
        assert!(valid_key("9b2f6c1e-3d4a-4b5c-8d6e-7f8091a2b3c4"));
        assert!(!valid_key("9b2f6c1e-3d4a-1b5c-8d6e-7f8091a2b3c4"), "v1");
        assert!(!valid_key("pas-une-cle"));
    }
}
