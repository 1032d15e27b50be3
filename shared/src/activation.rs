//! Activation: setting the payment password, and — for members with a bound phone —
//! sending and confirming the SMS code that puts it in force.
//!
//! Every operation reads the member's partition once, decides in plain code, and commits
//! with the member's `version` as its condition; a lost race re-reads and decides again.

use std::sync::{Mutex, MutexGuard};

use crate::app::App;
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::member::{Member, MemberId, MemberStatus, PhcHash, VerificationCode};
use crate::password::{self, PaymentPassword, PolicyViolation};
use crate::phone::PhoneNumber;
use crate::retry::{commit, retrying, Attempt, Commit};
use crate::sms::verification_message;
use crate::store::{Expect, MemberState, Write};
use crate::verification::{
    SmsCode, CODE_TTL_SECONDS, MAX_ATTEMPTS_PER_CODE, MAX_SENDS_PER_WINDOW, RESEND_COOLDOWN_SECONDS,
    SEND_WINDOW_SECONDS,
};

/// What setting the payment password led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// No phone: the password is in force.
    Active,
    /// The password waits for the code sent to this phone.
    PendingVerification { phone: PhoneNumber },
}

/// A code on its way to the member's phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSent {
    pub phone: PhoneNumber,
    pub expires_at: Timestamp,
    pub resend_after: Timestamp,
}

/// A memo shared by the attempts of one operation (never held across an await).
fn cached<T>(slot: &Mutex<T>) -> MutexGuard<'_, T> {
    slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn load(app: &App, member_id: &MemberId) -> Result<MemberState, ApiError> {
    app.store.member_state(member_id).await?.ok_or(ApiError::MemberNotFound)
}

fn policy_error(violation: PolicyViolation) -> ApiError {
    let detail = match violation {
        PolicyViolation::TooShort => "the payment password must have at least 8 characters",
        PolicyViolation::TooLong => "the payment password must have at most 64 characters",
        PolicyViolation::Common => "the payment password is too common; choose one that is harder to guess",
    };
    ApiError::PaymentPasswordTooWeak(detail.to_owned())
}

fn password_fault(error: password::PasswordError) -> ApiError {
    tracing::error!(error = %error, "password hashing failed");
    ApiError::Internal
}

/// Payment passwords a member may try in [`ACTIVATION_WINDOW_SECONDS`].
pub const MAX_ACTIVATION_ATTEMPTS: usize = 10;
/// The rolling window of the activation limit.
pub const ACTIVATION_WINDOW_SECONDS: i64 = 60 * 60;

/// A rolling limit: at most `max` events in any `window_seconds`.
struct RollingLimit {
    max: usize,
    window_seconds: i64,
}

impl RollingLimit {
    /// The events of `history` still inside the window that ends at `now`, oldest first.
    fn recent(&self, history: &[Timestamp], now: Timestamp) -> Vec<Timestamp> {
        let window_start = now.plus_seconds(-self.window_seconds);
        history.iter().copied().filter(|at| *at > window_start).collect()
    }

    /// `recent` with one more event at `now`, or the seconds until one more is allowed.
    fn admit(&self, mut recent: Vec<Timestamp>, now: Timestamp) -> Result<Vec<Timestamp>, i64> {
        if recent.len() >= self.max {
            let frees_at = recent[recent.len() - self.max].plus_seconds(self.window_seconds);
            return Err(now.seconds_until(frees_at));
        }
        recent.push(now);
        Ok(recent)
    }
}

const ACTIVATION_LIMIT: RollingLimit = RollingLimit {
    max: MAX_ACTIVATION_ATTEMPTS,
    window_seconds: ACTIVATION_WINDOW_SECONDS,
};

const SEND_LIMIT: RollingLimit = RollingLimit {
    max: MAX_SENDS_PER_WINDOW,
    window_seconds: SEND_WINDOW_SECONDS,
};

/// Records one try of a payment password before any argon2id work is done, under the
/// member's version: however many requests arrive at once, at most
/// [`MAX_ACTIVATION_ATTEMPTS`] an hour get as far as hashing. Returns the state as
/// written.
async fn reserve_activation_attempt(
    app: &App,
    member_id: &MemberId,
    password: &PaymentPassword,
) -> Result<MemberState, ApiError> {
    retrying(|| async move {
        let state = load(app, member_id).await?;
        let member = &state.member;
        if member.status == MemberStatus::Active {
            return Err(ApiError::AlreadyActive);
        }
        // A weak password costs nothing to refuse: it spends no try.
        password::check_policy(password).map_err(policy_error)?;
        let now = app.now();
        let recent = ACTIVATION_LIMIT.recent(&member.activation_attempts, now);
        let attempts = ACTIVATION_LIMIT
            .admit(recent, now)
            .map_err(|retry_after_seconds| ApiError::ActivationAttemptLimit { retry_after_seconds })?;
        let mut next = member.next_version(now);
        next.activation_attempts = attempts;
        let writes = vec![Write::PutMember {
            member: next.clone(),
            expect: Expect::Version(member.version),
        }];
        let written = MemberState {
            member: next,
            ..state.clone()
        };
        Ok(commit(&*app.store, writes).await?.done_or_reread(written))
    })
    .await
}

