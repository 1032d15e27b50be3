//! Payment passwords: policy, argon2id hashing and verification.
//!
//! Hashing is deliberately slow (OWASP's argon2id minimum: 19 MiB, t=2, p=1), so callers
//! run it on a blocking thread via [`hash_payment_password`] / [`verify_password`].

use std::collections::HashSet;
use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

/// Memory cost in KiB: OWASP's minimum for argon2id with t=2, p=1.
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
pub const ARGON2_ITERATIONS: u32 = 2;
pub const ARGON2_PARALLELISM: u32 = 1;

/// The most a stored hash may cost to verify. Login hashes come from the marketplace
/// and are verified with the parameters they carry, on every activation: without caps
/// one synced hash (m = 4 GiB, say) could take a function down or run up its bill.
/// 64 MiB fits the functions' memory with room; t and p cap the time.
pub const MAX_VERIFY_MEMORY_KIB: u32 = 64 * 1024;
pub const MAX_VERIFY_ITERATIONS: u32 = 10;
pub const MAX_VERIFY_PARALLELISM: u32 = 4;

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 64;

/// A payment password as the member typed it. It is never logged (Debug is redacted)
/// and is dropped as soon as it is hashed or verified.
#[derive(Clone)]
pub struct PaymentPassword(SecretString);

impl std::fmt::Debug for PaymentPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentPassword([REDACTED])")
    }
}

impl PaymentPassword {
    pub fn new(text: String) -> PaymentPassword {
        PaymentPassword(SecretString::from(text))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// Why a new payment password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyViolation {
    TooShort,
    TooLong,
    Common,
}

/// Checks length and the shipped list of common passwords. The login-password check
/// needs the member's hash and runs separately.
pub fn check_policy(password: &PaymentPassword) -> Result<(), PolicyViolation> {
    let text = password.expose();
    let chars = text.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(PolicyViolation::TooShort);
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(PolicyViolation::TooLong);
    }
    if common_passwords().contains(text.to_lowercase().as_str()) {
        return Err(PolicyViolation::Common);
    }
    Ok(())
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("../data/common-passwords.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

#[expect(clippy::expect_used, reason = "the parameters are constants, checked by a unit test")]
fn hasher() -> Argon2<'static> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM, None)
        .expect("argon2 parameters are constants within range");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password to an argon2id PHC string, on a blocking thread.
pub async fn hash_payment_password(password: PaymentPassword) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|_| PasswordError::WorkerFailed)?
}

/// The blocking form of [`hash_payment_password`].
pub fn hash_blocking(password: &PaymentPassword) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hashing)
}

/// Verifies a password against a stored PHC string (whatever argon2 parameters it was
/// made with), on a blocking thread.
pub async fn verify_password(password: PaymentPassword, phc: String) -> Result<bool, PasswordError> {
    tokio::task::spawn_blocking(move || verify_blocking(&password, &phc))
        .await
        .map_err(|_| PasswordError::WorkerFailed)?
}

/// The blocking form of [`verify_password`].
pub fn verify_blocking(password: &PaymentPassword, phc: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(|_| PasswordError::StoredHashInvalid)?;
    if !within_cost_caps(&parsed) {
        return Err(PasswordError::StoredHashInvalid);
    }
    Ok(Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok())
}

/// True when `phc` is an argon2id PHC string this code can verify against.
pub fn is_argon2id_phc(phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => {
            parsed.algorithm.as_str() == "argon2id"
                && parsed.hash.is_some()
                && parsed.salt.is_some()
                && within_cost_caps(&parsed)
        }
        Err(_) => false,
    }
}

