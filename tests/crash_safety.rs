//! Crash safety: a store failure is injected at every call of every multi-step money
//! operation — before the call (nothing happens) and after it (it happened, but the
//! caller never heard). Each time the caller must hear of it and the books must still
//! balance; then the client's retries with the same ids meet a fault at every call of
//! their own (the re-reads that find out what landed, the commit that finishes), and
//! once one gets through the operation has happened exactly once. Every fault planned
//! is counted as it strikes: a fault that never struck proves nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use fund_account::collection::{self, NewCollection, NewRefund};
use fund_account::error::ApiError;
use fund_account::member::MemberId;
use fund_account::money::Currency;
use fund_account::store::StoreError;
use fund_account::withdrawal::{self, Payout};
use fund_account_tests::fixtures::external_id;
use fund_account_tests::fixtures::{amount, withdrawal_request};
use fund_account_tests::{
    for_each_adapter, hooked_app, Adapter, Fault, Injection, StoreCall, StoreHook, TestApp, PAYMENT_PASSWORD,
};

/// Most store calls any one operation makes on its way (with retries far fewer).
const MAX_CALLS: usize = 8;

/// A fault struck: at which call from the plan's start, which call it was, how.
type Strike = (usize, String, Fault);

/// Faults planned at chosen store calls (counted from when the plan is set), a log of
/// the calls, and a record of each fault as it strikes.
#[derive(Default)]
struct FaultPlan {
    state: Mutex<PlanState>,
}

#[derive(Default)]
struct PlanState {
    calls: Vec<String>,
    planned: BTreeMap<usize, Fault>,
    struck: Vec<Strike>,
}

impl FaultPlan {
    fn lock(&self) -> std::sync::MutexGuard<'_, PlanState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Plans one fault at the `call`-th call from now.
    fn strike_at(&self, call: usize, fault: Fault) {
        *self.lock() = PlanState {
            planned: BTreeMap::from([(call, fault)]),
            ..PlanState::default()
        };
    }

    /// Ends the plan: the faults that struck, and the calls made since it was set.
    fn finish(&self) -> (Vec<Strike>, Vec<String>) {
        let state = std::mem::take(&mut *self.lock());
        (state.struck, state.calls)
    }
}

