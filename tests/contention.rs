//! DynamoDB cancels a `TransactWriteItems` with `TransactionConflict` when another
//! transaction touches one of its items, and a `TransactGetItems` when a write to one of
//! its items is in flight; the SDK retries neither. The emulator never does either, so a
//! hook injects them. Every operation retries its own conflicts: the caller never sees one.

use fund_account::activation::{self, Activation};
use fund_account::collection::{self, NewCollection, NewRefund};
use fund_account::member::{MemberId, MemberStatus};
use fund_account::money::Currency;
use fund_account::password::PaymentPassword;
use fund_account::verification::SmsCode;
use fund_account::withdrawal::{self, Payout};
use fund_account_tests::fixtures::external_id;
use fund_account_tests::fixtures::{amount, withdrawal_request};
use fund_account_tests::{for_each_adapter, hooked_app, Adapter, Conflicts, TestApp, PAYMENT_PASSWORD};

/// How many conflicts in a row each operation meets.
const CONFLICTS: usize = 3;

const PHONE: &str = "+8613800001234";

/// An active member behind `conflicts` (not yet armed), with `col-1` of 30 USD pending.
async fn member_with_a_collection(adapter: Adapter, conflicts: &std::sync::Arc<Conflicts>) -> (TestApp, MemberId) {
    let t = hooked_app(adapter, conflicts.clone()).await;
    let m = t.active_member("seller-1").await;
    collection::collect(&t.app, new_collection("col-1", &m, "30"))
        .await
        .unwrap();
    (t, m)
}

/// An active member behind `conflicts` (not yet armed), with 100 USD available.
async fn funded_member(adapter: Adapter, conflicts: &std::sync::Arc<Conflicts>) -> (TestApp, MemberId) {
    let t = hooked_app(adapter, conflicts.clone()).await;
    let m = t.active_member("seller-1").await;
    t.fund(&m, Currency::Usd, "100").await;
    (t, m)
}

fn new_collection(id: &str, member: &MemberId, value: &str) -> NewCollection {
    NewCollection {
        collection_id: external_id(id),
        member_id: member.clone(),
        currency: Currency::Usd,
        amount: amount(value),
        available_at: None,
    }
}

async fn a_collection_retries_its_conflicts(adapter: Adapter) {
    let conflicts = Conflicts::on_commits(CONFLICTS);
    let t = hooked_app(adapter, conflicts.clone()).await;
    let m = t.active_member("seller-1").await;
    conflicts.arm();
    let created = collection::collect(&t.app, new_collection("col-1", &m, "30"))
        .await
        .unwrap();
    assert!(created.created);
    assert!(conflicts.all_injected());
    assert_eq!(t.balances(&m).await.usd.pending, amount("30"));
    t.assert_books_balance(&m).await;
}

async fn a_refund_retries_its_conflicts(adapter: Adapter) {
    let conflicts = Conflicts::on_commits(CONFLICTS);
    let (t, m) = member_with_a_collection(adapter, &conflicts).await;
    conflicts.arm();
    let refund = NewRefund {
        refund_id: external_id("ref-1"),
        collection_id: external_id("col-1"),
        amount: amount("10"),
    };
    assert!(collection::refund(&t.app, refund).await.unwrap().created);
    assert!(conflicts.all_injected());
    assert_eq!(t.balances(&m).await.usd.pending, amount("20"));
    t.assert_books_balance(&m).await;
}

async fn settlement_retries_its_conflicts(adapter: Adapter) {
    let conflicts = Conflicts::on_commits(CONFLICTS);
    let (t, m) = member_with_a_collection(adapter, &conflicts).await;
    conflicts.arm();
    let settled = collection::settle_due(&t.app, t.app.now()).await.unwrap();
    assert_eq!(settled.count, 1);
    assert!(conflicts.all_injected());
    assert_eq!(t.balances(&m).await.usd.available, amount("30"));
}

