//! Token material: HS256 access tokens (PLATFORM.md §4.2), opaque refresh tokens stored as SHA-256, CSRF tokens,
//! one-time passwords. HS256 is a few lines over `hmac`; a JWT crate would bring every other algorithm with it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const ISSUER: &str = "manchengo";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// User id.
    pub sub: String,
    /// Session family id.
    pub sid: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub did: Option<String>,
    /// Informational: authorization reads the role from the database.
    pub role: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    /// Well signed but past `exp`: the client should refresh (`TOKEN_EXPIRED`).
    Expired,
    /// Malformed, wrong algorithm, wrong issuer or bad signature (`UNAUTHENTICATED`).
    Invalid,
}

const HEADER: &str = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

fn sign(secret: &str, data: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

pub fn encode(claims: &Claims, secret: &str) -> String {
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let data = format!("{}.{}", B64.encode(HEADER), B64.encode(payload));
    let sig = B64.encode(sign(secret, &data));
    format!("{data}.{sig}")
}

/// Verifies the signature against the current key, then the previous one (key rotation), then the claims.
pub fn decode(token: &str, secrets: &[&str], now: i64) -> Result<Claims, JwtError> {
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Invalid);
    };
    let header: serde_json::Value =
        B64.decode(h).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or(JwtError::Invalid)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(JwtError::Invalid);
    }
    let sig = B64.decode(s).map_err(|_| JwtError::Invalid)?;
    let data = &token[..h.len() + 1 + p.len()];
    let valid = secrets.iter().any(|k| {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(k.as_bytes()).expect("any key length");
        mac.update(data.as_bytes());
        mac.verify_slice(&sig).is_ok()
    });
    if !valid {
        return Err(JwtError::Invalid);
    }
    let claims: Claims = B64.decode(p).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or(JwtError::Invalid)?;
    if claims.iss != ISSUER {
        return Err(JwtError::Invalid);
    }
    if claims.exp <= now {
        return Err(JwtError::Expired);
    }
    Ok(claims)
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("system randomness");
    b
}

/// `mcr_` + 32 random bytes, base64url.
pub fn new_refresh_token() -> String {
    format!("mcr_{}", B64.encode(random_bytes::<32>()))
}

/// 32 random bytes, base64url (43 characters).
pub fn new_csrf_token() -> String {
    B64.encode(random_bytes::<32>())
}

pub fn sha256_hex(s: &str) -> String {
    domain::audit::hex(&Sha256::digest(s.as_bytes()))
}

/// A one-time password that satisfies the policy (printed once by `reset-password`, shown once after creation):
/// 16 characters from unambiguous letters and digits plus one symbol of each required class.
pub fn one_time_password() -> String {
    const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGIT: &[u8] = b"23456789";
    const OTHER: &[u8] = b"#%+=-_!?";
    let r = random_bytes::<16>();
    let mut out = String::with_capacity(16);
    for (i, b) in r.iter().enumerate() {
        let set = match i % 4 {
            0 => UPPER,
            1 => LOWER,
            2 => DIGIT,
            _ => {
                if i == 3 || i == 11 {
                    OTHER
                } else {
                    LOWER
                }
            }
        };
        out.push(set[*b as usize % set.len()] as char);
    }
    out
}

/// Constant-time comparison (CSRF tokens).
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "u1".into(),
            sid: "s1".into(),
            did: None,
            role: "ADMIN".into(),
            iat: 1000,
            exp,
        }
    }

    #[test]
    fn tokens_round_trip_and_expire() {
        let t = encode(&claims(2000), "k1-0123456789abcdef0123456789abcdef");
        assert_eq!(decode(&t, &["k1-0123456789abcdef0123456789abcdef"], 1999), Ok(claims(2000)));
        assert_eq!(decode(&t, &["k1-0123456789abcdef0123456789abcdef"], 2000), Err(JwtError::Expired));
        // The previous key still verifies during a rotation.
        assert_eq!(
            decode(&t, &["new-key-0123456789abcdef0123456789ab", "k1-0123456789abcdef0123456789abcdef"], 1500)
                .map(|c| c.sub),
            Ok("u1".into())
        );
    }

    #[test]
    fn forged_tokens_are_invalid() {
        let key = "k1-0123456789abcdef0123456789abcdef";
        let t = encode(&claims(2000), key);
        assert_eq!(decode(&t, &["another-key-0123456789abcdef01234567"], 1500), Err(JwtError::Invalid));
        // Payload swapped for an ADMIN of someone else's choosing, signature kept.
        let parts: Vec<&str> = t.split('.').collect();
        let mut forged = claims(9999);
        forged.sub = "u2".into();
        let evil = format!("{}.{}.{}", parts[0], B64.encode(serde_json::to_vec(&forged).unwrap()), parts[2]);
        assert_eq!(decode(&evil, &[key], 1500), Err(JwtError::Invalid));
        // alg=none is refused.
        let none = format!("{}.{}.", B64.encode("{\"alg\":\"none\"}"), parts[1]);
        assert_eq!(decode(&none, &[key], 1500), Err(JwtError::Invalid));
        assert_eq!(decode("pas-un-jeton", &[key], 1500), Err(JwtError::Invalid));
    }

    #[test]
    fn refresh_and_csrf_tokens_have_the_documented_shape() {
        let r = new_refresh_token();
        assert!(r.starts_with("mcr_") && r.len() == 47, "{r}");
        assert_eq!(new_csrf_token().len(), 43);
        assert_ne!(new_csrf_token(), new_csrf_token());
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn one_time_passwords_satisfy_the_policy() {
        for _ in 0..50 {
            let p = one_time_password();
            assert!(domain::identity::password_failures(&p, None, "o@y.dz").is_empty(), "{p}");
        }
    }
}