/// Whether a hash's parameters are valid and within the verification cost caps.
fn within_cost_caps(parsed: &PasswordHash<'_>) -> bool {
    Params::try_from(parsed).is_ok_and(|params| {
        params.m_cost() <= MAX_VERIFY_MEMORY_KIB
            && params.t_cost() <= MAX_VERIFY_ITERATIONS
            && params.p_cost() <= MAX_VERIFY_PARALLELISM
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed")]
    Hashing,
    #[error("a stored password hash is not a valid PHC string")]
    StoredHashInvalid,
    #[error("the hashing worker thread failed")]
    WorkerFailed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_bounds_are_eight_and_sixty_four_characters() {
        let p = |s: &str| check_policy(&PaymentPassword::new(s.to_owned()));
        assert_eq!(p("Zq7!kx2"), Err(PolicyViolation::TooShort));
        assert_eq!(p("Zq7!kx2m"), Ok(()));
        assert_eq!(p(&"Zq7!".repeat(16)), Ok(()));
        assert_eq!(p(&format!("{}x", "Zq7!".repeat(16))), Err(PolicyViolation::TooLong));
        assert_eq!(p("Password123"), Err(PolicyViolation::Common));
        assert_eq!(p("12345678"), Err(PolicyViolation::Common));
    }

    #[test]
    fn hashes_are_argon2id_at_owasp_parameters_and_verify() {
        let password = PaymentPassword::new("correct horse battery".to_owned());
        let phc = hash_blocking(&password).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(is_argon2id_phc(&phc));
        assert!(verify_blocking(&password, &phc).unwrap());
        assert!(!verify_blocking(&PaymentPassword::new("wrong horse".to_owned()), &phc).unwrap());
    }

    #[test]
    fn only_argon2id_phc_strings_are_accepted_as_login_hashes() {
        assert!(!is_argon2id_phc("$2b$12$abcdefghijklmnopqrstuu"));
        assert!(!is_argon2id_phc("plain"));
        assert!(!is_argon2id_phc(
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
        ));
    }

    /// A synced login hash is verified on every activation with the parameters it
    /// carries: above these caps one activation could cost gigabytes or minutes.
    #[test]
    fn login_hashes_over_the_cost_caps_are_refused() {
        let salt_and_hash = "c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        let phc = |params: &str| format!("$argon2id$v=19${params}${salt_and_hash}");
        assert!(is_argon2id_phc(&phc("m=65536,t=10,p=4")), "at the caps");
        for over in [
            "m=65537,t=2,p=1",
            "m=4194304,t=2,p=1",
            "m=19456,t=11,p=1",
            "m=19456,t=2,p=5",
        ] {
            assert!(!is_argon2id_phc(&phc(over)), "{over}");
            assert_eq!(
                verify_blocking(&PaymentPassword::new("x".to_owned()), &phc(over)),
                Err(PasswordError::StoredHashInvalid),
                "a stored hash over the caps is never run: {over}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let password = PaymentPassword::new("s3cret-pass".to_owned());
        assert_eq!(format!("{password:?}"), "PaymentPassword([REDACTED])");
    }

    /// The list file's comment lines are not passwords (and blank lines are skipped).
    #[test]
    fn the_common_list_is_its_entries_only() {
        let list = include_str!("../data/common-passwords.txt");
        let comment = list
            .lines()
            .find(|l| l.starts_with('#') && (PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&l.chars().count()))
            .expect("a comment line of a valid password's length");
        assert_eq!(check_policy(&PaymentPassword::new(comment.to_owned())), Ok(()));
        assert!(!common_passwords().contains(""));
        assert!(common_passwords().contains("00000000"));
    }

    #[test]
    fn a_phc_string_without_its_hash_or_salt_is_not_a_login_hash() {
        assert!(!is_argon2id_phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ"));
        assert!(!is_argon2id_phc("$argon2id$v=19$m=19456,t=2,p=1"));
    }

    #[tokio::test]
    async fn hashing_and_verifying_run_off_the_async_threads_with_the_same_results() {
        let password = PaymentPassword::new("correct horse battery".to_owned());
        let phc = hash_payment_password(password.clone()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(verify_password(password, phc.clone()).await, Ok(true));
        assert_eq!(
            verify_password(PaymentPassword::new("wrong".to_owned()), phc).await,
            Ok(false)
        );
        assert_eq!(
            verify_password(PaymentPassword::new("x".to_owned()), "plain".to_owned()).await,
            Err(PasswordError::StoredHashInvalid)
        );
    }
}
