//! Money out: withdrawals of all or part of `available`, guarded by the payment password
//! and an Idempotency-Key, and the payout processor's two-phase completion.
//!
//! A withdrawal is one read (`withdrawal_context`) and one commit that claims the key,
//! creates the withdrawal and moves the money together — so a key is never held by a
//! request that moved nothing, and a crash at any point leaves either all or nothing.

use std::sync::Mutex;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::app::{retrying, App, Attempt};
use crate::error::ApiError;
use crate::ledger::{Bucket, EntryType, Posting};
use crate::member::{MemberId, MemberStatus};
use crate::money::{Amount, Currency};
use crate::password::{self, PaymentPassword};
use crate::records::{BankAccount, IdempotencyRecord, Withdrawal, WithdrawalStatus};
use crate::store::{Expect, StoreError, Write};

/// Wrong payment passwords in a row that lock withdrawals.
pub const MAX_PASSWORD_ATTEMPTS: u32 = 5;
/// How long the lock lasts.
pub const PASSWORD_LOCK_SECONDS: i64 = 3 * 60 * 60;
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

/// A withdrawal as the member asks for it.
#[derive(Debug, Clone)]
pub struct WithdrawalRequest {
    pub key: IdempotencyKey,
    pub currency: Currency,
    pub amount: Amount,
    pub password: PaymentPassword,
    pub bank_account: BankAccount,
}

impl WithdrawalRequest {
    /// What makes two requests "the same" for their key: everything but the password,
    /// amounts compared as values.
    fn fingerprint(&self) -> String {
        let canonical = json!([
            self.currency.code(),
            self.amount.to_string(),
            self.bank_account.holder_name,
            self.bank_account.account_number,
            self.bank_account.bank_name,
        ]);
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// Checks the bank account's fields: names 1 to 140 characters, the account number 4 to
/// 34 letters and digits (an IBAN's longest).
pub fn validate_bank_account(account: &BankAccount) -> Result<(), ApiError> {
    let name_ok =
        |name: &str| !name.trim().is_empty() && name.chars().count() <= 140 && !name.chars().any(char::is_control);
    let number = &account.account_number;
    let number_ok = (4..=34).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_alphanumeric());
    if name_ok(&account.holder_name) && name_ok(&account.bank_name) && number_ok {
        Ok(())
    } else {
        Err(ApiError::InvalidBankAccount)
    }
}

/// The withdrawal as responses show it (the account number reduced to its last 4).
pub fn withdrawal_view(w: &Withdrawal) -> Value {
    let mut view = json!({
        "id": w.id,
        "currency": w.currency.code(),
        "amount": w.amount.to_string(),
        "fee": w.fee.to_string(),
        "net_amount": w.net_amount.to_string(),
        "status": w.status.as_str(),
        "bank_account": {
            "holder_name": w.bank_account.holder_name,
            "bank_name": w.bank_account.bank_name,
            "account_last4": w.bank_account.last4(),
        },
        "created_at": w.created_at.to_rfc3339(),
        "updated_at": w.updated_at.to_rfc3339(),
    });
    if let Some(reason) = &w.return_reason {
        view["return_reason"] = json!(reason);
    }
    view
}

/// A created (or replayed) withdrawal: the response body, byte for byte the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalCreated {
    pub withdrawal_id: String,
    pub body: String,
    pub replayed: bool,
}

fn replay(record: &IdempotencyRecord, fingerprint: &str) -> Result<WithdrawalCreated, ApiError> {
    if record.fingerprint == fingerprint {
        Ok(WithdrawalCreated {
            withdrawal_id: record.withdrawal_id.clone(),
            body: record.response_body.clone(),
            replayed: true,
        })
    } else {
        Err(ApiError::IdempotencyKeyReused)
    }
}

