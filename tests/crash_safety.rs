//! Crash safety: a store failure is injected at every call of every multi-step money
//! operation — before the call (nothing happens) and after it (it happened, but the
//! caller never heard). Each time the books must still balance, and a retry with the same
//! ids must complete the operation exactly once.

use fund_account::collection::{self, NewCollection, NewRefund};
use fund_account::error::ApiError;
use fund_account::member::MemberId;
use fund_account::money::Currency;
use fund_account::withdrawal::{self, Payout};
use fund_account_tests::fixtures::{amount, withdrawal_request};
use fund_account_tests::{faulty_app, for_each_adapter, Adapter, Fault, FaultyStore, TestApp, PAYMENT_PASSWORD};

/// Most store calls any one operation makes on its way (with retries far fewer).
const MAX_CALLS: usize = 8;

#[derive(Debug, Clone, Copy)]
enum Operation {
    Collect,
    Refund,
    Withdraw,
    Paid,
    Returned,
    Settle,
}

async fn run(t: &TestApp, member: &MemberId, op: Operation) -> Result<(), ApiError> {
    match op {
        Operation::Collect => collection::collect(
            &t.app,
            NewCollection {
                collection_id: "col-new".to_owned(),
                member_id: member.clone(),
                currency: Currency::Usd,
                amount: amount("70"),
                available_at: None,
            },
        )
        .await
        .map(|_| ()),
        Operation::Refund => collection::refund(
            &t.app,
            NewRefund {
                refund_id: "ref-1".to_owned(),
                collection_id: "col-pending".to_owned(),
                amount: amount("25"),
            },
        )
        .await
        .map(|_| ()),
        Operation::Withdraw => withdrawal::withdraw(
            &t.app,
            member,
            withdrawal_request("crash-key", Currency::Usd, "100", PAYMENT_PASSWORD),
        )
        .await
        .map(|_| ()),
        Operation::Paid | Operation::Returned => {
            let id = t
                .app
                .store
                .withdrawals(member, &fund_account::store::PageRequest { limit: 1, before: None })
                .await?
                .items[0]
                .id
                .clone();
            let report = if matches!(op, Operation::Paid) {
                Payout::Paid
            } else {
                Payout::Returned {
                    reason: "closed".to_owned(),
                }
            };
            withdrawal::report_payout(&t.app, &id, report).await.map(|_| ())
        }
        Operation::Settle => collection::settle_due(&t.app, t.app.now()).await.map(|_| ()),
    }
}

/// 500 available, 60 pending in `col-pending`, 200 in transit in one withdrawal.
async fn arrange(t: &TestApp) -> MemberId {
    let m = t.active_member("seller-1").await;
    t.fund(&m, Currency::Usd, "500").await;
    withdrawal::withdraw(
        &t.app,
        &m,
        withdrawal_request("setup", Currency::Usd, "200", PAYMENT_PASSWORD),
    )
    .await
    .unwrap();
    collection::collect(
        &t.app,
        NewCollection {
            collection_id: "col-pending".to_owned(),
            member_id: m.clone(),
            currency: Currency::Usd,
            amount: amount("60"),
            available_at: Some(fund_account_tests::fixtures::at(600)),
        },
    )
    .await
    .unwrap();
    m
}

/// (available, pending, in_transit) once the operation has happened exactly once.
fn expected(op: Operation) -> (&'static str, &'static str, &'static str) {
    match op {
        Operation::Collect => ("300", "130", "200"),
        Operation::Refund => ("300", "35", "200"),
        Operation::Withdraw => ("200", "60", "300"),
        Operation::Paid => ("300", "60", "0"),
        Operation::Returned => ("500", "60", "0"),
        Operation::Settle => ("360", "0", "200"),
    }
}

async fn check(t: &TestApp, m: &MemberId, op: Operation, fault: Fault, call: usize) {
    let usd = t.balances(m).await.usd;
    let (available, pending, in_transit) = expected(op);
    assert_eq!(
        (usd.available, usd.pending, usd.in_transit),
        (amount(available), amount(pending), amount(in_transit)),
        "{op:?} with a fault {fault:?} call {call}: exactly once"
    );
    t.assert_books_balance(m).await;
}

async fn crash_at_every_call(adapter: Adapter, op: Operation) {
    for fault in [Fault::Before, Fault::After] {
        for call in 0..MAX_CALLS {
            let (t, faulty): (TestApp, std::sync::Arc<FaultyStore>) = faulty_app(adapter).await;
            let m = arrange(&t).await;
            if matches!(op, Operation::Settle) {
                t.clock.advance_seconds(600);
            }
            faulty.arm(call, fault);
            let first = run(&t, &m, op).await;
            let struck = faulty.struck();
            faulty.disarm();
            if !struck {
                first.unwrap();
                check(&t, &m, op, fault, call).await;
                break; // the operation makes fewer calls than this
            }
            assert!(
                matches!(first, Ok(()) | Err(ApiError::ServiceUnavailable)),
                "{op:?}: {first:?}"
            );
            t.assert_books_balance(&m).await;
            // The client retries with the same ids and key.
            run(&t, &m, op)
                .await
                .unwrap_or_else(|e| panic!("{op:?} retry after {fault:?} at call {call}: {e:?}"));
            check(&t, &m, op, fault, call).await;
        }
    }
}

async fn a_collection_survives_a_crash_at_every_step(adapter: Adapter) {
    crash_at_every_call(adapter, Operation::Collect).await;
}
async fn a_refund_survives_a_crash_at_every_step(adapter: Adapter) {
    crash_at_every_call(adapter, Operation::Refund).await;
}
async fn a_withdrawal_survives_a_crash_at_every_step(adapter: Adapter) {
    crash_at_every_call(adapter, Operation::Withdraw).await;
}
async fn a_paid_report_survives_a_crash_at_every_step(adapter: Adapter) {
    crash_at_every_call(adapter, Operation::Paid).await;
}
async fn a_returned_report_survives_a_crash_at_every_step(adapter: Adapter) {
    crash_at_every_call(adapter, Operation::Returned).await;
}
async fn settlement_survives_a_crash_at_every_step(adapter: Adapter) {
    crash_at_every_call(adapter, Operation::Settle).await;
}

for_each_adapter!(
    a_collection_survives_a_crash_at_every_step,
    a_refund_survives_a_crash_at_every_step,
    a_withdrawal_survives_a_crash_at_every_step,
    a_paid_report_survives_a_crash_at_every_step,
    a_returned_report_survives_a_crash_at_every_step,
    settlement_survives_a_crash_at_every_step,
);
