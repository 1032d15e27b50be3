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
use crate::events::EventType;
use crate::exchange::{quote_docs, QuoteState};
use crate::fx::{Payout as FxPayout, QuotePurpose};
use crate::ids::{QuoteId, WithdrawalId};
use crate::ledger::{Bucket, EntryType, PlatformAccount, Posting, Transaction};
use crate::member::{Member, MemberId, MemberStatus, PhcHash};
use crate::money::{Amount, Currency};
use crate::password::{self, PaymentPassword};
use crate::records::{BankAccount, Created, IdempotencyRecord, Withdrawal, WithdrawalStatus};
use crate::retry::{commit, retrying, Attempt, Backoff, Commit};
use crate::store::{Expect, WithdrawalContext, Write};

/// Wrong payment passwords in a row that lock withdrawals.
pub const MAX_PASSWORD_ATTEMPTS: u32 = 5;
/// How long the lock lasts.
pub const PASSWORD_LOCK_SECONDS: i64 = 3 * 60 * 60;
pub use crate::records::{IdempotencyKey, IDEMPOTENCY_TTL_SECONDS};

/// A withdrawal as the member asks for it.
#[derive(Debug, Clone)]
pub struct WithdrawalRequest {
    pub key: IdempotencyKey,
    pub currency: Currency,
    pub amount: Amount,
    pub password: PaymentPassword,
    pub bank_account: BankAccount,
    /// The bank account's currency (`currency` when the request leaves it out).
    pub payout_currency: Currency,
    /// The preview's quote, for a payout in another currency.
    pub quote_id: Option<QuoteId>,
}

impl WithdrawalRequest {
    /// What makes two requests "the same" for their key: everything but the password,
    /// amounts compared as values. A same-currency withdrawal without a quote keeps the
    /// form keys were stored with before payouts in other currencies existed (so their
    /// replays still match); the others add the route, `payout_currency` and `quote_id`.
    pub fn fingerprint(&self) -> String {
        let mut canonical = json!([
            self.currency.code(),
            self.amount.to_string(),
            self.bank_account.holder_name,
            self.bank_account.account_number,
            self.bank_account.bank_name,
        ]);
        if self.payout_currency != self.currency || self.quote_id.is_some() {
            canonical = json!([
                "POST /v1/withdrawals",
                canonical,
                self.payout_currency.code(),
                self.quote_id.as_ref().map(QuoteId::as_str),
            ]);
        }
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }

