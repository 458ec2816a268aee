//! Argon2id hashing (PLATFORM.md §4.4) on the blocking pool, at most one hash per core at a time; a request that
//! waits more than 5 s for its turn gets 503 rather than piling up.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::platform::errors::ApiError;

/// m = 19 456 KiB, t = 2, p = 1: the OWASP minimum for argon2id; ≈ 15 ms per hash on one core of the reference
/// machine, ≈ 18 ms for a whole login (docs/BENCHMARKS.md): two cores sustain 70–85 logins/s, and a guesser gets
/// about 65 tries per second per core before the lockout and the limiter stop them anyway.
pub const M_COST: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(M_COST, T_COST, P_COST, None).expect("valid params"))
}

static SLOTS: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2))));

/// The hash unknown e-mails are verified against, so both failures cost the same work.
static DUMMY: LazyLock<String> = LazyLock::new(|| hash_now("mot de passe factice, jamais valide !"));

/// Computes the dummy hash ahead of the first login (called at start-up).
pub fn warm_up() {
    LazyLock::force(&DUMMY);
}

pub fn hash_now(password: &str) -> String {
    let salt = SaltString::encode_b64(&crate::auth::tokens::random_bytes::<16>()).expect("16-byte salt");
    argon2().hash_password(password.as_bytes(), &salt).expect("argon2 hashing").to_string()
}

/// Verifies and tells whether the stored hash uses older parameters (to re-hash after a successful login).
pub fn verify_now(password: &str, phc: &str) -> (bool, bool) {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return (false, false);
    };
    let ok = argon2().verify_password(password.as_bytes(), &parsed).is_ok();
    let current = parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed)
            .is_ok_and(|p| p.m_cost() == M_COST && p.t_cost() == T_COST && p.p_cost() == P_COST);
    (ok, ok && !current)
}

async fn on_pool<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let permit = tokio::time::timeout(Duration::from_secs(5), SLOTS.clone().acquire_owned())
        .await
        .map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_SATURE",
                "Serveur saturé, réessayez dans quelques instants.",
            )
            .with_retry_after(5)
        })?
        .map_err(|_| ApiError::internal())?;
    let out = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .map_err(|_| ApiError::internal())?;
    Ok(out)
}

pub async fn hash(password: String) -> Result<String, ApiError> {
    on_pool(move || hash_now(&password)).await
}

/// `(valid, needs_rehash)`; `phc = None` verifies against the dummy hash and is never valid.
pub async fn verify(password: String, phc: Option<String>) -> Result<(bool, bool), ApiError> {
    on_pool(move || match phc {
        Some(h) => verify_now(&password, &h),
        None => {
            let _ = verify_now(&password, &DUMMY);
            (false, false)
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_phc_with_the_chosen_parameters() {
        let h = hash_now("Fromage#2025!");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(verify_now("Fromage#2025!", &h), (true, false));
        assert_eq!(verify_now("fromage#2025!", &h), (false, false));
        assert_ne!(h, hash_now("Fromage#2025!"), "salted");
    }

    #[test]
    fn older_parameters_are_flagged_for_rehash() {
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8192, 1, 1, None).unwrap());
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let h = weak.hash_password(b"Fromage#2025!", &salt).unwrap().to_string();
        assert_eq!(verify_now("Fromage#2025!", &h), (true, true));
        assert_eq!(verify_now("x", "pas un hash"), (false, false));
    }
}
