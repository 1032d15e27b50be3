//! Limits under bursts: however many requests arrive at once, a code is checked at most
//! five times, a payment password at most five times before the lock, one code goes out
//! per cooldown and five per hour, and every "check, then write" decides on what it read
//! only if that is still what is stored when it commits. On every store adapter.

use std::sync::Arc;

use fund_account::activation::{self, Activation};
use fund_account::collection::{self, NewCollection, NewRefund};
use fund_account::error::ApiError;
use fund_account::member::{MemberId, MemberStatus};
use fund_account::money::Currency;
use fund_account::password::PaymentPassword;
use fund_account::store::Write;
use fund_account::verification::SmsCode;
use fund_account::withdrawal::{self, Payout};
use fund_account_tests::fixtures::external_id;
use fund_account_tests::fixtures::{amount, withdrawal_request};
use fund_account_tests::{for_each_adapter, hooked_app, test_app, Adapter, Gate, TestApp, PAYMENT_PASSWORD};
use tokio::task::JoinSet;

const PHONE: &str = "+8613800001234";
const LOGIN: &str = "login-Pass-2026";

fn code(text: &str) -> SmsCode {
    SmsCode::parse(text).expect("six digits")
}

/// A wrong code that is surely not `right`.
fn wrong(right: &str) -> SmsCode {
    code(if right == "000000" { "111111" } else { "000000" })
}

/// A member waiting for its code, and the code it was sent.
async fn member_with_code(t: &TestApp) -> (MemberId, String) {
    let id = t.member("seller-1", LOGIN, Some(PHONE)).await;
    let outcome = activation::set_payment_password(&t.app, &id, PaymentPassword::new(PAYMENT_PASSWORD.to_owned()))
        .await
        .expect("set password");
    assert!(matches!(outcome, Activation::PendingVerification { .. }));
    activation::send_code(&t.app, &id).await.expect("send code");
    let digits = t.last_code(PHONE).await;
    (id, digits)
}

async fn status(t: &TestApp, id: &MemberId) -> MemberStatus {
    t.app.store.member_state(id).await.unwrap().unwrap().member.status
}

fn activates(writes: &[Write]) -> bool {
    writes
        .iter()
        .any(|w| matches!(w, Write::PutMember { member, .. } if member.status == MemberStatus::Active))
}

/// The right code read the code record before the fifth wrong try landed; its commit
/// must not overtake the tries that used the code up.
async fn a_right_code_held_while_five_wrong_tries_land_is_refused(adapter: Adapter) {
    let gate = Gate::new(activates);
    let t = hooked_app(adapter, gate.clone()).await;
    let (id, digits) = member_with_code(&t).await;

    let right = {
        let (app, id, typed) = (Arc::clone(&t.app), id.clone(), code(&digits));
        tokio::spawn(async move { activation::confirm_code(&app, &id, &typed).await })
    };
    gate.wait_until_held().await;
    for left in (0..5).rev() {
        assert_eq!(
            activation::confirm_code(&t.app, &id, &wrong(&digits)).await,
            Err(ApiError::CodeIncorrect { attempts_left: left })
        );
    }
    gate.release();
    assert_eq!(right.await.unwrap(), Err(ApiError::CodeAttemptsExhausted));
    assert_eq!(status(&t, &id).await, MemberStatus::PendingVerification);
}