    /// The checks of the request's values alone, before any read: a payout in another
    /// currency needs a quote, a same-currency one must not have one.
    pub fn check_values(&self) -> Result<(), ApiError> {
        match (self.payout_currency == self.currency, &self.quote_id) {
            (false, None) => Err(ApiError::QuoteRequired),
            (true, Some(_)) => Err(ApiError::QuoteMismatch),
            _ => Ok(()),
        }
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
/// asks for one); `fee` is what the schedule in force charges for this amount (a quote's
/// recorded fee takes its place).
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
        return match (&record.created, record.fingerprint == fingerprint) {
            (Created::Withdrawal(withdrawal), true) => Ok(Decision::Replay(withdrawal.clone())),
            _ => Err(ApiError::IdempotencyKeyReused),
        };
    }
    if let Some(locked_until) = member.withdrawals_locked_until.filter(|until| *until > now) {
        return Err(ApiError::PaymentPasswordLocked { locked_until });
    }
    let quote = match &request.quote_id {
        Some(_) => {
            let state = QuoteState::from_docs(&context.docs)
                .map_err(|_| ApiError::Internal)?
                .ok_or(ApiError::QuoteNotFound)?;
            let quote = &state.quote;
            let made_for_this = match quote.purpose {
                QuotePurpose::Withdrawal { amount, .. } => {
                    amount == request.amount
                        && quote.sell_currency == request.currency
                        && quote.buy_currency == request.payout_currency
                }
                // A conversion's quote is refused by `check_usable` below.
                QuotePurpose::Conversion => true,
            };
            if !made_for_this {
                return Err(ApiError::QuoteMismatch);
            }
            state.check_usable(true, now)?;
            Some(state)
        }
        None => None,
    };
    let hash = member.payment_password_hash.as_ref().ok_or(ApiError::Internal)?;
    let right = match verdict {
        Some(verdict) if &verdict.hash == hash => verdict.right,
        _ => return Ok(Decision::VerifyPassword(hash.clone())),
    };
    if !right {
        return Ok(count_wrong_password(member, now));
    }
    // A quote records the fee its preview showed: that is the fee charged.
    let fee = match quote.as_ref().map(|q| &q.quote.purpose) {
        Some(QuotePurpose::Withdrawal { fee, .. }) => *fee,
        _ => fee,
    };
    if request.amount <= fee {
        return Err(ApiError::AmountBelowFee { fee });
    }
    context.balance.require_available(request.amount)?;
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
        payout: quote.as_ref().map(|q| FxPayout {
            currency: q.quote.buy_currency,
            amount: q.quote.buy_amount,
            rate: q.quote.rate,
            quote_id: q.quote.id.clone(),
        }),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let record = IdempotencyRecord {
        member_id: member_id.clone(),
        key: request.key.as_str().to_owned(),
        fingerprint,
        created: Created::Withdrawal(withdrawal.clone()),
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
    if let Some(state) = &quote {
        writes.extend(
            state
                .spend(withdrawal.id.as_str(), now)
                .map_err(|_| ApiError::Internal)?,
        );
    }
    let reference = withdrawal.id.as_str();
    let transaction = Transaction::new(member_id, reference, now)
        .member(
            Posting::new(member_id, request.currency, EntryType::Withdrawal, reference)
                .change(Bucket::Available, request.amount.negated())
                .change(Bucket::InTransit, request.amount),
        )
        .event(EventType::WithdrawalCreated, event_detail(&withdrawal));
    writes.extend(Write::transaction(transaction, now).map_err(ApiError::from)?);
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
    request.check_values()?;
    let row = app
        .fees
        .row(request.currency, request.payout_currency)
        .ok_or(ApiError::UnsupportedPayout)?;
    let fee = row.fee(request.amount);
    let mut verdict = None;
    let mut backoff = Backoff::new();
    loop {
        // A read cancelled by a transaction in flight is retried like a lost write.
        match attempt_withdrawal(app, member_id, &request, fee, &mut verdict).await {
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
    fee: Amount,
    verdict: &mut Option<PasswordVerdict>,
) -> Result<Attempt<WithdrawalCreated>, ApiError> {
    let now = app.now();
    let docs = match &request.quote_id {
        Some(quote_id) => quote_docs(member_id, quote_id),
        None => Vec::new(),
    };
    let context = app
        .store
        .withdrawal_context(member_id, request.currency, request.key.as_str(), &docs)
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
            if let Payout::Returned { reason } = &report {
                next.return_reason = Some(reason.clone());
            }
            let mut writes = vec![Write::PutWithdrawal {
                withdrawal: next.clone(),
                expect: Expect::Version(withdrawal.version),
            }];
            writes.extend(Write::transaction(payout_transaction(&withdrawal, &report, now), now)?);
            Ok(commit(&*app.store, writes).await?.done_or_reread(next))
        }
    })
    .await
}

/// The ledger transaction of a payout report. Paid: `in_transit` leaves the member; the
/// fee is earned; the net amount goes out through clearing — or, for a payout in another
/// currency, the platform's FX position buys the net amount and sells the payout amount,
/// which goes out through clearing in that currency. Returned: the whole amount comes
/// back to `available`, fee included, and the platform books nothing (no FX either).
pub fn payout_transaction(withdrawal: &Withdrawal, report: &Payout, now: Timestamp) -> Transaction {
    let (event_type, status) = match report {
        Payout::Paid => (EventType::WithdrawalPaid, WithdrawalStatus::Paid),
        Payout::Returned { .. } => (EventType::WithdrawalReturned, WithdrawalStatus::Returned),
    };
    let mut settled = withdrawal.clone();
    settled.status = status;
    ledger_payout(withdrawal, report, now).event(event_type, event_detail(&settled))
}

