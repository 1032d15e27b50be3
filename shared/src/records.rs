//! Records of money movement as the stores keep them: withdrawals, collections, refunds
//! and idempotency keys. The rules that create and change them live in `withdrawal` and
//! `collection`.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::ids::{ExternalId, WithdrawalId};
use crate::member::MemberId;
use crate::money::{Amount, Currency};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalStatus {
    Processing,
    Paid,
    Returned,
}

impl WithdrawalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawalStatus::Processing => "processing",
            WithdrawalStatus::Paid => "paid",
            WithdrawalStatus::Returned => "returned",
        }
    }
}

/// Where a withdrawal is paid. The full account number is kept for the payout
/// processor; responses and logs show the last four digits only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAccount {
    pub holder_name: String,
    pub account_number: String,
    pub bank_name: String,
}

impl BankAccount {
    /// A bank account from a request's fields: names 1 to 140 characters without control
    /// characters, the account number 4 to 34 letters and digits (an IBAN's longest).
    pub fn parse(holder_name: String, account_number: String, bank_name: String) -> Result<BankAccount, ApiError> {
        let name_ok =
            |name: &str| !name.trim().is_empty() && name.chars().count() <= 140 && !name.chars().any(char::is_control);
        let number_ok =
            (4..=34).contains(&account_number.len()) && account_number.bytes().all(|b| b.is_ascii_alphanumeric());
        if name_ok(&holder_name) && name_ok(&bank_name) && number_ok {
            Ok(BankAccount {
                holder_name,
                account_number,
                bank_name,
            })
        } else {
            Err(ApiError::InvalidBankAccount)
        }
    }

    pub fn last4(&self) -> String {
        let chars: Vec<char> = self.account_number.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    }
}

impl std::fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankAccount")
            .field("holder_name", &self.holder_name)
            .field("bank_name", &self.bank_name)
            .field("account_last4", &self.last4())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// `wd_` + a ULID.
    pub id: WithdrawalId,
    pub member_id: MemberId,
    pub currency: Currency,
    /// What left `available`.
    pub amount: Amount,
    pub fee: Amount,
    /// What the bank pays out: `amount - fee`.
    pub net_amount: Amount,
    pub status: WithdrawalStatus,
    pub bank_account: BankAccount,
    pub return_reason: Option<String>,
    /// For a payout in another currency: what the bank receives, at which rate, under
    /// which quote. `None`: `net_amount` in `currency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout: Option<crate::fx::Payout>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionStatus {
    Pending,
    Settled,
}

impl CollectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionStatus::Pending => "pending",
            CollectionStatus::Settled => "settled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    pub collection_id: ExternalId,
    pub member_id: MemberId,
    pub currency: Currency,
    pub amount: Amount,
    /// Sum of the refunds taken from it so far; never above `amount`.
    pub refunded: Amount,
    pub available_at: Timestamp,
    /// True when the request left `available_at` out (so it defaulted to its arrival):
    /// a repeat that also leaves it out is the same request.
    #[serde(default)]
    pub available_at_defaulted: bool,
    pub status: CollectionStatus,
    pub created_at: Timestamp,
    pub settled_at: Option<Timestamp>,
    pub version: u64,
    /// The pending shard its money sits in until it settles (`ledger::PENDING_SHARDS`);
    /// `None` for collections made before shards, whose money is on the balance item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_shard: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub refund_id: ExternalId,
    pub collection_id: ExternalId,
    pub member_id: MemberId,
    pub currency: Currency,
    pub amount: Amount,
    /// `pending` or `available`: where the money was taken from.
    pub taken_from: crate::ledger::Bucket,
    pub created_at: Timestamp,
}

/// How long an Idempotency-Key and its response are kept.
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 60 * 60;

/// An `Idempotency-Key` header: 1 to 255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(text: &str) -> Result<IdempotencyKey, ApiError> {
        let valid = (1..=255).contains(&text.len()) && text.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if valid {
            Ok(IdempotencyKey(text.to_owned()))
        } else {
            Err(ApiError::InvalidIdempotencyKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an Idempotency-Key first created: a replay answers with it, so its body is byte
/// for byte the first response's, whatever happened to the record since. Stored as
/// `{"withdrawal": …}` or `{"conversion": …}`, so records written before conversions
/// existed read unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Created {
    Withdrawal(Withdrawal),
    Conversion(crate::fx::Conversion),
}

/// An Idempotency-Key (one namespace per member across routes): kept with the first
/// successful response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub member_id: MemberId,
    pub key: String,
    /// SHA-256 of the route and the request's canonical form, without the payment
    /// password.
    pub fingerprint: String,
    #[serde(flatten)]
    pub created: Created,
    pub created_at: Timestamp,
    /// Kept at least this long (DynamoDB TTL; also checked on read).
    pub expires_at: Timestamp,
}

/// A reconciliation run's record, kept for audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// The report as JSON, exactly as logged and returned.
    pub report: String,
    pub discrepancies: u64,
}