/// 39 wrong guesses and the right one, all at once: at most five are evaluated (answered
/// "incorrect" or accepted); every other answer is "exhausted".
async fn forty_parallel_guesses_are_evaluated_at_most_five_times(adapter: Adapter) {
    let t = test_app(adapter).await;
    let (id, digits) = member_with_code(&t).await;
    let mut burst = JoinSet::new();
    for n in 0..40 {
        let (app, id) = (Arc::clone(&t.app), id.clone());
        let typed = if n == 20 { code(&digits) } else { wrong(&digits) };
        burst.spawn(async move { (n == 20, activation::confirm_code(&app, &id, &typed).await) });
    }
    let (mut incorrect, mut exhausted, mut accepted) = (Vec::new(), 0, 0);
    while let Some(joined) = burst.join_next().await {
        match joined.unwrap() {
            (true, Ok(())) => accepted += 1,
            (_, Err(ApiError::CodeIncorrect { attempts_left })) => incorrect.push(attempts_left),
            (_, Err(ApiError::CodeAttemptsExhausted | ApiError::NoPendingActivation)) => exhausted += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        incorrect.len() + accepted <= 5,
        "{} wrong and {accepted} right evaluated",
        incorrect.len()
    );
    assert_eq!(incorrect.len() + accepted + exhausted, 40);
    let expected = if accepted == 1 {
        MemberStatus::Active
    } else {
        assert_eq!(incorrect.len(), 5, "without the right code, exactly five are evaluated");
        MemberStatus::PendingVerification
    };
    assert_eq!(status(&t, &id).await, expected);
}

/// Twelve wrong payment passwords at once: five answered "incorrect" (4, 3, 2, 1, 0
/// tries left), the rest "locked".
async fn a_burst_of_wrong_payment_passwords_is_checked_five_times_then_locked(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    t.fund(&m, Currency::Usd, "100").await;
    let mut burst = JoinSet::new();
    for n in 0..12 {
        let (app, m) = (Arc::clone(&t.app), m.clone());
        let request = withdrawal_request(&format!("k{n}"), Currency::Usd, "50", "Wrong-Pass-1");
        burst.spawn(async move { withdrawal::withdraw(&app, &m, request).await });
    }
    let (mut left, mut locked) = (Vec::new(), 0);
    while let Some(joined) = burst.join_next().await {
        match joined.unwrap() {
            Err(ApiError::PaymentPasswordIncorrect { attempts_left }) => left.push(attempts_left),
            Err(ApiError::PaymentPasswordLocked { .. }) => locked += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    left.sort_unstable();
    assert_eq!(left, [0, 1, 2, 3, 4]);
    assert_eq!(locked, 7);
    assert_eq!(
        withdrawal::withdraw(
            &t.app,
            &m,
            withdrawal_request("ok", Currency::Usd, "50", PAYMENT_PASSWORD)
        )
        .await,
        Err(ApiError::PaymentPasswordLocked {
            locked_until: fund_account_tests::fixtures::at(3 * 3600)
        }),
        "the right password waits for the lock too"
    );
    assert_eq!(t.balances(&m).await.usd.available, amount("100"));
}

async fn burst_of_sends(t: &TestApp, id: &MemberId, size: usize) -> Vec<Result<(), ApiError>> {
    let mut burst = JoinSet::new();
    for _ in 0..size {
        let (app, id) = (Arc::clone(&t.app), id.clone());
        burst.spawn(async move { activation::send_code(&app, &id).await.map(|_| ()) });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = burst.join_next().await {
        outcomes.push(joined.unwrap());
    }
    outcomes
}

/// Ten sends at once send one code; after each cooldown another burst sends one more,
/// five in the hour, then none.
async fn bursts_of_sends_keep_the_cooldown_and_the_hourly_limit(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = t.member("seller-1", LOGIN, Some(PHONE)).await;
    activation::set_payment_password(&t.app, &id, PaymentPassword::new(PAYMENT_PASSWORD.to_owned()))
        .await
        .expect("set password");
    for round in 1..=5 {
        let outcomes = burst_of_sends(&t, &id, 10).await;
        let sent = outcomes.iter().filter(|o| o.is_ok()).count();
        let too_soon = outcomes
            .iter()
            .filter(|o| matches!(o, Err(ApiError::CodeResendTooSoon { .. })))
            .count();
        assert_eq!((sent, too_soon), (1, 9), "round {round}: {outcomes:?}");
        assert_eq!(t.sms_count(PHONE).await, round);
        t.clock.advance_seconds(60);
    }
    let outcomes = burst_of_sends(&t, &id, 10).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Err(ApiError::CodeSendLimit { .. }))),
        "{outcomes:?}"
    );
    assert_eq!(t.sms_count(PHONE).await, 5);
}

/// Ten activations at once of a member without a phone: one sets the password.
async fn a_burst_of_activations_activates_once(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = t.member("seller-1", LOGIN, None).await;
    let mut burst = JoinSet::new();
    for n in 0..10 {
        let (app, id) = (Arc::clone(&t.app), id.clone());
        let password = PaymentPassword::new(format!("Vault-Key-2026-{n}"));
        burst.spawn(async move { activation::set_payment_password(&app, &id, password).await });
    }
    let (mut active, mut already) = (0, 0);
    while let Some(joined) = burst.join_next().await {
        match joined.unwrap() {
            Ok(Activation::Active) => active += 1,
            Err(ApiError::AlreadyActive) => already += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((active, already), (1, 9));
}

/// `Retry-After` of an `activation_attempt_limit` refusal (matched by its contract code).
fn limited_for(error: &ApiError) -> Option<i64> {
    (error.code() == "activation_attempt_limit")
        .then(|| error.retry_after_seconds())
        .flatten()
}

/// Fifteen payment passwords at once for a member with a phone (each would replace the
/// pending one): ten are tried, five refused before any argon2id work, until the hour
/// since the first ten has passed.
async fn a_burst_of_activation_tries_is_limited_to_ten_an_hour(adapter: Adapter) {
    let t = test_app(adapter).await;
    let id = t.member("seller-1", LOGIN, Some(PHONE)).await;
    let mut burst = JoinSet::new();
    for n in 0..15 {
        let (app, id) = (Arc::clone(&t.app), id.clone());
        let password = PaymentPassword::new(format!("Vault-Key-2026-{n}"));
        burst.spawn(async move { activation::set_payment_password(&app, &id, password).await });
    }
    let (mut pending, mut limited) = (0, 0);
    while let Some(joined) = burst.join_next().await {
        match joined.unwrap() {
            Ok(Activation::PendingVerification { .. }) => pending += 1,
            Err(limit) if limited_for(&limit) == Some(3600) => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((pending, limited), (10, 5));
    let another = || activation::set_payment_password(&t.app, &id, PaymentPassword::new("Vault-Key-2027!".to_owned()));
    t.clock.advance_seconds(3599);
    assert_eq!(limited_for(&another().await.unwrap_err()), Some(1));
    t.clock.advance_seconds(1);
    assert!(matches!(another().await, Ok(Activation::PendingVerification { .. })));
    // A weak password is refused without spending a try.
    assert!(matches!(
        activation::set_payment_password(&t.app, &id, PaymentPassword::new("short".to_owned())).await,
        Err(ApiError::PaymentPasswordTooWeak(_))
    ));
}

/// Twenty reports of one collection at once credit `pending` once.
async fn a_burst_of_one_collection_credits_once(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    let mut burst = JoinSet::new();
    for _ in 0..20 {
        let app = Arc::clone(&t.app);
        let request = NewCollection {
            collection_id: external_id("col-1"),
            member_id: m.clone(),
            currency: Currency::Usd,
            amount: amount("30"),
            available_at: None,
        };
        burst.spawn(async move { collection::collect(&app, request).await });
    }
    let mut created = 0;
    while let Some(joined) = burst.join_next().await {
        if joined.unwrap().expect("collect or repeat").created {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    assert_eq!(t.balances(&m).await.usd.pending, amount("30"));
    t.assert_books_balance(&m).await;
}

/// Refunds of one collection at once: exactly as many as fit.
async fn a_burst_of_refunds_takes_exactly_what_the_collection_holds(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    collection::collect(
        &t.app,
        NewCollection {
            collection_id: external_id("col-1"),
            member_id: m.clone(),
            currency: Currency::Usd,
            amount: amount("100"),
            available_at: Some(fund_account_tests::fixtures::at(3600)),
        },
    )
    .await
    .unwrap();
    let mut burst = JoinSet::new();
    for n in 0..25 {
        let app = Arc::clone(&t.app);
        let request = NewRefund {
            refund_id: external_id(&format!("ref-{n}")),
            collection_id: external_id("col-1"),
            amount: amount("10"),
        };
        burst.spawn(async move { collection::refund(&app, request).await });
    }
    let (mut refunded, mut refused) = (0, 0);
    while let Some(joined) = burst.join_next().await {
        match joined.unwrap() {
            Ok(created) if created.created => refunded += 1,
            Err(ApiError::RefundExceedsCollection { .. }) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((refunded, refused), (10, 15));
    assert_eq!(t.balances(&m).await.usd.pending, amount("0"));
    t.assert_books_balance(&m).await;
}

/// `paid` and `returned` for one withdrawal, ten of each at once: one kind wins, its
/// repeats answer the same, the other kind is refused, money moves once.
async fn a_burst_of_payout_reports_settles_the_withdrawal_once(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    t.fund(&m, Currency::Usd, "100").await;
    let created = withdrawal::withdraw(
        &t.app,
        &m,
        withdrawal_request("k", Currency::Usd, "60", PAYMENT_PASSWORD),
    )
    .await
    .unwrap();
    let mut burst = JoinSet::new();
    for n in 0..20 {
        let (app, id) = (Arc::clone(&t.app), created.withdrawal.id.clone());
        let report = if n % 2 == 0 {
            Payout::Paid
        } else {
            Payout::Returned {
                reason: "account closed".to_owned(),
            }
        };
        burst.spawn(async move { (n % 2 == 0, withdrawal::report_payout(&app, &id, report).await) });
    }
    let (mut paid, mut returned, mut refused_paid, mut refused_returned) = (0, 0, 0, 0);
    while let Some(joined) = burst.join_next().await {
        match joined.unwrap() {
            (true, Ok(_)) => paid += 1,
            (false, Ok(_)) => returned += 1,
            (true, Err(ApiError::WithdrawalAlreadySettled)) => refused_paid += 1,
            (false, Err(ApiError::WithdrawalAlreadySettled)) => refused_returned += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    let balances = t.balances(&m).await.usd;
    assert_eq!(balances.in_transit, amount("0"));
    if paid > 0 {
        assert_eq!((paid, returned, refused_returned), (10, 0, 10));
        assert_eq!(balances.available, amount("40"));
    } else {
        assert_eq!((returned, refused_paid), (10, 10));
        assert_eq!(balances.available, amount("100"));
    }
    t.assert_books_balance(&m).await;
}

for_each_adapter!(
    a_right_code_held_while_five_wrong_tries_land_is_refused,
    forty_parallel_guesses_are_evaluated_at_most_five_times,
    a_burst_of_wrong_payment_passwords_is_checked_five_times_then_locked,
    bursts_of_sends_keep_the_cooldown_and_the_hourly_limit,
    a_burst_of_activations_activates_once,
    a_burst_of_activation_tries_is_limited_to_ten_an_hour,
    a_burst_of_one_collection_credits_once,
    a_burst_of_refunds_takes_exactly_what_the_collection_holds,
    a_burst_of_payout_reports_settles_the_withdrawal_once,
);
