//! SMS verification codes: generation, keyed hashing and constant-time comparison.
//!
//! A code is stored only as HMAC-SHA256 under a secret from configuration, so a leaked
//! table does not reveal live codes (and 10^6 codes cannot be brute-forced without the key).

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::Rng;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::Sha256;

use crate::member::MemberId;

/// How long a code stays valid after it is sent.
pub const CODE_TTL_SECONDS: i64 = 30 * 60;
/// Least time between two sends to one member.
pub const RESEND_COOLDOWN_SECONDS: i64 = 60;
/// Most codes sent to one member in any rolling window of [`SEND_WINDOW_SECONDS`].
pub const MAX_SENDS_PER_WINDOW: usize = 5;
pub const SEND_WINDOW_SECONDS: i64 = 60 * 60;
/// Wrong tries a code tolerates; the last one voids it.
pub const MAX_ATTEMPTS_PER_CODE: u32 = 5;

/// A six-digit code, as sent or as typed. Debug is redacted.
#[derive(Clone)]
pub struct SmsCode(SecretString);

impl std::fmt::Debug for SmsCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmsCode([REDACTED])")
    }
}

/// A code that is not exactly six ASCII digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("code must be exactly 6 digits")]
pub struct MalformedCode;

impl SmsCode {
    pub fn parse(text: &str) -> Result<SmsCode, MalformedCode> {
        if text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(SmsCode(SecretString::from(text.to_owned())))
        } else {
            Err(MalformedCode)
        }
    }

    /// A fresh code from the operating system's CSPRNG, uniform over 000000..=999999.
    pub fn generate() -> SmsCode {
        let n: u32 = OsRng.gen_range(0..1_000_000);
        SmsCode(SecretString::from(format!("{n:06}")))
    }

    /// The digits, for the SMS text only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// The keyed hash that stands for a code in storage.
pub struct CodeHasher {
    key: SecretSlice<u8>,
}

impl std::fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeHasher([REDACTED])")
    }
}

impl CodeHasher {
    pub fn new(key: Vec<u8>) -> CodeHasher {
        CodeHasher {
            key: SecretSlice::from(key),
        }
    }

    #[expect(clippy::expect_used, reason = "HMAC takes keys of any length")]
    fn mac(&self, member_id: &MemberId, code: &SmsCode) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret()).expect("HMAC takes keys of any length");
        // Binding the member id means one member's hash cannot verify another's code.
        mac.update(member_id.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(code.expose().as_bytes());
        mac
    }

    /// Hex HMAC-SHA256 of the code, bound to the member.
    pub fn hash(&self, member_id: &MemberId, code: &SmsCode) -> String {
        hex::encode(self.mac(member_id, code).finalize().into_bytes())
    }

    /// Compares a typed code with a stored hash in constant time.
    pub fn matches(&self, member_id: &MemberId, code: &SmsCode, stored_hex: &str) -> bool {
        match hex::decode(stored_hex) {
            Ok(stored) => self.mac(member_id, code).verify_slice(&stored).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_parse_strictly() {
        for _ in 0..100 {
            let code = SmsCode::generate();
            assert!(SmsCode::parse(code.expose()).is_ok());
        }
        for bad in ["12345", "1234567", "12a456", "١٢٣٤٥٦", " 12345", ""] {
            assert!(SmsCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hashes_match_only_the_same_code_for_the_same_member_and_key() {
        let hasher = CodeHasher::new(b"key-one".to_vec());
        let alice = MemberId::parse("alice").unwrap();
        let bob = MemberId::parse("bob").unwrap();
        let code = SmsCode::parse("123456").unwrap();
        let stored = hasher.hash(&alice, &code);
        assert!(hasher.matches(&alice, &code, &stored));
        assert!(!hasher.matches(&bob, &code, &stored));
        assert!(!hasher.matches(&alice, &SmsCode::parse("123457").unwrap(), &stored));
        assert!(!CodeHasher::new(b"key-two".to_vec()).matches(&alice, &code, &stored));
        assert!(!stored.contains("123456"));
    }

    #[test]
    fn the_limits_are_the_contracts() {
        assert_eq!(CODE_TTL_SECONDS, 1_800, "30 minutes");
        assert_eq!(SEND_WINDOW_SECONDS, 3_600, "a rolling hour");
        assert_eq!(
            (RESEND_COOLDOWN_SECONDS, MAX_SENDS_PER_WINDOW, MAX_ATTEMPTS_PER_CODE),
            (60, 5, 5)
        );
    }

    #[test]
    fn codes_and_keys_never_show_in_debug_output() {
        let code = SmsCode::parse("654321").unwrap();
        assert_eq!(code.expose(), "654321");
        assert_eq!(format!("{code:?}"), "SmsCode([REDACTED])");
        let hasher = CodeHasher::new(b"secret-key".to_vec());
        assert_eq!(format!("{hasher:?}"), "CodeHasher([REDACTED])");
    }

    #[test]
    fn a_hash_is_hex_hmac_sha256_of_member_and_code() {
        let hasher = CodeHasher::new(b"key".to_vec());
        let member = MemberId::parse("alice").unwrap();
        let code = SmsCode::parse("123456").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"alice\x00123456");
        assert_eq!(hasher.hash(&member, &code), hex::encode(mac.finalize().into_bytes()));
        assert!(!hasher.matches(&member, &code, "not hex"));
    }
}
