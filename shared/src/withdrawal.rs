//! Money out: withdrawals of all or part of `available`, guarded by the payment password
//! and an Idempotency-Key, and the payout processor's two-phase completion.
//!
//! A withdrawal is one read (`withdrawal_context`), a pure [`decide`], and one commit that
//! claims the key, creates the withdrawal and moves the money together — so a key is never
//! held by a request that moved nothing, and a crash at any point leaves all or nothing.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::ids::WithdrawalId;
use crate::ledger::{Bucket, EntryType, Posting};
use crate::member::{Member, MemberId, MemberStatus, PhcHash};
use crate::money::{Amount, Currency};
use crate::password::{self, PaymentPassword};
use crate::records::{BankAccount, IdempotencyRecord, Withdrawal, WithdrawalStatus};
use crate::retry::{commit, retrying, Attempt, Backoff, Commit};
use crate::store::{Expect, WithdrawalContext, Write};

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
    pub fn fingerprint(&self) -> String {
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

/// A withdrawal as its `Idempotency-Key` first answered, or again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalCreated {
    /// The withdrawal as it was created: a replay gets the same one, whatever happened to
    /// it since, so that its response is byte for byte the first.
    pub withdrawal: Withdrawal,
    pub replayed: bool,
}

/// A payment password checked against one stored hash (argon2id: the slow part of a
/// withdrawal, so it is done once per hash however many times the commit is retried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordVerdict {
    pub hash: PhcHash,
    pub right: bool,
}

/// What a withdrawal request comes to, given what one read found.
#[derive(Debug, Clone)]
pub enum Decision {
    /// The key answered before with the same request: that withdrawal again.
    Replay(Withdrawal),
    /// Nothing can be decided before the password is checked against this hash.
    VerifyPassword(PhcHash),
    /// A wrong password: these writes count it (locking withdrawals at the fifth in a
    /// row); once they land, the request is refused with `refusal`.
    CountWrongPassword { writes: Vec<Write>, refusal: ApiError },
    /// These writes claim the key, create the withdrawal and move the money, together.
    Create { withdrawal: Withdrawal, writes: Vec<Write> },
}

