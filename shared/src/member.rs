//! Members and their fund-account state: identity, status, passwords, code sends.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::phone::PhoneNumber;

/// The marketplace's member id: 1 to 64 characters of `[A-Za-z0-9_.@-]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MemberId(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("member id must be 1 to 64 characters of letters, digits, '_', '-', '.', '@'")]
pub struct InvalidMemberId;

impl MemberId {
    pub fn parse(text: &str) -> Result<MemberId, InvalidMemberId> {
        let valid =
            (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.@".contains(&b));
        if valid {
            Ok(MemberId(text.to_owned()))
        } else {
            Err(InvalidMemberId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MemberId {
    type Error = InvalidMemberId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        MemberId::parse(&value)
    }
}

impl From<MemberId> for String {
    fn from(value: MemberId) -> String {
        value.0
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberId({})", self.0)
    }
}

/// Members are spread over this many shards for the reconciliation's walk, so a run can
/// be split into segments that each take some shards.
pub const MEMBER_SHARDS: u32 = 16;

impl MemberId {
    /// The member's shard, `0..MEMBER_SHARDS`.
    pub fn shard(&self) -> u32 {
        crate::ids::stable_hash(&self.0) % MEMBER_SHARDS
    }
}

/// An argon2 PHC string. Debug is redacted so hashes never reach a log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhcHash(String);

impl PhcHash {
    pub fn new(phc: String) -> PhcHash {
        PhcHash(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhcHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhcHash([REDACTED])")
    }
}

/// Where a member stands with activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    /// No payment password yet.
    Inactive,
    /// A payment password waits for an SMS code to be confirmed.
    PendingVerification,
    /// The payment password is in force.
    Active,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Inactive => "inactive",
            MemberStatus::PendingVerification => "pending_verification",
            MemberStatus::Active => "active",
        }
    }
}

/// A member's profile and fund-account state: one record, written with optimistic
/// concurrency on `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub member_id: MemberId,
    pub login_password_hash: PhcHash,
    pub phone: Option<PhoneNumber>,
    pub status: MemberStatus,
    /// The payment password in force (when active).
    pub payment_password_hash: Option<PhcHash>,
    /// The payment password waiting for its SMS code (when pending verification).
    pub pending_password_hash: Option<PhcHash>,
    /// When codes were sent within the last hour, oldest first: the rolling send limit.
    pub code_sends: Vec<Timestamp>,
    /// When payment passwords were tried within the last hour, oldest first: each try
    /// costs two argon2id runs, so they are limited per member.
    #[serde(default)]
    pub activation_attempts: Vec<Timestamp>,
    /// Wrong payment passwords in a row since the last right one.
    pub failed_password_attempts: u32,
    /// Withdrawals refuse every password until then.
    pub withdrawals_locked_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Incremented on every write; a write names the version it read.
    pub version: u64,
}

impl Member {
    /// A copy ready to be written back: version bumped, `updated_at` set.
    pub fn next_version(&self, now: Timestamp) -> Member {
        let mut next = self.clone();
        next.version += 1;
        next.updated_at = now;
        next
    }
}

/// The SMS code a member is waiting to confirm. Stored only as a keyed hash, with a TTL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationCode {
    pub member_id: MemberId,
    pub code_hash: String,
    pub sent_at: Timestamp,
    pub expires_at: Timestamp,
    pub failed_attempts: u32,
    pub version: u64,
}

impl VerificationCode {
    /// Expiry is checked on every read, because DynamoDB's TTL deletes lazily.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_are_bounded_and_plain() {
        assert!(MemberId::parse("seller-42@shop.cn").is_ok());
        assert!(MemberId::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "a/b", "MEMBER#1", &"a".repeat(65)] {
            assert!(MemberId::parse(bad).is_err(), "{bad}");
        }
    }
}
