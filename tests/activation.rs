//! Activation end to end through the domain services, on every store adapter: the
//! payment-password policy, the SMS code's 30 minutes, cooldown, hourly limit and tries.

use fund_account::activation::{self, Activation};
use fund_account::error::ApiError;
use fund_account::member::MemberStatus;
use fund_account::member::PhcHash;
use fund_account::password::{self, PaymentPassword};
use fund_account::phone::PhoneNumber;
use fund_account::verification::SmsCode;
use fund_account_tests::{for_each_adapter, hooked_app, test_app, Adapter, Injection, StoreCall, StoreHook, TestApp};

const PHONE: &str = "+8613800001234";
const LOGIN: &str = "login-Pass-2026";
const PAYMENT: &str = "Vault-Key-2026!";

fn pw(text: &str) -> PaymentPassword {
    PaymentPassword::new(text.to_owned())
}

fn code(text: &str) -> SmsCode {
    SmsCode::parse(text).expect("six digits")
}

/// A wrong code that is surely not `right`.
fn wrong(right: &str) -> SmsCode {
    code(if right == "000000" { "111111" } else { "000000" })
}

async fn pending_member(t: &TestApp) -> fund_account::member::MemberId {
    let id = t.member("seller-1", LOGIN, Some(PHONE)).await;
    let outcome = activation::set_payment_password(&t.app, &id, pw(PAYMENT))
        .await
        .unwrap();
    assert!(matches!(outcome, Activation::PendingVerification { .. }));
    id
}

async fn status(t: &TestApp, id: &fund_account::member::MemberId) -> MemberStatus {
    t.app.store.member_state(id).await.unwrap().unwrap().member.status
}

async fn a_member_without_phone_is_active_at_once(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = t.member("seller-1", LOGIN, None).await;
    assert_eq!(
        activation::set_payment_password(&t.app, &id, pw(PAYMENT)).await,
        Ok(Activation::Active)
    );
    let member = t.app.store.member_state(&id).await.unwrap().unwrap().member;
    assert_eq!(member.status, MemberStatus::Active);
    let hash = member.payment_password_hash.unwrap();
    assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(!hash.as_str().contains(PAYMENT));
    assert!(password::verify_blocking(&pw(PAYMENT), hash.as_str()).unwrap());
    assert_eq!(
        activation::set_payment_password(&t.app, &id, pw("Another-Key-77")).await,
        Err(ApiError::AlreadyActive)
    );
}

async fn a_member_with_phone_is_active_only_after_the_code(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = pending_member(&t).await;
    assert_eq!(status(&t, &id).await, MemberStatus::PendingVerification);
    assert_eq!(
        activation::confirm_code(&t.app, &id, &code("123456")).await,
        Err(ApiError::NoCodeSent)
    );

    let sent = activation::send_code(&t.app, &id).await.unwrap();
    assert_eq!(sent.phone.masked(), "+86*******1234");
    assert_eq!(
        sent.expires_at.unix_millis() - t.app.now().unix_millis(),
        30 * 60 * 1000
    );
    let digits = t.last_code(PHONE).await;
    let stored = t.app.store.member_state(&id).await.unwrap().unwrap().code.unwrap();
    assert!(!stored.code_hash.contains(&digits), "only a keyed hash is stored");

    activation::confirm_code(&t.app, &id, &code(&digits)).await.unwrap();
    let state = t.app.store.member_state(&id).await.unwrap().unwrap();
    assert_eq!(state.member.status, MemberStatus::Active);
    assert!(state.member.pending_password_hash.is_none());
    assert!(password::verify_blocking(&pw(PAYMENT), state.member.payment_password_hash.unwrap().as_str()).unwrap());
    assert_eq!(state.code, None, "a code works once");
    assert_eq!(
        activation::confirm_code(&t.app, &id, &code(&digits)).await,
        Err(ApiError::NoPendingActivation)
    );
    assert_eq!(
        activation::send_code(&t.app, &id).await,
        Err(ApiError::NoPendingActivation)
    );
}

async fn the_password_policy_refuses_weak_and_login_passwords_and_changes_nothing(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = t.member("seller-1", LOGIN, Some(PHONE)).await;
    for weak in ["short7!", "password123", "12345678", &"x".repeat(65)] {
        assert!(
            matches!(
                activation::set_payment_password(&t.app, &id, pw(weak)).await,
                Err(ApiError::PaymentPasswordTooWeak(_))
            ),
            "{weak}"
        );
    }
    assert_eq!(
        activation::set_payment_password(&t.app, &id, pw(LOGIN)).await,
        Err(ApiError::PaymentPasswordSameAsLogin)
    );
    assert_eq!(status(&t, &id).await, MemberStatus::Inactive);
    assert_eq!(
        activation::send_code(&t.app, &id).await,
        Err(ApiError::NoPendingActivation)
    );
}

