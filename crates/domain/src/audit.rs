//! The hash-chained audit log (DOMAIN.md §16, PLATFORM.md §16): what an entry holds, how its hash is computed and how
//! a chain is verified. Storage appends and reads; the rules live here.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Severity of an entry: ordinary business changes, or security events (failed logins, lockouts, refresh-token reuse,
/// refused accesses).
pub const INFO: &str = "INFO";
pub const SECURITY: &str = "SECURITY";

/// One entry, every field covered by the hash except `prev_hash` and `hash` themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: i64,
    /// RFC 3339 UTC, millisecond precision.
    pub at: String,
    pub actor_id: Option<String>,
    /// The actor's role, or `SYSTEM` for jobs and the CLI.
    pub actor_role: Option<String>,
    /// E-mail of the user or name of the job, as it was at the time.
    pub actor_label: Option<String>,
    pub device_id: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub severity: String,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub reason: Option<String>,
    pub command_id: Option<String>,
}

impl Entry {
    /// The JSON object that is canonicalised and hashed.
    pub fn to_json(&self) -> Value {
        json!({
            "seq": self.seq, "at": self.at, "actorId": self.actor_id, "actorRole": self.actor_role,
            "actorLabel": self.actor_label, "deviceId": self.device_id, "ip": self.ip, "requestId": self.request_id,
            "action": self.action, "severity": self.severity, "entityType": self.entity_type,
            "entityId": self.entity_id, "before": self.before, "after": self.after, "reason": self.reason,
            "commandId": self.command_id,
        })
    }

    /// SHA-256 (hex) of `prev_hash ‖ canonical JSON of the entry`.
    pub fn hash(&self, prev_hash: &str) -> String {
        let mut h = Sha256::new();
        h.update(prev_hash.as_bytes());
        h.update(crate::canonical::to_string(&self.to_json()).as_bytes());
        hex(&h.finalize())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// An entry as stored, with its chain fields.
#[derive(Debug, Clone)]
pub struct Stored {
    pub entry: Entry,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// A seq is missing or repeated (rows deleted or inserted by hand).
    Gap { expected: i64, found: i64 },
    /// `prev_hash` is not the hash of the entry before.
    Link { seq: i64 },
    /// The entry's content no longer matches its hash (a row was edited).
    Content { seq: i64 },
}

impl Break {
    pub fn seq(&self) -> i64 {
        match self {
            Break::Gap { found, .. } => *found,
            Break::Link { seq } | Break::Content { seq } => *seq,
        }
    }

    pub fn describe_fr(&self) -> String {
        match self {
            Break::Gap { expected, found } => format!("entrée {expected} manquante (trouvé {found})"),
            Break::Link { seq } => format!("entrée {seq} : le chaînage avec l'entrée précédente est rompu"),
            Break::Content { seq } => format!("entrée {seq} : le contenu ne correspond plus à son empreinte"),
        }
    }
}

/// Running verification over entries in seq order; start from the genesis or from a trusted (seq, hash).
#[derive(Debug, Clone)]
pub struct Verifier {
    pub next_seq: i64,
    pub last_hash: String,
    pub verified: u64,
}

impl Verifier {
    pub fn from_genesis() -> Verifier {
        Verifier { next_seq: 1, last_hash: GENESIS.into(), verified: 0 }
    }

    /// Continue after an entry taken as trusted (`check --audit --from SEQ` starts at its predecessor's hash).
    pub fn after(seq: i64, hash: &str) -> Verifier {
        Verifier { next_seq: seq + 1, last_hash: hash.into(), verified: 0 }
    }

    pub fn push(&mut self, s: &Stored) -> Result<(), Break> {
        if s.entry.seq != self.next_seq {
            return Err(Break::Gap { expected: self.next_seq, found: s.entry.seq });
        }
        if s.prev_hash != self.last_hash {
            return Err(Break::Link { seq: s.entry.seq });
        }
        if s.entry.hash(&s.prev_hash) != s.hash {
            return Err(Break::Content { seq: s.entry.seq });
        }
        self.next_seq += 1;
        self.last_hash = s.hash.clone();
        self.verified += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, action: &str) -> Entry {
        Entry {
            seq,
            at: "2025-03-14T07:31:02.000Z".into(),
            actor_id: Some("0195a3c2-7f1e-7c3a-9b1d-2f4e5a6b7c8d".into()),
            actor_role: Some("ADMIN".into()),
            actor_label: Some("k.benali@fromagerie.dz".into()),
            device_id: None,
            ip: Some("10.0.0.5".into()),
            request_id: Some("req-1".into()),
            action: action.into(),
            severity: INFO.into(),
            entity_type: Some("user".into()),
            entity_id: Some("u1".into()),
            before: None,
            after: Some(json!({"role": "COMMERCIAL", "email": "a@b.dz"})),
            reason: None,
            command_id: None,
        }
    }

    fn chain(n: i64) -> Vec<Stored> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|i| {
                let e = entry(i, "USER_CREATED");
                let hash = e.hash(&prev);
                let s = Stored { entry: e, prev_hash: prev.clone(), hash: hash.clone() };
                prev = hash;
                s
            })
            .collect()
    }

    #[test]
    fn hash_is_sha256_of_prev_and_canonical_entry() {
        let e = entry(1, "USER_CREATED");
        let canonical = crate::canonical::to_string(&e.to_json());
        assert!(canonical.starts_with("{\"action\":\"USER_CREATED\",\"actorId\":"));
        assert!(canonical.contains("\"after\":{\"email\":\"a@b.dz\",\"role\":\"COMMERCIAL\"}"));
        let mut h = Sha256::new();
        h.update(GENESIS.as_bytes());
        h.update(canonical.as_bytes());
        assert_eq!(e.hash(GENESIS), hex(&h.finalize()));
        assert_eq!(e.hash(GENESIS).len(), 64);
        assert_ne!(e.hash(GENESIS), entry(1, "USER_UPDATED").hash(GENESIS));
    }

    #[test]
    fn an_intact_chain_verifies() {
        let mut v = Verifier::from_genesis();
        for s in &chain(5) {
            v.push(s).unwrap();
        }
        assert_eq!((v.verified, v.next_seq), (5, 6));
    }

    #[test]
    fn edited_deleted_or_relinked_rows_are_named() {
        let mut rows = chain(5);
        rows[2].entry.after = Some(json!({"role": "ADMIN", "email": "a@b.dz"}));
        let mut v = Verifier::from_genesis();
        let err = rows.iter().try_for_each(|s| v.push(s)).unwrap_err();
        assert_eq!(err, Break::Content { seq: 3 });
        assert_eq!(v.verified, 2);

        let mut rows = chain(5);
        rows.remove(1);
        let mut v = Verifier::from_genesis();
        assert_eq!(rows.iter().try_for_each(|s| v.push(s)).unwrap_err(), Break::Gap { expected: 2, found: 3 });

        // Rewriting a row *and* its hash still breaks the link of the next one.
        let mut rows = chain(5);
        rows[1].entry.reason = Some("falsifié".into());
        rows[1].hash = rows[1].entry.hash(&rows[1].prev_hash);
        let mut v = Verifier::from_genesis();
        assert_eq!(rows.iter().try_for_each(|s| v.push(s)).unwrap_err(), Break::Link { seq: 3 });
    }

    #[test]
    fn verification_can_start_from_a_trusted_entry() {
        let rows = chain(4);
        let mut v = Verifier::after(2, &rows[1].hash);
        rows[2..].iter().try_for_each(|s| v.push(s)).unwrap();
        assert_eq!(v.verified, 2);
    }
}