/// Decides a withdrawal from what was read: pure, so every rule is testable without a
/// store. `verdict` is the password check so far (for the member's current hash, or it
/// asks for one); `fee` is what this currency's withdrawals cost.
pub fn decide(
    member_id: &MemberId,
    context: &WithdrawalContext,
    request: &WithdrawalRequest,
    verdict: Option<&PasswordVerdict>,
    fee: Amount,
    now: Timestamp,
) -> Result<Decision, ApiError> {
    let member = context.member.as_ref().ok_or(ApiError::MemberNotFound)?;
    if member.status != MemberStatus::Active {
        return Err(ApiError::AccountNotActive);
    }
    // SHA-256 of the request: once per decision, for the replay check and the new record.
    let fingerprint = request.fingerprint();
    if let Some(record) = context.idempotency.as_ref().filter(|r| r.expires_at > now) {
        return if record.fingerprint == fingerprint {
            Ok(Decision::Replay(record.withdrawal.clone()))
        } else {
            Err(ApiError::IdempotencyKeyReused)
        };
    }
    if let Some(locked_until) = member.withdrawals_locked_until.filter(|until| *until > now) {
        return Err(ApiError::PaymentPasswordLocked { locked_until });
    }
    let hash = member.payment_password_hash.as_ref().ok_or(ApiError::Internal)?;
    let right = match verdict {
        Some(verdict) if &verdict.hash == hash => verdict.right,
        _ => return Ok(Decision::VerifyPassword(hash.clone())),
    };
    if !right {
        return Ok(count_wrong_password(member, now));
    }
    if request.amount <= fee {
        return Err(ApiError::AmountBelowFee { fee });
    }
    if request.amount > context.balance.available {
        return Err(ApiError::InsufficientFunds {
            available: context.balance.available,
        });
    }
    let withdrawal = Withdrawal {
        id: WithdrawalId::new_at(now),
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
    let record = IdempotencyRecord {
        member_id: member_id.clone(),
        key: request.key.as_str().to_owned(),
        fingerprint,
        withdrawal: withdrawal.clone(),
        created_at: now,
        expires_at: now.plus_seconds(IDEMPOTENCY_TTL_SECONDS),
    };
    // A right password resets the count; otherwise the member is only checked unchanged,
    // so a lock that landed meanwhile is not overtaken.
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
    writes.extend(Write::posting(
        Posting::new(
            member_id,
            request.currency,
            EntryType::Withdrawal,
            withdrawal.id.as_str(),
        )
        .change(Bucket::Available, request.amount.negated())
        .change(Bucket::InTransit, request.amount),
        now,
    ));
    Ok(Decision::Create { withdrawal, writes })
}

/// One more wrong password in a row; the fifth locks withdrawals and starts the count
/// again. Conditioned on the member as read, so racing tries each count once.
fn count_wrong_password(member: &Member, now: Timestamp) -> Decision {
    let mut next = member.next_version(now);
    next.failed_password_attempts += 1;
    let attempts_left = MAX_PASSWORD_ATTEMPTS.saturating_sub(next.failed_password_attempts);
    if attempts_left == 0 {
        next.withdrawals_locked_until = Some(now.plus_seconds(PASSWORD_LOCK_SECONDS));
        next.failed_password_attempts = 0;
    }
    Decision::CountWrongPassword {
        writes: vec![Write::PutMember {
            member: next,
            expect: Expect::Version(member.version),
        }],
        refusal: ApiError::PaymentPasswordIncorrect { attempts_left },
    }
}

/// `POST /v1/withdrawals`: read, decide, commit; a lost race reads and decides again.
///
/// The loop is [`retrying`]'s, written out because each attempt borrows `verdict`
/// mutably: the argon2id result (~20 ms of CPU) is kept across attempts, so a lost race
/// does not pay for the password twice, and `decide` checks it is for the hash it reads.
pub async fn withdraw(
    app: &App,
    member_id: &MemberId,
    request: WithdrawalRequest,
) -> Result<WithdrawalCreated, ApiError> {
    let mut verdict = None;
    let mut backoff = Backoff::new();
    loop {
        // A read cancelled by a transaction in flight is retried like a lost write.
        match attempt_withdrawal(app, member_id, &request, &mut verdict).await {
            Ok(Attempt::Done(created)) => return Ok(created),
            Err(error) if error != ApiError::Contention => return Err(error),
            Ok(Attempt::Retry) | Err(_) => backoff.wait().await?,
        }
    }
}

async fn attempt_withdrawal(
    app: &App,
    member_id: &MemberId,
    request: &WithdrawalRequest,
    verdict: &mut Option<PasswordVerdict>,
) -> Result<Attempt<WithdrawalCreated>, ApiError> {
    let now = app.now();
    let fee = app.fees.for_currency(request.currency);
    let context = app
        .store
        .withdrawal_context(member_id, request.currency, request.key.as_str())
        .await?;
    let mut decision = decide(member_id, &context, request, verdict.as_ref(), fee, now)?;
    if let Decision::VerifyPassword(hash) = decision {
        let right = password::verify_password(request.password.clone(), hash.as_str().to_owned())
            .await
            .map_err(|_| ApiError::Internal)?;
        *verdict = Some(PasswordVerdict { hash, right });
        decision = decide(member_id, &context, request, verdict.as_ref(), fee, now)?;
    }
    match decision {
        Decision::Replay(withdrawal) => Ok(Attempt::Done(WithdrawalCreated {
            withdrawal,
            replayed: true,
        })),
        Decision::VerifyPassword(_) => {
            tracing::error!("a withdrawal asked twice for the same password check");
            Err(ApiError::Internal)
        }
        Decision::CountWrongPassword { writes, refusal } => match commit(&*app.store, writes).await? {
            Commit::Applied => Err(refusal),
            // Another try or a lock landed first: count again from a fresh read.
            Commit::Contended | Commit::Refused(_) => Ok(Attempt::Retry),
        },
        Decision::Create { withdrawal, writes } => match commit(&*app.store, writes).await? {
            Commit::Applied => {
                tracing::info!(
                    withdrawal_id = %withdrawal.id,
                    currency = %withdrawal.currency,
                    amount = %withdrawal.amount,
                    "withdrawal created"
                );
                Ok(Attempt::Done(WithdrawalCreated {
                    withdrawal,
                    replayed: false,
                }))
            }
            // The key was claimed meanwhile (the next read replays it), the member or the
            // balance changed (the next read decides again), or a conflict.
            Commit::Contended | Commit::Refused(_) => Ok(Attempt::Retry),
        },
    }
}

/// The payout processor's report on a withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payout {
    Paid,
    Returned { reason: String },
}

/// `POST /internal/withdrawals/{id}/paid|returned`: only from `processing`; the same
/// report again is a no-op, the other one a conflict.
pub async fn report_payout(app: &App, withdrawal_id: &WithdrawalId, report: Payout) -> Result<Withdrawal, ApiError> {
    let target = match report {
        Payout::Paid => WithdrawalStatus::Paid,
        Payout::Returned { .. } => WithdrawalStatus::Returned,
    };
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
                    withdrawal.id.as_str(),
                )
                .change(Bucket::InTransit, withdrawal.amount.negated()),
                Payout::Returned { reason } => {
                    next.return_reason = Some(reason.clone());
                    // The whole amount comes back, fee included: nothing was paid out.
                    Posting::new(
                        &withdrawal.member_id,
                        withdrawal.currency,
                        EntryType::WithdrawalReturned,
                        withdrawal.id.as_str(),
                    )
                    .change(Bucket::InTransit, withdrawal.amount.negated())
                    .change(Bucket::Available, withdrawal.amount)
                }
            };
            let mut writes = vec![Write::PutWithdrawal {
                withdrawal: next.clone(),
                expect: Expect::Version(withdrawal.version),
            }];
            writes.extend(Write::posting(posting, now));
            Ok(commit(&*app.store, writes).await?.done_or_reread(next))
        }
    })
    .await
}