async fn already_active_is_answered_before_the_policy(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = t.member("seller-1", LOGIN, None).await;
    activation::set_payment_password(&t.app, &id, pw(PAYMENT))
        .await
        .unwrap();
    assert_eq!(
        activation::set_payment_password(&t.app, &id, pw("short")).await,
        Err(ApiError::AlreadyActive)
    );
}

async fn a_code_is_valid_for_29_59_and_expired_at_30_00(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = pending_member(&t).await;
    activation::send_code(&t.app, &id).await.unwrap();
    let digits = t.last_code(PHONE).await;
    t.clock.advance_seconds(30 * 60 - 1);
    assert_eq!(
        activation::confirm_code(&t.app, &id, &wrong(&digits)).await,
        Err(ApiError::CodeIncorrect { attempts_left: 4 }),
        "29:59 is still valid"
    );
    t.clock.advance_seconds(1);
    assert_eq!(
        activation::confirm_code(&t.app, &id, &code(&digits)).await,
        Err(ApiError::CodeExpired)
    );
    assert_eq!(
        activation::confirm_code(&t.app, &id, &wrong(&digits)).await,
        Err(ApiError::CodeExpired),
        "expired answers 410 even when also wrong"
    );
    assert_eq!(status(&t, &id).await, MemberStatus::PendingVerification);
}

async fn resends_wait_60_seconds(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = pending_member(&t).await;
    activation::send_code(&t.app, &id).await.unwrap();
    t.clock.advance_seconds(59);
    assert_eq!(
        activation::send_code(&t.app, &id).await,
        Err(ApiError::CodeResendTooSoon { retry_after_seconds: 1 })
    );
    t.clock.advance_seconds(1);
    activation::send_code(&t.app, &id).await.unwrap();
    assert_eq!(t.sms_count(PHONE).await, 2, "refused sends send nothing");
}

async fn at_most_five_codes_go_out_in_any_hour(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = pending_member(&t).await;
    for _ in 0..5 {
        activation::send_code(&t.app, &id).await.unwrap();
        t.clock.advance_seconds(60);
    }
    // Sent at 0, 60, 120, 180, 240; now 300: the first frees up at 3600.
    assert_eq!(
        activation::send_code(&t.app, &id).await,
        Err(ApiError::CodeSendLimit {
            retry_after_seconds: 3300
        })
    );
    t.clock.advance_seconds(3300 - 1);
    assert_eq!(
        activation::send_code(&t.app, &id).await,
        Err(ApiError::CodeSendLimit { retry_after_seconds: 1 })
    );
    t.clock.advance_seconds(1);
    activation::send_code(&t.app, &id).await.unwrap();
    assert_eq!(t.sms_count(PHONE).await, 6);
}

async fn five_wrong_tries_void_the_code_until_a_new_one_is_sent(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = pending_member(&t).await;
    activation::send_code(&t.app, &id).await.unwrap();
    let digits = t.last_code(PHONE).await;
    for left in (0..5).rev() {
        assert_eq!(
            activation::confirm_code(&t.app, &id, &wrong(&digits)).await,
            Err(ApiError::CodeIncorrect { attempts_left: left })
        );
    }
    assert_eq!(
        activation::confirm_code(&t.app, &id, &code(&digits)).await,
        Err(ApiError::CodeAttemptsExhausted)
    );
    t.clock.advance_seconds(60);
    activation::send_code(&t.app, &id).await.unwrap();
    let fresh = t.last_code(PHONE).await;
    activation::confirm_code(&t.app, &id, &code(&fresh)).await.unwrap();
    assert_eq!(status(&t, &id).await, MemberStatus::Active);
}

/// Codes come from a CSPRNG: 50 sends give (all but a birthday collision or two) 50
/// different codes, spread over the leading digits. A constant, counter or clock-derived
/// code fails.
async fn sms_codes_vary(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = pending_member(&t).await;
    let mut codes = Vec::new();
    for _ in 0..50 {
        activation::send_code(&t.app, &id).await.unwrap();
        codes.push(t.last_code(PHONE).await);
        // 13 minutes apart stays under the five-per-hour limit.
        t.clock.advance_seconds(13 * 60);
    }
    let distinct: std::collections::HashSet<&String> = codes.iter().collect();
    assert!(
        distinct.len() > 40,
        "only {} distinct codes in 50: {codes:?}",
        distinct.len()
    );
    let leading: std::collections::HashSet<char> = codes.iter().filter_map(|c| c.chars().next()).collect();
    assert!(leading.len() >= 5, "codes start with only {leading:?}: {codes:?}");
}

