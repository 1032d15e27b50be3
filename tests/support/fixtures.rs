//! Record builders for store-level tests.

use fund_account::clock::Timestamp;
use fund_account::ids::{ExternalId, WithdrawalId};
use fund_account::ledger::{Bucket, EntryType, LedgerEntry};
use fund_account::member::{Member, MemberId, MemberStatus, PhcHash, VerificationCode};
use fund_account::money::{Amount, Currency};
use fund_account::phone::PhoneNumber;
use fund_account::records::{
    BankAccount, Collection, CollectionStatus, IdempotencyRecord, Withdrawal, WithdrawalStatus,
};

pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_millis(super::T0 + seconds * 1000)
}

pub fn amount(text: &str) -> Amount {
    Amount::parse_stored(text).expect("test amount")
}

pub fn member_id(id: &str) -> MemberId {
    MemberId::parse(id).expect("test member id")
}

pub fn member(id: &str, version: u64) -> Member {
    Member {
        member_id: member_id(id),
        login_password_hash: PhcHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".to_owned()),
        phone: Some(PhoneNumber::parse("+8613800001234").expect("phone")),
        status: MemberStatus::Inactive,
        payment_password_hash: None,
        pending_password_hash: None,
        code_sends: vec![at(0)],
        activation_attempts: Vec::new(),
        failed_password_attempts: 0,
        withdrawals_locked_until: None,
        created_at: at(0),
        updated_at: at(0),
        version,
    }
}

pub fn code(id: &str, version: u64, expires_at: Timestamp) -> VerificationCode {
    VerificationCode {
        member_id: member_id(id),
        code_hash: "ab".repeat(32),
        sent_at: at(0),
        expires_at,
        failed_attempts: 0,
        version,
    }
}

pub fn ledger_entry(member: &str, currency: Currency, id: &str, value: &str) -> LedgerEntry {
    LedgerEntry {
        id: id.to_owned(),
        member_id: member_id(member),
        currency,
        bucket: Bucket::Available,
        amount: amount(value),
        entry_type: EntryType::Collection,
        reference: "col_1".to_owned(),
        created_at: at(0),
        transaction: None,
    }
}

/// A withdrawal id; `wd_01` is short for `wd_01` padded to a ULID's 26 characters, so
/// that fixtures sort like real ids.
pub fn withdrawal_id(short: &str) -> WithdrawalId {
    let ulid = short.strip_prefix("wd_").unwrap_or(short);
    let text = format!("wd_{ulid:0<26}");
    WithdrawalId::parse(&text).unwrap_or_else(|| panic!("{text} is a withdrawal id"))
}

pub fn external_id(text: &str) -> ExternalId {
    ExternalId::parse(text).unwrap_or_else(|| panic!("{text:?} is an external id"))
}

pub fn withdrawal(id: &str, member: &str, version: u64) -> Withdrawal {
    Withdrawal {
        id: withdrawal_id(id),
        member_id: member_id(member),
        currency: Currency::Usd,
        amount: amount("100"),
        fee: amount("15"),
        net_amount: amount("85"),
        status: WithdrawalStatus::Processing,
        bank_account: BankAccount {
            holder_name: "Li Wei".to_owned(),
            account_number: "6222020200112233".to_owned(),
            bank_name: "ICBC".to_owned(),
        },
        return_reason: None,
        payout: None,
        created_at: at(0),
        updated_at: at(0),
        version,
    }
}

pub fn collection(id: &str, member: &str, available_at: Timestamp, status: CollectionStatus) -> Collection {
    Collection {
        collection_id: external_id(id),
        member_id: member_id(member),
        currency: Currency::Cny,
        amount: amount("50"),
        refunded: Amount::ZERO,
        available_at,
        available_at_defaulted: false,
        status,
        created_at: at(0),
        settled_at: None,
        version: 1,
        pending_shard: None,
    }
}

/// A withdrawal request to the usual test bank account.
pub fn withdrawal_request(
    key: &str,
    currency: Currency,
    value: &str,
    password: &str,
) -> fund_account::withdrawal::WithdrawalRequest {
    fund_account::withdrawal::WithdrawalRequest {
        key: fund_account::withdrawal::IdempotencyKey::parse(key).expect("test key"),
        currency,
        amount: amount(value),
        password: fund_account::password::PaymentPassword::new(password.to_owned()),
        bank_account: BankAccount {
            holder_name: "Li Wei".to_owned(),
            account_number: "6222020200112233".to_owned(),
            bank_name: "ICBC".to_owned(),
        },
        payout_currency: currency,
        quote_id: None,
    }
}

pub fn idempotency(member: &str, key: &str, expires_at: Timestamp) -> IdempotencyRecord {
    IdempotencyRecord {
        member_id: member_id(member),
        key: key.to_owned(),
        fingerprint: "f".repeat(64),
        created: fund_account::records::Created::Withdrawal(withdrawal("wd_1", member, 1)),
        created_at: at(0),
        expires_at,
    }
}