/// A withdrawal of `member_id`'s; another member's is "not found".
pub async fn member_withdrawal(
    app: &App,
    member_id: &MemberId,
    withdrawal_id: &WithdrawalId,
) -> Result<Withdrawal, ApiError> {
    match app.store.withdrawal(withdrawal_id).await? {
        Some(w) if &w.member_id == member_id => Ok(w),
        _ => Err(ApiError::WithdrawalNotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Balance;
    use crate::store::WithdrawalContext;

    fn amount(text: &str) -> Amount {
        Amount::parse_stored(text).unwrap()
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_millis(seconds * 1_000)
    }

    fn seller() -> MemberId {
        MemberId::parse("seller-1").unwrap()
    }

    fn hash() -> PhcHash {
        PhcHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned())
    }

    fn context(available: &str) -> WithdrawalContext {
        WithdrawalContext {
            member: Some(Member {
                member_id: seller(),
                login_password_hash: PhcHash::new("login".to_owned()),
                phone: None,
                status: MemberStatus::Active,
                payment_password_hash: Some(hash()),
                pending_password_hash: None,
                code_sends: Vec::new(),
                activation_attempts: Vec::new(),
                failed_password_attempts: 0,
                withdrawals_locked_until: None,
                created_at: at(0),
                updated_at: at(0),
                version: 7,
            }),
            balance: Balance {
                available: amount(available),
                ..Balance::default()
            },
            idempotency: None,
        }
    }

    fn request(amount_text: &str) -> WithdrawalRequest {
        WithdrawalRequest {
            key: IdempotencyKey::parse("k-1").unwrap(),
            currency: Currency::Usd,
            amount: amount(amount_text),
            password: PaymentPassword::new("Right-Pass-1".to_owned()),
            bank_account: BankAccount::parse("Li Wei".to_owned(), "6222020200112233".to_owned(), "ICBC".to_owned())
                .unwrap(),
        }
    }

    fn verdict(right: bool) -> PasswordVerdict {
        PasswordVerdict { hash: hash(), right }
    }

    fn decide_at(
        context: &WithdrawalContext,
        request: &WithdrawalRequest,
        verdict: Option<&PasswordVerdict>,
    ) -> Result<Decision, ApiError> {
        decide(&seller(), context, request, verdict, amount("15"), at(100))
    }

    #[test]
    fn nothing_is_decided_before_the_password_is_checked_against_the_current_hash() {
        let request = request("100");
        assert!(matches!(decide_at(&context("500"), &request, None), Ok(Decision::VerifyPassword(h)) if h == hash()));
        // A verdict for a hash the member no longer has is no verdict.
        let stale = PasswordVerdict {
            hash: PhcHash::new("$argon2id$old".to_owned()),
            right: true,
        };
        assert!(matches!(
            decide_at(&context("500"), &request, Some(&stale)),
            Ok(Decision::VerifyPassword(_))
        ));
    }

    #[test]
    fn a_right_password_creates_the_withdrawal_with_its_key_and_its_posting_in_one_commit() {
        let Ok(Decision::Create { withdrawal, writes }) =
            decide_at(&context("500"), &request("100"), Some(&verdict(true)))
        else {
            panic!("expected a create")
        };
        assert_eq!(
            (
                withdrawal.amount,
                withdrawal.fee,
                withdrawal.net_amount,
                withdrawal.status
            ),
            (amount("100"), amount("15"), amount("85"), WithdrawalStatus::Processing)
        );
        assert_eq!(WithdrawalId::parse(withdrawal.id.as_str()), Some(withdrawal.id.clone()));
        let targets: Vec<_> = writes.iter().map(Write::target).collect();
        use crate::store::WriteTarget::*;
        assert_eq!(targets, [Idempotency, Member, Withdrawal, Balance, Ledger, Ledger]);
        let Write::PutIdempotency { record, .. } = &writes[0] else {
            unreachable!()
        };
        assert_eq!(
            record.withdrawal, withdrawal,
            "the key keeps the withdrawal it answered with"
        );
        assert_eq!(record.expires_at, at(100).plus_seconds(IDEMPOTENCY_TTL_SECONDS));
        assert!(matches!(&writes[1], Write::CheckMember { version: Some(7), .. }));
        let Write::AdjustBalance { deltas, .. } = &writes[3] else {
            unreachable!()
        };
        assert_eq!(
            (deltas.get(Bucket::Available), deltas.get(Bucket::InTransit)),
            (amount("-100"), amount("100"))
        );
    }

    #[test]
    fn a_right_password_after_wrong_ones_resets_their_count() {
        let mut context = context("500");
        context.member.as_mut().unwrap().failed_password_attempts = 3;
        let Ok(Decision::Create { writes, .. }) = decide_at(&context, &request("100"), Some(&verdict(true))) else {
            panic!("expected a create")
        };
        assert!(
            matches!(&writes[1], Write::PutMember { member, expect: Expect::Version(7) } if member.failed_password_attempts == 0 && member.version == 8)
        );
    }

    #[test]
    fn wrong_passwords_count_and_the_fifth_locks_for_three_hours() {
        let mut context = context("500");
        for (already, left) in [(0, 4), (3, 1), (4, 0)] {
            context.member.as_mut().unwrap().failed_password_attempts = already;
            let Ok(Decision::CountWrongPassword { writes, refusal }) =
                decide_at(&context, &request("100"), Some(&verdict(false)))
            else {
                panic!("expected a wrong password")
            };
            assert_eq!(refusal, ApiError::PaymentPasswordIncorrect { attempts_left: left });
            let [Write::PutMember {
                member,
                expect: Expect::Version(7),
            }] = writes.as_slice()
            else {
                panic!("one conditioned member write: {writes:?}")
            };
            if left == 0 {
                assert_eq!(
                    member.withdrawals_locked_until,
                    Some(at(100).plus_seconds(PASSWORD_LOCK_SECONDS))
                );
                assert_eq!(
                    member.failed_password_attempts, 0,
                    "the count starts again after the lock"
                );
            } else {
                assert_eq!(
                    (member.failed_password_attempts, member.withdrawals_locked_until),
                    (already + 1, None)
                );
            }
        }
    }

    #[test]
    fn refusals_come_in_the_contract_order() {
        let right = verdict(true);
        assert_eq!(
            decide_at(&context("500"), &request("15"), Some(&right)).unwrap_err(),
            ApiError::AmountBelowFee { fee: amount("15") }
        );
        assert!(matches!(
            decide_at(&context("500"), &request("15.01"), Some(&right)),
            Ok(Decision::Create { .. })
        ));
        assert!(matches!(
            decide_at(&context("500"), &request("500"), Some(&right)),
            Ok(Decision::Create { .. })
        ));
        assert_eq!(
            decide_at(&context("500"), &request("500.01"), Some(&right)).unwrap_err(),
            ApiError::InsufficientFunds {
                available: amount("500")
            }
        );
        let mut locked = context("500");
        locked.member.as_mut().unwrap().withdrawals_locked_until = Some(at(101));
        assert_eq!(
            decide_at(&locked, &request("100"), Some(&right)).unwrap_err(),
            ApiError::PaymentPasswordLocked { locked_until: at(101) }
        );
        locked.member.as_mut().unwrap().withdrawals_locked_until = Some(at(100));
        assert!(
            matches!(
                decide_at(&locked, &request("100"), Some(&right)),
                Ok(Decision::Create { .. })
            ),
            "the lock ends at its time"
        );
        let mut inactive = context("500");
        inactive.member.as_mut().unwrap().status = MemberStatus::PendingVerification;
        assert_eq!(
            decide_at(&inactive, &request("100"), None).unwrap_err(),
            ApiError::AccountNotActive
        );
        let missing = WithdrawalContext {
            member: None,
            ..context("500")
        };
        assert_eq!(
            decide_at(&missing, &request("100"), None).unwrap_err(),
            ApiError::MemberNotFound
        );
    }

    #[test]
    fn a_live_key_replays_its_withdrawal_or_refuses_another_request() {
        let Ok(Decision::Create { withdrawal, writes }) =
            decide_at(&context("500"), &request("100"), Some(&verdict(true)))
        else {
            panic!("expected a create")
        };
        let Write::PutIdempotency { record, .. } = writes[0].clone() else {
            unreachable!()
        };
        let mut replaying = context("0");
        replaying.idempotency = Some(record.clone());
        // Before any password check: a replay needs none, even when the balance is gone.
        assert!(matches!(decide_at(&replaying, &request("100.00"), None), Ok(Decision::Replay(w)) if w == withdrawal));
        assert_eq!(
            decide_at(&replaying, &request("100.01"), None).unwrap_err(),
            ApiError::IdempotencyKeyReused
        );
        let mut expired = record;
        expired.expires_at = at(100);
        replaying.idempotency = Some(expired);
        assert!(
            matches!(
                decide_at(&replaying, &request("100"), None),
                Ok(Decision::VerifyPassword(_))
            ),
            "an expired key is a new request"
        );
    }
}