async fn a_new_code_or_a_new_password_voids_the_last_code(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = pending_member(&t).await;
    activation::send_code(&t.app, &id).await.unwrap();
    let first = t.last_code(PHONE).await;
    // A fresh code repeats the last one once in a million sends: resend (at most twice)
    // until it differs, so the old one can be tried. A constant code fails here (and in
    // `sms_codes_vary`).
    let mut second = first.clone();
    for _ in 0..3 {
        t.clock.advance_seconds(60);
        activation::send_code(&t.app, &id).await.unwrap();
        second = t.last_code(PHONE).await;
        if second != first {
            break;
        }
    }
    assert_ne!(first, second, "three codes in a row equal to the first");
    assert!(matches!(
        activation::confirm_code(&t.app, &id, &code(&first)).await,
        Err(ApiError::CodeIncorrect { .. })
    ));
    // Setting the password again while pending replaces it and voids the code.
    activation::set_payment_password(&t.app, &id, pw("Second-Key-2026"))
        .await
        .unwrap();
    assert_eq!(
        activation::confirm_code(&t.app, &id, &code(&second)).await,
        Err(ApiError::NoCodeSent)
    );
    t.clock.advance_seconds(60);
    activation::send_code(&t.app, &id).await.unwrap();
    activation::confirm_code(&t.app, &id, &code(&t.last_code(PHONE).await))
        .await
        .unwrap();
    let member = t.app.store.member_state(&id).await.unwrap().unwrap().member;
    let hash = member.payment_password_hash.unwrap();
    assert!(password::verify_blocking(&pw("Second-Key-2026"), hash.as_str()).unwrap());
    assert!(!password::verify_blocking(&pw(PAYMENT), hash.as_str()).unwrap());
}

async fn a_new_phone_voids_the_code_sent_to_the_old_one(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = pending_member(&t).await;
    activation::send_code(&t.app, &id).await.unwrap();
    let digits = t.last_code(PHONE).await;
    t.member("seller-1", LOGIN, Some("+12025550104")).await;
    assert_eq!(
        activation::confirm_code(&t.app, &id, &code(&digits)).await,
        Err(ApiError::NoCodeSent)
    );
}

async fn two_confirms_at_once_activate_once(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = pending_member(&t).await;
    activation::send_code(&t.app, &id).await.unwrap();
    let digits = t.last_code(PHONE).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (app, id, digits) = (t.app.clone(), id.clone(), digits.clone());
        tasks.push(tokio::spawn(async move {
            activation::confirm_code(&app, &id, &code(&digits)).await
        }));
    }
    let mut activated = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => activated += 1,
            Err(ApiError::NoPendingActivation) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(activated, 1);
}

async fn concurrent_wrong_codes_spend_one_try_each(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = pending_member(&t).await;
    activation::send_code(&t.app, &id).await.unwrap();
    let digits = t.last_code(PHONE).await;
    let mut tasks = Vec::new();
    for _ in 0..7 {
        let (app, id, bad) = (t.app.clone(), id.clone(), wrong(&digits));
        tasks.push(tokio::spawn(
            async move { activation::confirm_code(&app, &id, &bad).await },
        ));
    }
    let mut left = Vec::new();
    let mut exhausted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Err(ApiError::CodeIncorrect { attempts_left }) => left.push(attempts_left),
            Err(ApiError::CodeAttemptsExhausted) => exhausted += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    left.sort_unstable();
    assert_eq!(left, [0, 1, 2, 3, 4]);
    assert_eq!(exhausted, 2);
}

async fn unknown_members_are_not_found(adapter: Adapter) {
    let t = test_app(adapter).await;
    let ghost = fund_account::member::MemberId::parse("ghost").unwrap();
    assert_eq!(
        activation::set_payment_password(&t.app, &ghost, pw(PAYMENT)).await,
        Err(ApiError::MemberNotFound)
    );
    assert_eq!(
        activation::send_code(&t.app, &ghost).await,
        Err(ApiError::MemberNotFound)
    );
    assert_eq!(
        activation::confirm_code(&t.app, &ghost, &code("123456")).await,
        Err(ApiError::MemberNotFound)
    );
    assert_eq!(
        activation::account(&t.app, &ghost).await.map(|_| ()),
        Err(ApiError::MemberNotFound)
    );
}