/// A withdrawal of 60 of 100 meets `conflicts` and still moves the money once.
async fn a_withdrawal_goes_through(adapter: Adapter, conflicts: std::sync::Arc<Conflicts>) {
    let (t, m) = funded_member(adapter, &conflicts).await;
    conflicts.arm();
    withdrawal::withdraw(
        &t.app,
        &m,
        withdrawal_request("k", Currency::Usd, "60", PAYMENT_PASSWORD),
    )
    .await
    .unwrap();
    assert!(conflicts.all_injected());
    assert_eq!(t.balances(&m).await.usd.in_transit, amount("60"));
    t.assert_books_balance(&m).await;
}

async fn a_withdrawal_retries_conflicts_of_its_commit(adapter: Adapter) {
    a_withdrawal_goes_through(adapter, Conflicts::on_commits(CONFLICTS)).await;
}

/// The withdrawal's read is a `TransactGetItems`: cancelled while a write to the member,
/// the balance or the key is in flight.
async fn a_withdrawal_retries_conflicts_of_its_transactional_read(adapter: Adapter) {
    a_withdrawal_goes_through(adapter, Conflicts::on_read("withdrawal_context", CONFLICTS)).await;
}

async fn payout_reports_retry_their_conflicts(adapter: Adapter) {
    let conflicts = Conflicts::on_commits(CONFLICTS);
    let (t, m) = funded_member(adapter, &conflicts).await;
    let first = withdrawal::withdraw(
        &t.app,
        &m,
        withdrawal_request("k1", Currency::Usd, "60", PAYMENT_PASSWORD),
    )
    .await
    .unwrap();
    let second = withdrawal::withdraw(
        &t.app,
        &m,
        withdrawal_request("k2", Currency::Usd, "40", PAYMENT_PASSWORD),
    )
    .await
    .unwrap();
    conflicts.arm();
    withdrawal::report_payout(&t.app, &first.withdrawal.id, Payout::Paid)
        .await
        .unwrap();
    assert!(conflicts.all_injected());
    conflicts.arm();
    let returned = Payout::Returned {
        reason: "closed".to_owned(),
    };
    withdrawal::report_payout(&t.app, &second.withdrawal.id, returned)
        .await
        .unwrap();
    assert!(conflicts.all_injected());
    let usd = t.balances(&m).await.usd;
    assert_eq!((usd.available, usd.in_transit), (amount("40"), amount("0")));
    t.assert_books_balance(&m).await;
}

async fn activation_steps_retry_their_conflicts(adapter: Adapter) {
    let conflicts = Conflicts::on_commits(CONFLICTS);
    let t = hooked_app(adapter, conflicts.clone()).await;
    conflicts.arm();
    let id = t.member("seller-1", "login-Pass-2026", Some(PHONE)).await;
    assert!(conflicts.all_injected(), "member sync");
    conflicts.arm();
    let outcome = activation::set_payment_password(&t.app, &id, PaymentPassword::new(PAYMENT_PASSWORD.to_owned()))
        .await
        .unwrap();
    assert!(matches!(outcome, Activation::PendingVerification { .. }));
    assert!(conflicts.all_injected(), "set payment password");
    conflicts.arm();
    activation::send_code(&t.app, &id).await.unwrap();
    assert!(conflicts.all_injected(), "send code");
    assert_eq!(t.sms_count(PHONE).await, 1, "one code goes out, however many conflicts");
    let digits = t.last_code(PHONE).await;
    conflicts.arm();
    activation::confirm_code(&t.app, &id, &SmsCode::parse(&digits).unwrap())
        .await
        .unwrap();
    assert!(conflicts.all_injected(), "confirm code");
    let member = t.app.store.member_state(&id).await.unwrap().unwrap().member;
    assert_eq!(member.status, MemberStatus::Active);
}

for_each_adapter!(
    a_collection_retries_its_conflicts,
    a_refund_retries_its_conflicts,
    settlement_retries_its_conflicts,
    a_withdrawal_retries_conflicts_of_its_commit,
    a_withdrawal_retries_conflicts_of_its_transactional_read,
    payout_reports_retry_their_conflicts,
    activation_steps_retry_their_conflicts,
);