#[async_trait::async_trait]
impl StoreHook for FaultPlan {
    async fn before(&self, call: StoreCall<'_>) -> Injection {
        let name = match call {
            StoreCall::Read(name) => name.to_owned(),
            StoreCall::Commit(writes) => format!("commit of {} writes", writes.len()),
        };
        let mut state = self.lock();
        let n = state.calls.len();
        state.calls.push(name.clone());
        let Some(fault) = state.planned.remove(&n) else {
            return Injection::Pass;
        };
        state.struck.push((n, name, fault));
        let error = StoreError::Unavailable("injected fault".to_owned());
        match fault {
            Fault::Before => Injection::FailBefore(error),
            Fault::After => Injection::FailAfter(error),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Operation {
    Collect,
    Refund,
    Withdraw,
    Paid,
    Returned,
    Settle,
}

/// The set-up an operation works on: the member, and its withdrawal in transit.
struct Arranged {
    member: MemberId,
    withdrawal_id: fund_account::ids::WithdrawalId,
}

async fn run(t: &TestApp, arranged: &Arranged, op: Operation) -> Result<(), ApiError> {
    let member = &arranged.member;
    match op {
        Operation::Collect => collection::collect(
            &t.app,
            NewCollection {
                collection_id: external_id("col-new"),
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
                refund_id: external_id("ref-1"),
                collection_id: external_id("col-pending"),
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
            let report = if matches!(op, Operation::Paid) {
                Payout::Paid
            } else {
                Payout::Returned {
                    reason: "closed".to_owned(),
                }
            };
            withdrawal::report_payout(&t.app, &arranged.withdrawal_id, report)
                .await
                .map(|_| ())
        }
        Operation::Settle => collection::settle_due(&t.app, t.app.now()).await.map(|_| ()),
    }
}

/// 500 available, 60 pending in `col-pending`, 200 in transit in one withdrawal.
async fn arrange(t: &TestApp) -> Arranged {
    let m = t.active_member("seller-1").await;
    t.fund(&m, Currency::Usd, "500").await;
    let withdrawal = withdrawal::withdraw(
        &t.app,
        &m,
        withdrawal_request("setup", Currency::Usd, "200", PAYMENT_PASSWORD),
    )
    .await
    .unwrap();
    collection::collect(
        &t.app,
        NewCollection {
            collection_id: external_id("col-pending"),
            member_id: m.clone(),
            currency: Currency::Usd,
            amount: amount("60"),
            available_at: Some(fund_account_tests::fixtures::at(600)),
        },
    )
    .await
    .unwrap();
    Arranged {
        member: m,
        withdrawal_id: withdrawal.withdrawal.id,
    }
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

/// Checks that `op` has happened exactly once, after the faults that `struck`.
async fn check(t: &TestApp, m: &MemberId, op: Operation, struck: &[Strike]) {
    let usd = t.balances(m).await.usd;
    let (available, pending, in_transit) = expected(op);
    assert_eq!(
        (usd.available, usd.pending, usd.in_transit),
        (amount(available), amount(pending), amount(in_transit)),
        "{op:?} after faults {struck:?}: exactly once"
    );
    t.assert_books_balance(m).await;
}

/// What happened to one run of `op` with a fault planned at one call.
enum Run {
    /// The operation made fewer calls than that, and succeeded.
    Clean,
    /// The fault struck, and the caller heard of it.
    Failed(Strike),
    /// The fault struck, and the operation still answered success: then it must have
    /// happened (an internal retry may recover), which the caller checks at once.
    Succeeded(Strike),
}

/// Runs `op` with the plan's fault at `call`, checking that it struck there alone and
/// that the caller heard of it unless the operation answered success.
async fn run_with_fault(
    t: &TestApp,
    plan: &FaultPlan,
    arranged: &Arranged,
    op: Operation,
    (call, fault): (usize, Fault),
) -> Run {
    plan.strike_at(call, fault);
    let outcome = run(t, arranged, op).await;
    let (mut struck, calls) = plan.finish();
    if struck.is_empty() {
        outcome.unwrap_or_else(|e| panic!("{op:?} with no fault (calls {calls:?}): {e:?}"));
        return Run::Clean;
    }
    assert_eq!(struck.len(), 1, "{op:?}: one fault planned, struck {struck:?}");
    let strike = struck.remove(0);
    assert_eq!(strike.0, call, "{op:?}: struck where planned");
    match outcome {
        Ok(()) => Run::Succeeded(strike),
        // The caller hears of a fault as what it is: never as a refusal or a conflict.
        Err(error) => {
            assert_eq!(
                error,
                ApiError::ServiceUnavailable,
                "{op:?} with a fault at {strike:?} (calls {calls:?})"
            );
            Run::Failed(strike)
        }
    }
}

async fn crash_at_every_call(adapter: Adapter, op: Operation) {
    for fault in [Fault::Before, Fault::After] {
        let mut covered = false;
        for call in 0..MAX_CALLS {
            let plan = Arc::new(FaultPlan::default());
            let t = hooked_app(adapter, plan.clone()).await;
            let arranged = arrange(&t).await;
            if matches!(op, Operation::Settle) {
                t.clock.advance_seconds(600);
            }
            let first = match run_with_fault(&t, &plan, &arranged, op, (call, fault)).await {
                Run::Clean => {
                    check(&t, &arranged.member, op, &[]).await;
                    covered = true;
                    break; // the operation makes fewer calls than this
                }
                Run::Succeeded(strike) => {
                    check(&t, &arranged.member, op, std::slice::from_ref(&strike)).await;
                    strike
                }
                Run::Failed(strike) => strike,
            };
            t.assert_books_balance(&arranged.member).await;
            // The client retries with the same ids and key; each retry meets a fault one
            // call further on, until one makes fewer calls than that and gets through.
            let mut struck = vec![first];
            for retry_call in 0..=MAX_CALLS {
                assert!(
                    retry_call < MAX_CALLS,
                    "{op:?}: the retries after {struck:?} never got through"
                );
                match run_with_fault(&t, &plan, &arranged, op, (retry_call, fault)).await {
                    Run::Clean => break,
                    Run::Succeeded(strike) => {
                        struck.push(strike);
                        check(&t, &arranged.member, op, &struck).await;
                    }
                    Run::Failed(strike) => {
                        struck.push(strike);
                        t.assert_books_balance(&arranged.member).await;
                    }
                }
            }
            assert!(
                struck.len() > 1,
                "{op:?}: a retry makes at least one store call, so a fault struck it"
            );
            check(&t, &arranged.member, op, &struck).await;
        }
        assert!(
            covered,
            "{op:?} makes more than {MAX_CALLS} store calls: some were never struck"
        );
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