/// `POST /v1/withdrawals`.
pub async fn withdraw(
    app: &App,
    member_id: &MemberId,
    request: WithdrawalRequest,
) -> Result<WithdrawalCreated, ApiError> {
    let fingerprint = request.fingerprint();
    // Verifying is the slow part (argon2id): once per stored hash, however many retries.
    let verified: Mutex<Option<(String, bool)>> = Mutex::new(None);
    retrying(|| {
        let (request, fingerprint, verified) = (request.clone(), fingerprint.clone(), &verified);
        async move {
            let now = app.now();
            let context = app
                .store
                .withdrawal_context(member_id, request.currency, request.key.as_str())
                .await?;
            let member = context.member.ok_or(ApiError::MemberNotFound)?;
            if member.status != MemberStatus::Active {
                return Err(ApiError::AccountNotActive);
            }
            if let Some(record) = context.idempotency.filter(|r| r.expires_at > now) {
                return replay(&record, &fingerprint).map(Attempt::Done);
            }
            if let Some(locked_until) = member.withdrawals_locked_until.filter(|until| *until > now) {
                return Err(ApiError::PaymentPasswordLocked { locked_until });
            }
            let hash = member.payment_password_hash.clone().ok_or(ApiError::Internal)?;
            let cached = verified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let right = match cached {
                Some((checked, right)) if checked == hash.as_str() => right,
                _ => {
                    let right = password::verify_password(request.password.clone(), hash.as_str().to_owned())
                        .await
                        .map_err(|_| ApiError::Internal)?;
                    *verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some((hash.as_str().to_owned(), right));
                    right
                }
            };

            if !right {
                let mut next = member.next_version(now);
                next.failed_password_attempts += 1;
                let attempts_left = MAX_PASSWORD_ATTEMPTS.saturating_sub(next.failed_password_attempts);
                if attempts_left == 0 {
                    next.withdrawals_locked_until = Some(now.plus_seconds(PASSWORD_LOCK_SECONDS));
                    next.failed_password_attempts = 0;
                }
                let writes = vec![Write::PutMember {
                    member: next,
                    expect: Expect::Version(member.version),
                }];
                return match app.store.commit(writes).await {
                    Ok(()) => Err(ApiError::PaymentPasswordIncorrect { attempts_left }),
                    Err(StoreError::ConditionFailed { .. } | StoreError::Contention) => Ok(Attempt::Retry),
                    Err(other) => Err(other.into()),
                };
            }

            let fee = app.fees.for_currency(request.currency);
            if request.amount <= fee {
                return Err(ApiError::AmountBelowFee { fee });
            }
            if request.amount > context.balance.available {
                return Err(ApiError::InsufficientFunds {
                    available: context.balance.available,
                });
            }
            let withdrawal = Withdrawal {
                id: format!("wd_{}", crate::ids::ulid_at(now)),
                member_id: member_id.clone(),
                currency: request.currency,
                amount: request.amount,
                fee,
                net_amount: request.amount.checked_sub(fee).ok_or(ApiError::Internal)?,
                status: WithdrawalStatus::Processing,
                bank_account: request.bank_account.clone(),
                return_reason: None,
                created_at: now,
                updated_at: now,
                version: 1,
            };
            let body = withdrawal_view(&withdrawal).to_string();
            let record = IdempotencyRecord {
                member_id: member_id.clone(),
                key: request.key.as_str().to_owned(),
                fingerprint: fingerprint.clone(),
                withdrawal_id: withdrawal.id.clone(),
                response_body: body.clone(),
                created_at: now,
                expires_at: now.plus_seconds(IDEMPOTENCY_TTL_SECONDS),
            };
            // A right password resets the count; otherwise the member is only checked
            // unchanged, so a lock that landed meanwhile is not overtaken.
            let member_write = if member.failed_password_attempts > 0 {
                let mut next = member.next_version(now);
                next.failed_password_attempts = 0;
                Write::PutMember {
                    member: next,
                    expect: Expect::Version(member.version),
                }
            } else {
                Write::CheckMember {
                    member_id: member_id.clone(),
                    version: Some(member.version),
                }
            };
            let mut writes = vec![
                Write::PutIdempotency { record, now },
                member_write,
                Write::PutWithdrawal {
                    withdrawal: withdrawal.clone(),
                    expect: Expect::Absent,
                },
            ];
            writes.extend(
                Posting::new(member_id, request.currency, EntryType::Withdrawal, &withdrawal.id)
                    .change(Bucket::Available, request.amount.negated())
                    .change(Bucket::InTransit, request.amount)
                    .into_writes(now),
            );
            match app.store.commit(writes).await {
                Ok(()) => {
                    tracing::info!(
                        withdrawal_id = %withdrawal.id,
                        currency = %withdrawal.currency,
                        amount = %withdrawal.amount,
                        "withdrawal created"
                    );
                    Ok(Attempt::Done(WithdrawalCreated {
                        withdrawal_id: withdrawal.id,
                        body,
                        replayed: false,
                    }))
                }
                // The key was claimed meanwhile (the next read replays it), the member or
                // the balance changed (the next read decides again), or a conflict.
                Err(StoreError::ConditionFailed { .. } | StoreError::Contention) => Ok(Attempt::Retry),
                Err(other) => Err(other.into()),
            }
        }
    })
    .await
}