/// A new code is a new version of the member's code item (so a try spent on the last one
/// can never land on it), and its SMS says how long it lasts.
async fn a_new_code_is_a_new_version_and_its_sms_says_30_minutes(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = pending_member(&t).await;
    activation::send_code(&t.app, &id).await.unwrap();
    let message = t.outbox.messages(Some(PHONE.to_owned()), 1).await.unwrap()[0]
        .message
        .clone();
    assert!(message.contains("valid for 30 minutes"), "{message}");
    assert!(message.contains("30 分钟内有效"), "{message}");
    let code_version = |t: &TestApp| {
        let (app, id) = (t.app.clone(), id.clone());
        async move {
            app.store
                .member_state(&id)
                .await
                .unwrap()
                .unwrap()
                .code
                .unwrap()
                .version
        }
    };
    let first = code_version(&t).await;
    t.clock.advance_seconds(61);
    activation::send_code(&t.app, &id).await.unwrap();
    assert_eq!(code_version(&t).await, first + 1);
}

/// The marketplace's member sync changes what changed and nothing else: the same values
/// are no write at all; a new login hash keeps the code sent to an unchanged phone; a new
/// phone voids it.
async fn member_sync_changes_only_what_changed(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = pending_member(&t).await;
    activation::send_code(&t.app, &id).await.unwrap();
    let state = || {
        let (app, id) = (t.app.clone(), id.clone());
        async move { app.store.member_state(&id).await.unwrap().unwrap() }
    };
    let before = state().await;
    let phone = PhoneNumber::parse(PHONE).unwrap();
    let same = activation::sync_member(
        &t.app,
        &id,
        before.member.login_password_hash.clone(),
        Some(phone.clone()),
    )
    .await
    .unwrap();
    assert_eq!(same, before.member, "the same values write nothing");
    assert_eq!(state().await.member.version, before.member.version);

    let rotated = PhcHash::new("$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA".to_owned());
    activation::sync_member(&t.app, &id, rotated.clone(), Some(phone.clone()))
        .await
        .unwrap();
    let after = state().await;
    assert_eq!(after.member.login_password_hash, rotated, "a new login hash is kept");
    assert_eq!(after.member.version, before.member.version + 1);
    assert!(after.code.is_some(), "the code sent to the same phone stands");

    let moved = PhoneNumber::parse("+12025550104").unwrap();
    activation::sync_member(&t.app, &id, rotated.clone(), Some(moved.clone()))
        .await
        .unwrap();
    let after = state().await;
    assert_eq!(after.member.phone, Some(moved), "a new phone is kept");
    assert!(after.code.is_none(), "the code sent to the old phone is void");
}

/// Counts commits.
#[derive(Default)]
struct Commits(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl StoreHook for Commits {
    async fn before(&self, call: StoreCall<'_>) -> Injection {
        if matches!(call, StoreCall::Commit(_)) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Injection::Pass
    }
}

/// Setting the payment password is two commits when nothing races it: one reserves the
/// try, one sets the password on the state that reservation wrote (no second read).
async fn setting_the_payment_password_commits_twice(adapter: Adapter) {
    let commits = std::sync::Arc::new(Commits::default());
    let t = hooked_app(adapter, commits.clone()).await;
    let id = t.member("seller-1", LOGIN, None).await;
    let before = commits.0.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        activation::set_payment_password(&t.app, &id, pw(PAYMENT)).await,
        Ok(Activation::Active)
    );
    assert_eq!(commits.0.load(std::sync::atomic::Ordering::SeqCst) - before, 2);
}

for_each_adapter!(
    a_new_code_is_a_new_version_and_its_sms_says_30_minutes,
    member_sync_changes_only_what_changed,
    setting_the_payment_password_commits_twice,
    a_member_without_phone_is_active_at_once,
    a_member_with_phone_is_active_only_after_the_code,
    the_password_policy_refuses_weak_and_login_passwords_and_changes_nothing,
    already_active_is_answered_before_the_policy,
    a_code_is_valid_for_29_59_and_expired_at_30_00,
    resends_wait_60_seconds,
    at_most_five_codes_go_out_in_any_hour,
    five_wrong_tries_void_the_code_until_a_new_one_is_sent,
    sms_codes_vary,
    a_new_code_or_a_new_password_voids_the_last_code,
    a_new_phone_voids_the_code_sent_to_the_old_one,
    two_confirms_at_once_activate_once,
    concurrent_wrong_codes_spend_one_try_each,
    unknown_members_are_not_found,
);