/// What a withdrawal's events say: ids, amounts, currencies, status and the account's
/// last 4 digits — never the holder's or the bank's name, nor the full number.
pub fn event_detail(withdrawal: &Withdrawal) -> serde_json::Value {
    json!({
        "withdrawal_id": withdrawal.id.as_str(),
        "currency": withdrawal.currency,
        "amount": withdrawal.amount,
        "fee": withdrawal.fee,
        "net_amount": withdrawal.net_amount,
        "status": withdrawal.status.as_str(),
        "account_last4": withdrawal.bank_account.last4(),
        "payout_currency": withdrawal.payout.as_ref().map_or(withdrawal.currency, |p| p.currency),
        "payout_amount": withdrawal.payout.as_ref().map_or(withdrawal.net_amount, |p| p.amount),
    })
}

fn ledger_payout(withdrawal: &Withdrawal, report: &Payout, now: Timestamp) -> Transaction {
    let member_id = &withdrawal.member_id;
    let reference = withdrawal.id.as_str();
    let currency = withdrawal.currency;
    match report {
        Payout::Returned { .. } => Transaction::new(member_id, reference, now).member(
            Posting::new(member_id, currency, EntryType::WithdrawalReturned, reference)
                .change(Bucket::InTransit, withdrawal.amount.negated())
                .change(Bucket::Available, withdrawal.amount),
        ),
        Payout::Paid => {
            let paid = Transaction::new(member_id, reference, now)
                .member(
                    // The fee leaves as its own entry: a statement shows it on its own line.
                    Posting::new(member_id, currency, EntryType::WithdrawalPaid, reference)
                        .change(Bucket::InTransit, withdrawal.net_amount.negated())
                        .change_as(Bucket::InTransit, withdrawal.fee.negated(), EntryType::WithdrawalFee),
                )
                .platform(
                    PlatformAccount::FeeRevenue,
                    currency,
                    withdrawal.fee,
                    EntryType::WithdrawalPaid,
                );
            match &withdrawal.payout {
                None => paid.platform(
                    PlatformAccount::Clearing,
                    currency,
                    withdrawal.net_amount,
                    EntryType::WithdrawalPaid,
                ),
                Some(payout) => paid
                    .platform(
                        PlatformAccount::FxPosition,
                        currency,
                        withdrawal.net_amount,
                        EntryType::WithdrawalPaid,
                    )
                    .platform(
                        PlatformAccount::FxPosition,
                        payout.currency,
                        payout.amount.negated(),
                        EntryType::WithdrawalPaid,
                    )
                    .platform(
                        PlatformAccount::Clearing,
                        payout.currency,
                        payout.amount,
                        EntryType::WithdrawalPaid,
                    ),
            }
        }
    }
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
            docs: Vec::new(),
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
            payout_currency: Currency::Usd,
            quote_id: None,
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
        // ... and, in the same commit, the outbox event and the SMS notification.
        assert_eq!(
            targets,
            [Idempotency, Member, Withdrawal, Balance, Ledger, Ledger, Doc, Doc]
        );
        let outbox: Vec<&str> = writes[6..]
            .iter()
            .filter_map(|w| match w {
                Write::PutDoc {
                    doc,
                    expect: Expect::Absent,
                } => Some(doc.key.partition.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(outbox.len(), 2);
        assert!(
            outbox[0].starts_with("OUTBOX#") && outbox[1].starts_with("NOTIFY#"),
            "{outbox:?}"
        );
        let Write::PutIdempotency { record, .. } = &writes[0] else {
            unreachable!()
        };
        assert_eq!(
            record.created,
            Created::Withdrawal(withdrawal.clone()),
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