/// `POST /v1/activation`: checks the policy, then stores the argon2id hash — in force
/// at once without a phone, pending an SMS code with one. Calling it again while pending
/// replaces the pending password and voids any code sent. At most
/// [`MAX_ACTIVATION_ATTEMPTS`] tries an hour per member.
pub async fn set_payment_password(
    app: &App,
    member_id: &MemberId,
    password: PaymentPassword,
) -> Result<Activation, ApiError> {
    // The state the reservation wrote is the first attempt's read: no second query.
    let mut reserved = Some(reserve_activation_attempt(app, member_id, &password).await?);
    // Hashing is the slow part: do it at most once, even if the commit is retried.
    let new_hash: Mutex<Option<PhcHash>> = Mutex::new(None);
    let checked_against_login: Mutex<Option<PhcHash>> = Mutex::new(None);
    retrying(|| {
        let password = password.clone();
        let (new_hash, checked_against_login) = (&new_hash, &checked_against_login);
        let reserved = reserved.take();
        async move {
            let state = match reserved {
                Some(state) => state,
                None => load(app, member_id).await?,
            };
            let member = &state.member;
            if member.status == MemberStatus::Active {
                return Err(ApiError::AlreadyActive);
            }
            password::check_policy(&password).map_err(policy_error)?;
            let checked = cached(checked_against_login).as_ref() == Some(&member.login_password_hash);
            if !checked {
                let same = password::verify_password(password.clone(), member.login_password_hash.as_str().to_owned())
                    .await
                    .map_err(password_fault)?;
                if same {
                    return Err(ApiError::PaymentPasswordSameAsLogin);
                }
                *cached(checked_against_login) = Some(member.login_password_hash.clone());
            }
            let known_hash = cached(new_hash).clone();
            let hash = match known_hash {
                Some(hash) => hash,
                None => {
                    let hash = PhcHash::new(
                        password::hash_payment_password(password)
                            .await
                            .map_err(password_fault)?,
                    );
                    *cached(new_hash) = Some(hash.clone());
                    hash
                }
            };

            let now = app.now();
            let mut next = member.next_version(now);
            let outcome = match &member.phone {
                None => {
                    next.status = MemberStatus::Active;
                    next.payment_password_hash = Some(hash);
                    next.pending_password_hash = None;
                    Activation::Active
                }
                Some(phone) => {
                    next.status = MemberStatus::PendingVerification;
                    next.pending_password_hash = Some(hash);
                    Activation::PendingVerification { phone: phone.clone() }
                }
            };
            let mut writes = vec![Write::PutMember {
                member: next,
                expect: Expect::Version(member.version),
            }];
            if state.code.is_some() {
                // The member's version guards this: a code sent meanwhile bumps it.
                writes.push(Write::DeleteCode {
                    member_id: member_id.clone(),
                    expect: Expect::Any,
                });
            }
            Ok(commit(&*app.store, writes).await?.done_or_reread(outcome))
        }
    })
    .await
}

/// `POST /v1/activation/code`: sends a fresh code (voiding the last), within the
/// cooldown and the hourly limit.
pub async fn send_code(app: &App, member_id: &MemberId) -> Result<CodeSent, ApiError> {
    let code = SmsCode::generate();
    let code_hash = app.code_hasher()?.hash(member_id, &code);
    let sent = retrying(|| {
        let code_hash = code_hash.clone();
        async move {
            let state = load(app, member_id).await?;
            let member = &state.member;
            let phone = match (&member.status, &member.phone) {
                (MemberStatus::PendingVerification, Some(phone)) => phone.clone(),
                _ => return Err(ApiError::NoPendingActivation),
            };
            let now = app.now();
            let recent = SEND_LIMIT.recent(&member.code_sends, now);
            if let Some(last) = recent.last() {
                let allowed_at = last.plus_seconds(RESEND_COOLDOWN_SECONDS);
                if now < allowed_at {
                    return Err(ApiError::CodeResendTooSoon {
                        retry_after_seconds: now.seconds_until(allowed_at),
                    });
                }
            }
            let sends = SEND_LIMIT
                .admit(recent, now)
                .map_err(|retry_after_seconds| ApiError::CodeSendLimit { retry_after_seconds })?;
            let mut next = member.next_version(now);
            next.code_sends = sends;
            let expires_at = now.plus_seconds(CODE_TTL_SECONDS);
            let record = VerificationCode {
                member_id: member_id.clone(),
                code_hash,
                sent_at: now,
                expires_at,
                failed_attempts: 0,
                version: state.code.as_ref().map_or(1, |c| c.version + 1),
            };
            let writes = vec![
                Write::PutMember {
                    member: next,
                    expect: Expect::Version(member.version),
                },
                // The member's version guards this write too: a new code replaces the last.
                Write::PutCode {
                    code: record,
                    expect: Expect::Any,
                },
            ];
            let sent = CodeSent {
                phone,
                expires_at,
                resend_after: now.plus_seconds(RESEND_COOLDOWN_SECONDS),
            };
            Ok(commit(&*app.store, writes).await?.done_or_reread(sent))
        }
    })
    .await?;

    let message = verification_message(code.expose(), CODE_TTL_SECONDS / 60);
    if let Err(error) = app.sms.send(&sent.phone, &message, app.now()).await {
        // The code stays stored; the member may ask again once the cooldown has passed.
        tracing::error!(error = %error, phone = %sent.phone.masked(), "verification sms failed");
        return Err(ApiError::SmsUnavailable);
    }
    Ok(sent)
}