/// The payout processor's report on a withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payout {
    Paid,
    Returned { reason: String },
}

/// `POST /internal/withdrawals/{id}/paid|returned`: only from `processing`; the same
/// report again is a no-op, the other one a conflict.
pub async fn report_payout(app: &App, withdrawal_id: &str, report: Payout) -> Result<Withdrawal, ApiError> {
    let target = match report {
        Payout::Paid => WithdrawalStatus::Paid,
        Payout::Returned { .. } => WithdrawalStatus::Returned,
    };
    if !is_withdrawal_id(withdrawal_id) {
        return Err(ApiError::WithdrawalNotFound);
    }
    retrying(|| {
        let report = report.clone();
        async move {
            let withdrawal = app
                .store
                .withdrawal(withdrawal_id)
                .await?
                .ok_or(ApiError::WithdrawalNotFound)?;
            if withdrawal.status == target {
                return Ok(Attempt::Done(withdrawal));
            }
            if withdrawal.status != WithdrawalStatus::Processing {
                return Err(ApiError::WithdrawalAlreadySettled);
            }
            let now = app.now();
            let mut next = withdrawal.clone();
            next.status = target;
            next.updated_at = now;
            next.version += 1;
            let posting = match &report {
                Payout::Paid => Posting::new(
                    &withdrawal.member_id,
                    withdrawal.currency,
                    EntryType::WithdrawalPaid,
                    &withdrawal.id,
                )
                .change(Bucket::InTransit, withdrawal.amount.negated()),
                Payout::Returned { reason } => {
                    next.return_reason = Some(reason.clone());
                    // The whole amount comes back, fee included: nothing was paid out.
                    Posting::new(
                        &withdrawal.member_id,
                        withdrawal.currency,
                        EntryType::WithdrawalReturned,
                        &withdrawal.id,
                    )
                    .change(Bucket::InTransit, withdrawal.amount.negated())
                    .change(Bucket::Available, withdrawal.amount)
                }
            };
            let mut writes = vec![Write::PutWithdrawal {
                withdrawal: next.clone(),
                expect: Expect::Version(withdrawal.version),
            }];
            writes.extend(posting.into_writes(now));
            match app.store.commit(writes).await {
                Ok(()) => Ok(Attempt::Done(next)),
                Err(StoreError::ConditionFailed { .. } | StoreError::Contention) => Ok(Attempt::Retry),
                Err(other) => Err(other.into()),
            }
        }
    })
    .await
}

/// Whether `id` has the shape of a withdrawal id (`wd_` and a ULID). Anything else is
/// "not found" without a store call — and never reaches DynamoDB's key-size limits.
pub fn is_withdrawal_id(id: &str) -> bool {
    id.len() == 29 && id.starts_with("wd_") && id[3..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A withdrawal of `member_id`'s; another member's is "not found".
pub async fn member_withdrawal(app: &App, member_id: &MemberId, withdrawal_id: &str) -> Result<Withdrawal, ApiError> {
    if !is_withdrawal_id(withdrawal_id) {
        return Err(ApiError::WithdrawalNotFound);
    }
    match app.store.withdrawal(withdrawal_id).await? {
        Some(w) if &w.member_id == member_id => Ok(w),
        _ => Err(ApiError::WithdrawalNotFound),
    }
}