/// `POST /v1/activation/confirm`: a right, live code puts the pending password in force;
/// a wrong one spends one of five tries.
pub async fn confirm_code(app: &App, member_id: &MemberId, typed: &SmsCode) -> Result<(), ApiError> {
    let code_hasher = app.code_hasher()?;
    retrying(|| async move {
        let state = load(app, member_id).await?;
        let member = &state.member;
        if member.status != MemberStatus::PendingVerification {
            return Err(ApiError::NoPendingActivation);
        }
        let Some(code) = &state.code else {
            return Err(ApiError::NoCodeSent);
        };
        let now = app.now();
        if code.is_expired(now) {
            return Err(ApiError::CodeExpired);
        }
        if code.failed_attempts >= MAX_ATTEMPTS_PER_CODE {
            return Err(ApiError::CodeAttemptsExhausted);
        }
        if code_hasher.matches(member_id, typed, &code.code_hash) {
            let mut next = member.next_version(now);
            next.status = MemberStatus::Active;
            next.payment_password_hash = member.pending_password_hash.clone();
            next.pending_password_hash = None;
            let writes = vec![
                Write::PutMember {
                    member: next,
                    expect: Expect::Version(member.version),
                },
                // Single use: the code goes with the activation, atomically — and only
                // the code exactly as read. Wrong tries change the code, not the member,
                // so without this a right code read before the fifth wrong try landed
                // would still activate after it: more than five guesses per code.
                Write::DeleteCode {
                    member_id: member_id.clone(),
                    expect: Expect::Version(code.version),
                },
            ];
            return Ok(commit(&*app.store, writes).await?.done_or_reread(()));
        }
        let mut spent = code.clone();
        spent.failed_attempts += 1;
        spent.version += 1;
        let attempts_left = MAX_ATTEMPTS_PER_CODE - spent.failed_attempts;
        let writes = vec![Write::PutCode {
            code: spent,
            expect: Expect::Version(code.version),
        }];
        match commit(&*app.store, writes).await? {
            Commit::Applied => Err(ApiError::CodeIncorrect { attempts_left }),
            Commit::Contended | Commit::Refused(_) => Ok(Attempt::Retry),
        }
    })
    .await
}

/// `PUT /internal/members/{id}`: creates or updates a member's profile from the
/// marketplace. A new phone voids any code sent to the old one.
pub async fn sync_member(
    app: &App,
    member_id: &MemberId,
    login_password_hash: PhcHash,
    phone: Option<PhoneNumber>,
) -> Result<Member, ApiError> {
    retrying(|| {
        let (login_password_hash, phone) = (login_password_hash.clone(), phone.clone());
        async move {
            let now = app.now();
            let state = app.store.member_state(member_id).await?;
            let (member, writes) = match state {
                None => {
                    let member = Member {
                        member_id: member_id.clone(),
                        login_password_hash,
                        phone,
                        status: MemberStatus::Inactive,
                        payment_password_hash: None,
                        pending_password_hash: None,
                        code_sends: Vec::new(),
                        activation_attempts: Vec::new(),
                        failed_password_attempts: 0,
                        withdrawals_locked_until: None,
                        created_at: now,
                        updated_at: now,
                        version: 1,
                    };
                    let writes = vec![
                        Write::PutMember {
                            member: member.clone(),
                            expect: Expect::Absent,
                        },
                        Write::IndexMember {
                            member_id: member_id.clone(),
                        },
                    ];
                    (member, writes)
                }
                Some(state) => {
                    let current = &state.member;
                    if current.login_password_hash == login_password_hash && current.phone == phone {
                        return Ok(Attempt::Done(current.clone()));
                    }
                    let mut next = current.next_version(now);
                    next.login_password_hash = login_password_hash;
                    let phone_changed = next.phone != phone;
                    next.phone = phone;
                    let mut writes = vec![Write::PutMember {
                        member: next.clone(),
                        expect: Expect::Version(current.version),
                    }];
                    if phone_changed && state.code.is_some() {
                        writes.push(Write::DeleteCode {
                            member_id: member_id.clone(),
                            expect: Expect::Any,
                        });
                    }
                    (next, writes)
                }
            };
            Ok(commit(&*app.store, writes).await?.done_or_reread(member))
        }
    })
    .await
}

/// `GET /v1/account`: the member with balances.
pub async fn account(app: &App, member_id: &MemberId) -> Result<MemberState, ApiError> {
    load(app, member_id).await
}
