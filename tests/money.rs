//! Money movement through the domain services, on every store adapter: collections,
//! settlement, refunds, withdrawals with the payment password and Idempotency-Key,
//! payouts — and the books balancing after each.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;

use fund_account::collection::{self, Created, NewCollection, NewRefund};
use fund_account::error::ApiError;
use fund_account::ledger::Bucket;
use fund_account::member::MemberId;
use fund_account::money::{Amount, Currency};
use fund_account::records::{CollectionStatus, Refund, WithdrawalStatus};
use fund_account::routes::{self, Route};
use fund_account::store::{PageRequest, Write};
use fund_account::withdrawal::{self, Payout, WithdrawalCreated, WithdrawalRequest};
use fund_account_tests::fixtures::amount;
use fund_account_tests::fixtures::{external_id, withdrawal_id};
use fund_account_tests::{
    for_each_adapter, hooked_app, test_app, Adapter, Gate, Injection, StoreCall, StoreHook, TestApp, PAYMENT_PASSWORD,
};

fn request(key: &str, currency: Currency, value: &str, password: &str) -> WithdrawalRequest {
    fund_account_tests::fixtures::withdrawal_request(key, currency, value, password)
}

async fn withdraw(
    t: &TestApp,
    member: &MemberId,
    key: &str,
    currency: Currency,
    value: &str,
) -> Result<WithdrawalCreated, ApiError> {
    withdrawal::withdraw(&t.app, member, request(key, currency, value, PAYMENT_PASSWORD)).await
}

fn new_collection(
    id: &str,
    member: &MemberId,
    currency: Currency,
    value: &str,
    available_at: Option<i64>,
) -> NewCollection {
    NewCollection {
        collection_id: external_id(id),
        member_id: member.clone(),
        currency,
        amount: amount(value),
        available_at: available_at.map(fund_account_tests::fixtures::at),
    }
}

/// A refund request against `col-1`, the collection most tests here make.
fn refund_of_col_1(id: &str, value: &str) -> NewRefund {
    NewRefund {
        refund_id: external_id(id),
        collection_id: external_id("col-1"),
        amount: amount(value),
    }
}

/// Refunds from `col-1`.
async fn refund_col_1(t: &TestApp, id: &str, value: &str) -> Result<Created<Refund>, ApiError> {
    collection::refund(&t.app, refund_of_col_1(id, value)).await
}

/// The refusal of a refund from a collection that is used up.
fn nothing_left() -> Result<Created<Refund>, ApiError> {
    Err(ApiError::RefundExceedsCollection {
        refundable: amount("0"),
    })
}

async fn collections_credit_pending_once_and_settle_at_their_time(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    let first = collection::collect(&t.app, new_collection("col-1", &m, Currency::Usd, "1500", Some(0)))
        .await
        .unwrap();
    assert!(first.created);
    let repeat = collection::collect(&t.app, new_collection("col-1", &m, Currency::Usd, "1500.00", Some(0)))
        .await
        .unwrap();
    assert!(!repeat.created, "the same values (amounts as values) are a repeat");
    assert_eq!(repeat.record, first.record);
    assert_eq!(
        collection::collect(&t.app, new_collection("col-1", &m, Currency::Usd, "1501", Some(0))).await,
        Err(ApiError::CollectionConflict)
    );
    assert_eq!(
        collection::collect(&t.app, new_collection("col-1", &m, Currency::Cny, "1500", Some(0))).await,
        Err(ApiError::CollectionConflict)
    );
    let ghost = MemberId::parse("ghost").unwrap();
    assert_eq!(
        collection::collect(&t.app, new_collection("col-2", &ghost, Currency::Usd, "1", None)).await,
        Err(ApiError::MemberNotFound)
    );
    collection::collect(&t.app, new_collection("col-3", &m, Currency::Usd, "10", Some(-1)))
        .await
        .unwrap();
    collection::collect(&t.app, new_collection("col-4", &m, Currency::Usd, "5", Some(1)))
        .await
        .unwrap();
    assert_eq!(t.balances(&m).await.usd.pending, amount("1515"));

    // Due at now and a second before settle; a second after waits.
    let settled = collection::settle_due(&t.app, t.app.now()).await.unwrap();
    assert_eq!((settled.count, settled.usd), (2, amount("1510")));
    let usd = t.balances(&m).await.usd;
    assert_eq!((usd.available, usd.pending), (amount("1510"), amount("5")));
    assert_eq!(
        collection::settle_due(&t.app, t.app.now()).await.unwrap().count,
        0,
        "reruns settle nothing twice"
    );
    t.clock.advance_seconds(1);
    assert_eq!(collection::settle_due(&t.app, t.app.now()).await.unwrap().count, 1);
    t.assert_books_balance(&m).await;
}

async fn refunds_come_from_pending_then_available_and_never_exceed_the_collection(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    collection::collect(&t.app, new_collection("col-1", &m, Currency::Cny, "100", Some(0)))
        .await
        .unwrap();

    let r1 = collection::refund(&t.app, refund_of_col_1("ref-1", "30"))
        .await
        .unwrap();
    assert!(r1.created);
    assert_eq!(r1.record.taken_from, Bucket::Pending);
    assert!(
        !collection::refund(&t.app, refund_of_col_1("ref-1", "30.00"))
            .await
            .unwrap()
            .created
    );
    assert_eq!(
        collection::refund(&t.app, refund_of_col_1("ref-1", "31")).await,
        Err(ApiError::RefundConflict)
    );
    assert_eq!(
        collection::refund(&t.app, refund_of_col_1("ref-2", "70.01")).await,
        Err(ApiError::RefundExceedsCollection {
            refundable: amount("70")
        })
    );
    assert_eq!(
        collection::refund(
            &t.app,
            NewRefund {
                collection_id: external_id("col-x"),
                ..refund_of_col_1("ref-3", "1")
            }
        )
        .await,
        Err(ApiError::CollectionNotFound)
    );

    collection::settle_due(&t.app, t.app.now()).await.unwrap();
    let cny = t.balances(&m).await.cny;
    assert_eq!(
        (cny.available, cny.pending),
        (amount("70"), amount("0")),
        "settlement moves what refunds left"
    );
    let r4 = collection::refund(&t.app, refund_of_col_1("ref-4", "20"))
        .await
        .unwrap();
    assert_eq!(r4.record.taken_from, Bucket::Available);

    // Spend most of `available`: a refund larger than what is left there is refused.
    withdraw(&t, &m, "k-1", Currency::Cny, "45").await.unwrap();
    assert_eq!(
        collection::refund(&t.app, refund_of_col_1("ref-5", "10")).await,
        Err(ApiError::InsufficientFunds { available: amount("5") })
    );
    // A full-refund repeat still answers as a repeat, not as "exceeds".
    assert!(
        !collection::refund(&t.app, refund_of_col_1("ref-4", "20"))
            .await
            .unwrap()
            .created
    );
    t.assert_books_balance(&m).await;
}

/// What a refund could touch: the balances, the collection (its version included) and
/// the ledger.
async fn refund_state(
    t: &TestApp,
    member: &MemberId,
    collection_id: &str,
) -> (
    fund_account::ledger::Balances,
    fund_account::records::Collection,
    Vec<String>,
) {
    let ledger = t
        .app
        .store
        .ledger(
            member,
            None,
            &PageRequest {
                limit: 100,
                before: None,
            },
        )
        .await
        .unwrap();
    let collection = t.stored_collection(collection_id).await;
    let entries = ledger.items.into_iter().map(|e| e.id).collect();
    (t.balances(member).await, collection, entries)
}

async fn a_refund_of_exactly_what_is_left_uses_the_collection_up(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    collection::collect(&t.app, new_collection("col-1", &m, Currency::Usd, "100", Some(3600)))
        .await
        .unwrap();
    assert!(refund_col_1(&t, "ref-1", "60.01").await.unwrap().created);
    let last = refund_col_1(&t, "ref-2", "39.99").await.unwrap();
    assert!(last.created, "exactly what is left, to the cent, is refundable");
    assert_eq!(last.record.taken_from, Bucket::Pending);
    let stored = t.stored_collection("col-1").await;
    assert_eq!(stored.refunded, stored.amount, "fully refunded");
    assert_eq!(t.balances(&m).await.usd.pending, amount("0"));

    let used_up = refund_state(&t, &m, "col-1").await;
    assert_eq!(
        refund_col_1(&t, "ref-3", "0.01").await,
        nothing_left(),
        "not a cent more"
    );
    assert_eq!(
        refund_state(&t, &m, "col-1").await,
        used_up,
        "a refusal changes nothing"
    );
    assert_eq!(t.app.store.refund(&external_id("ref-3")).await.unwrap(), None);

    // Settled, the used-up collection moves nothing and still refuses (not with
    // `insufficient_funds`: what it lacks is refundable money, not `available`).
    t.clock.advance_seconds(3600);
    let settled = collection::settle_due(&t.app, t.app.now()).await.unwrap();
    assert_eq!((settled.count, settled.usd), (1, amount("0")));
    assert_eq!(refund_col_1(&t, "ref-3", "0.01").await, nothing_left());
    t.assert_books_balance(&m).await;
}

async fn a_refund_repeated_after_its_collection_is_used_up_changes_nothing(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    t.fund(&m, Currency::Usd, "500").await;
    collection::collect(&t.app, new_collection("col-1", &m, Currency::Usd, "80", Some(0)))
        .await
        .unwrap();
    collection::settle_due(&t.app, t.app.now()).await.unwrap();
    let first = refund_col_1(&t, "ref-1", "30").await.unwrap();
    let second = refund_col_1(&t, "ref-2", "50").await.unwrap();
    assert_eq!(
        (first.record.taken_from, second.record.taken_from),
        (Bucket::Available, Bucket::Available)
    );
    let used_up = refund_state(&t, &m, "col-1").await;
    assert_eq!(used_up.0.usd.available, amount("500"), "580 in, 80 refunded");
    assert_eq!(used_up.1.refunded, amount("80"));

    // The marketplace sends both again (a retry after a lost answer): each is the
    // repeat of what landed, not a refusal and not a second refund.
    for (id, value, stored) in [("ref-1", "30.00", &first), ("ref-2", "50", &second)] {
        let again = refund_col_1(&t, id, value).await.unwrap();
        assert!(!again.created);
        assert_eq!(&again.record, &stored.record);
    }
    // The same id for another amount is a conflict; a new id is refused with what is
    // left, which is nothing.
    assert_eq!(refund_col_1(&t, "ref-2", "49").await, Err(ApiError::RefundConflict));
    assert_eq!(refund_col_1(&t, "ref-4", "30").await, nothing_left());
    assert_eq!(
        refund_state(&t, &m, "col-1").await,
        used_up,
        "repeats and refusals change nothing"
    );
    assert_eq!(t.app.store.refund(&external_id("ref-4")).await.unwrap(), None);
    t.assert_books_balance(&m).await;
}

async fn withdrawals_take_any_amount_up_to_available_with_the_fee_inside(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    t.fund(&m, Currency::Usd, "1000").await;
    assert_eq!(
        withdraw(&t, &m, "k-0", Currency::Usd, "15").await,
        Err(ApiError::AmountBelowFee { fee: amount("15") })
    );
    assert_eq!(
        withdraw(&t, &m, "k-0", Currency::Usd, "1000.01").await,
        Err(ApiError::InsufficientFunds {
            available: amount("1000")
        })
    );
    let part = withdraw(&t, &m, "k-1", Currency::Usd, "250").await.unwrap().withdrawal;
    assert_eq!(
        (part.amount, part.fee, part.net_amount),
        (amount("250"), amount("15"), amount("235"))
    );
    assert_eq!(part.status, WithdrawalStatus::Processing);
    // The rest, to the cent: no per-transaction limit.
    withdraw(&t, &m, "k-2", Currency::Usd, "750").await.unwrap();
    let usd = t.balances(&m).await.usd;
    assert_eq!((usd.available, usd.in_transit), (amount("0"), amount("1000")));
    assert_eq!(
        withdraw(&t, &m, "k-3", Currency::Usd, "16").await,
        Err(ApiError::InsufficientFunds { available: amount("0") })
    );
    // Many small ones: no count limit either (CNY has no fee by default).
    t.fund(&m, Currency::Cny, "1").await;
    for i in 0..10 {
        withdraw(&t, &m, &format!("c-{i}"), Currency::Cny, "0.1").await.unwrap();
    }
    assert_eq!(t.balances(&m).await.cny.available, amount("0"));
    t.assert_books_balance(&m).await;
}

async fn an_inactive_account_cannot_withdraw(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.member("seller-1", "login-Pass-2026", None).await;
    t.fund(&m, Currency::Usd, "100").await;
    assert_eq!(
        withdraw(&t, &m, "k", Currency::Usd, "50").await,
        Err(ApiError::AccountNotActive)
    );
    let ghost = MemberId::parse("ghost").unwrap();
    assert_eq!(
        withdraw(&t, &ghost, "k", Currency::Usd, "50").await,
        Err(ApiError::MemberNotFound)
    );
}

async fn five_wrong_passwords_lock_withdrawals_for_three_hours(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    t.fund(&m, Currency::Usd, "100").await;
    let wrong = |key: &str| withdrawal::withdraw(&t.app, &m, request(key, Currency::Usd, "50", "Wrong-Pass-1"));
    assert_eq!(
        wrong("a").await,
        Err(ApiError::PaymentPasswordIncorrect { attempts_left: 4 })
    );
    assert_eq!(
        wrong("a").await,
        Err(ApiError::PaymentPasswordIncorrect { attempts_left: 3 })
    );
    // A right password resets the count.
    withdraw(&t, &m, "ok-1", Currency::Usd, "20").await.unwrap();
    for left in (0..5).rev() {
        assert_eq!(
            wrong("b").await,
            Err(ApiError::PaymentPasswordIncorrect { attempts_left: left })
        );
    }
    let locked_until = fund_account_tests::fixtures::at(3 * 3600);
    assert_eq!(
        withdraw(&t, &m, "ok-2", Currency::Usd, "20").await,
        Err(ApiError::PaymentPasswordLocked { locked_until })
    );
    t.clock.advance_seconds(3 * 3600 - 1);
    assert_eq!(
        withdraw(&t, &m, "ok-2", Currency::Usd, "20").await,
        Err(ApiError::PaymentPasswordLocked { locked_until })
    );
    t.clock.advance_seconds(1);
    withdraw(&t, &m, "ok-2", Currency::Usd, "20").await.unwrap();
    assert_eq!(t.balances(&m).await.usd.available, amount("60"));
    t.assert_books_balance(&m).await;
}

async fn an_idempotency_key_moves_money_once_and_replays_the_first_answer(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    t.fund(&m, Currency::Usd, "500").await;
    let first = withdraw(&t, &m, "key-1", Currency::Usd, "100").await.unwrap();
    assert!(!first.replayed);
    t.clock.advance_seconds(5);
    let again = withdraw(&t, &m, "key-1", Currency::Usd, "100.00").await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.withdrawal, first.withdrawal, "the withdrawal as first created");
    // Paid since: the replay still answers with the withdrawal as it was created, so its
    // response is the first one, byte for byte.
    withdrawal::report_payout(&t.app, &first.withdrawal.id, Payout::Paid)
        .await
        .unwrap();
    let after_payout = withdraw(&t, &m, "key-1", Currency::Usd, "100").await.unwrap();
    assert_eq!(after_payout.withdrawal, first.withdrawal);
    assert_eq!(after_payout.withdrawal.status, WithdrawalStatus::Processing);
    // The password is not part of the comparison (a replay needs no second check).
    let other_password = withdrawal::withdraw(&t.app, &m, request("key-1", Currency::Usd, "100", "Wrong-Pass-1")).await;
    assert!(other_password.unwrap().replayed);
    assert_eq!(
        withdraw(&t, &m, "key-1", Currency::Usd, "101").await,
        Err(ApiError::IdempotencyKeyReused)
    );
    assert_eq!(t.balances(&m).await.usd.available, amount("400"));

    // A refused request leaves its key free: fix the cause and retry with the same key.
    assert!(matches!(
        withdraw(&t, &m, "key-2", Currency::Usd, "900").await,
        Err(ApiError::InsufficientFunds { .. })
    ));
    withdraw(&t, &m, "key-2", Currency::Usd, "300").await.unwrap();
    // Keys are kept 24 hours: at 23:59:59 after its first answer (5 s have passed) a key
    // still replays; at 24:00:00 the same key is a new request.
    t.clock.advance_seconds(24 * 3600 - 5 - 1);
    let last_replay = withdraw(&t, &m, "key-1", Currency::Usd, "100").await.unwrap();
    assert!(last_replay.replayed, "kept for 24 hours");
    t.clock.advance_seconds(1);
    let renewed = withdraw(&t, &m, "key-1", Currency::Usd, "100").await.unwrap();
    assert!(!renewed.replayed);
    assert_ne!(renewed.withdrawal.id, first.withdrawal.id);
    assert_eq!(t.balances(&m).await.usd.available, amount("0"));
    t.assert_books_balance(&m).await;
}

async fn payouts_complete_in_two_phases(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    t.fund(&m, Currency::Usd, "1000").await;
    let a = withdraw(&t, &m, "a", Currency::Usd, "300").await.unwrap().withdrawal.id;
    let b = withdraw(&t, &m, "b", Currency::Usd, "200").await.unwrap().withdrawal.id;

    let paid = withdrawal::report_payout(&t.app, &a, Payout::Paid).await.unwrap();
    assert_eq!(paid.status, WithdrawalStatus::Paid);
    assert_eq!(
        withdrawal::report_payout(&t.app, &a, Payout::Paid).await.unwrap(),
        paid,
        "a repeat is a no-op"
    );
    assert_eq!(
        withdrawal::report_payout(&t.app, &a, Payout::Returned { reason: "x".to_owned() }).await,
        Err(ApiError::WithdrawalAlreadySettled)
    );
    let returned = withdrawal::report_payout(
        &t.app,
        &b,
        Payout::Returned {
            reason: "account closed".to_owned(),
        },
    )
    .await
    .unwrap();
    assert_eq!(returned.return_reason.as_deref(), Some("account closed"));
    assert_eq!(
        withdrawal::report_payout(&t.app, &b, Payout::Paid).await,
        Err(ApiError::WithdrawalAlreadySettled)
    );
    assert_eq!(
        withdrawal::report_payout(&t.app, &withdrawal_id("wd_nope"), Payout::Paid).await,
        Err(ApiError::WithdrawalNotFound)
    );

    let usd = t.balances(&m).await.usd;
    // 1000 - 300 paid out; 200 returned whole, fee included.
    assert_eq!((usd.available, usd.in_transit), (amount("700"), amount("0")));
    let other = t.active_member("seller-2").await;
    assert_eq!(
        withdrawal::member_withdrawal(&t.app, &other, &a).await,
        Err(ApiError::WithdrawalNotFound)
    );
    assert_eq!(
        withdrawal::member_withdrawal(&t.app, &m, &a).await.unwrap().status,
        WithdrawalStatus::Paid
    );
    t.assert_books_balance(&m).await;
}

async fn fifty_concurrent_withdrawals_never_overdraw(adapter: Adapter) {
    let t = Arc::new(test_app(adapter).await);
    let m = t.active_member("seller-1").await;
    t.fund(&m, Currency::Cny, "1000").await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (t, m) = (Arc::clone(&t), m.clone());
        tasks.push(tokio::spawn(async move {
            withdraw(&t, &m, &format!("race-{i}"), Currency::Cny, "30").await
        }));
    }
    let (mut created, mut short) = (BTreeSet::new(), 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(done) => {
                assert!(!done.replayed, "every key is new: nothing replays");
                assert!(created.insert(done.withdrawal.id), "one withdrawal per request");
            }
            // `available` only ever takes the values 1000 - 30k: the one below 30 is 10.
            // A refusal that saw more was refused with money there.
            Err(ApiError::InsufficientFunds { available }) => {
                assert_eq!(available, amount("10"), "refused only once 33 have landed");
                short += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((created.len(), short), (33, 17), "1000 / 30 = 33 fit");
    let cny = t.balances(&m).await.cny;
    assert_eq!((cny.available, cny.in_transit), (amount("10"), amount("990")));
    let listed = withdrawal_ids(&t, &m).await;
    assert_eq!(listed, created, "the withdrawals stored are the 33 answered");
    t.assert_books_balance(&m).await;
}

/// The ids of a member's stored withdrawals (one page: the races here make fewer).
async fn withdrawal_ids(t: &TestApp, member: &MemberId) -> BTreeSet<fund_account::ids::WithdrawalId> {
    let page = t
        .app
        .store
        .withdrawals(
            member,
            &PageRequest {
                limit: 100,
                before: None,
            },
        )
        .await
        .unwrap();
    assert!(!page.more);
    page.items.into_iter().map(|w| w.id).collect()
}

async fn racing_requests_with_one_key_move_money_once(adapter: Adapter) {
    let t = Arc::new(test_app(adapter).await);
    let m = t.active_member("seller-1").await;
    t.fund(&m, Currency::Usd, "1000").await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (t, m) = (Arc::clone(&t), m.clone());
        tasks.push(tokio::spawn(async move {
            withdraw(&t, &m, "same-key", Currency::Usd, "100").await
        }));
    }
    let (mut fresh, mut replayed) = (Vec::new(), Vec::new());
    for task in tasks {
        // The key is claimed in the withdrawal's own commit: a racer either lands first or
        // reads the claim and replays. Nothing is ever refused, nor "in progress".
        let created = task.await.unwrap().unwrap_or_else(|e| panic!("unexpected {e:?}"));
        if created.replayed {
            replayed.push(created);
        } else {
            fresh.push(created);
        }
    }
    assert_eq!((fresh.len(), replayed.len()), (1, 9), "one creates, nine replay");
    let first = &fresh[0];
    for again in &replayed {
        assert_eq!(&again.withdrawal, &first.withdrawal, "every answer is the first one");
    }
    assert_eq!(
        withdrawal_ids(&t, &m).await,
        BTreeSet::from([first.withdrawal.id.clone()])
    );
    let usd = t.balances(&m).await.usd;
    assert_eq!((usd.available, usd.in_transit), (amount("900"), amount("100")));
    t.assert_books_balance(&m).await;
}

async fn racing_refunds_of_one_collection_never_exceed_it(adapter: Adapter) {
    let t = Arc::new(test_app(adapter).await);
    let m = t.active_member("seller-1").await;
    collection::collect(&t.app, new_collection("col-1", &m, Currency::Usd, "100", Some(3600)))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let t = Arc::clone(&t);
        tasks.push(tokio::spawn(async move {
            let id = format!("ref-{i}");
            let outcome = collection::refund(
                &t.app,
                NewRefund {
                    refund_id: external_id(&id),
                    collection_id: external_id("col-1"),
                    amount: amount("15"),
                },
            )
            .await;
            (id, outcome)
        }));
    }
    let (mut refunded, mut refused) = (BTreeSet::new(), BTreeSet::new());
    for task in tasks {
        match task.await.unwrap() {
            (id, Ok(done)) => {
                assert!(done.created, "{id} is new: not a repeat");
                assert_eq!(done.record.taken_from, Bucket::Pending, "the collection is unsettled");
                refunded.insert(id);
            }
            // What is left only ever takes the values 100 - 15k: the one below 15 is 10.
            // The collection is unsettled, so `available` is never asked: no
            // InsufficientFunds either.
            (id, Err(ApiError::RefundExceedsCollection { refundable })) => {
                assert_eq!(refundable, amount("10"), "{id} refused only once 6 have landed");
                refused.insert(id);
            }
            (id, Err(other)) => panic!("{id}: unexpected {other:?}"),
        }
    }
    assert_eq!((refunded.len(), refused.len()), (6, 14), "100 / 15 = 6 fit");
    for id in refunded.iter().chain(&refused) {
        let stored = t.app.store.refund(&external_id(id)).await.unwrap();
        assert_eq!(
            stored.is_some(),
            refunded.contains(id),
            "{id} is stored iff it was answered"
        );
    }
    let stored = t.stored_collection("col-1").await;
    assert_eq!(stored.refunded, amount("90"));
    assert_eq!(t.balances(&m).await.usd.pending, amount("10"));
    t.assert_books_balance(&m).await;
}

async fn settlement_racing_withdrawals_and_refunds_keeps_the_books(adapter: Adapter) {
    let t = Arc::new(test_app(adapter).await);
    let m = t.active_member("seller-1").await;
    t.fund(&m, Currency::Usd, "500").await;
    for i in 0..10 {
        collection::collect(
            &t.app,
            new_collection(&format!("col-{i}"), &m, Currency::Usd, "50", Some(0)),
        )
        .await
        .unwrap();
    }
    let settle = {
        let t = Arc::clone(&t);
        tokio::spawn(async move { collection::settle_due(&t.app, t.app.now()).await })
    };
    let (mut withdrawals, mut refunds) = (Vec::new(), Vec::new());
    for i in 0..10 {
        let (tw, m) = (Arc::clone(&t), m.clone());
        withdrawals.push(tokio::spawn(async move {
            withdraw(&tw, &m, &format!("w-{i}"), Currency::Usd, "40").await
        }));
        let tr = Arc::clone(&t);
        refunds.push(tokio::spawn(async move {
            collection::refund(
                &tr.app,
                NewRefund {
                    refund_id: external_id(&format!("r-{i}")),
                    collection_id: external_id(&format!("col-{i}")),
                    amount: amount("20"),
                },
            )
            .await
        }));
    }
    // Nothing can be refused: the 10 withdrawals take 400 of the 500 already available,
    // and a refund from `available` follows its own collection's 50 into it.
    let mut withdrawn = BTreeSet::new();
    for task in withdrawals {
        let created = task.await.unwrap().unwrap_or_else(|e| panic!("withdrawal: {e:?}"));
        assert!(!created.replayed);
        withdrawn.insert(created.withdrawal.id);
    }
    let mut from_pending = 0;
    for task in refunds {
        let done = task.await.unwrap().unwrap_or_else(|e| panic!("refund: {e:?}"));
        assert!(done.created);
        from_pending += i64::from(done.record.taken_from == Bucket::Pending);
    }
    let racing = settle.await.unwrap().expect("the racing settlement");
    let rest = collection::settle_due(&t.app, t.app.now()).await.unwrap();
    assert!(t.app.store.due_collections(t.app.now(), 10).await.unwrap().is_empty());
    assert_eq!(racing.count + rest.count, 10, "each collection settles exactly once");
    // A collection settles what its refund left of it: 30 after the refund, 50 before.
    let settled = racing.usd.checked_add(rest.usd).unwrap();
    assert_eq!(
        settled.checked_add(amount(&(20 * from_pending).to_string())),
        Some(amount("500")),
        "{from_pending} refunds came from pending"
    );
    for i in 0..10 {
        let stored = t.stored_collection(&format!("col-{i}")).await;
        assert_eq!(
            (stored.refunded, stored.status),
            (amount("20"), CollectionStatus::Settled)
        );
    }
    assert_eq!(withdrawal_ids(&t, &m).await, withdrawn);
    t.assert_books_balance(&m).await;
    // 500 + 10 × 50 collected, 10 × 20 refunded, 10 × 40 withdrawn.
    let usd = t.balances(&m).await.usd;
    assert_eq!(
        (usd.available, usd.pending, usd.in_transit),
        (amount("400"), amount("0"), amount("400"))
    );
}

/// Counts the store calls it sees (the reads of the settlement's due index apart) and,
/// while `conflicting`, answers every commit with a transaction conflict.
#[derive(Default)]
struct CallCounter {
    calls: AtomicUsize,
    due_reads: AtomicUsize,
    conflicting: AtomicBool,
}

#[async_trait::async_trait]
impl StoreHook for CallCounter {
    async fn before(&self, call: StoreCall<'_>) -> Injection {
        self.calls.fetch_add(1, SeqCst);
        match call {
            StoreCall::Read("due_collections") => {
                self.due_reads.fetch_add(1, SeqCst);
                Injection::Pass
            }
            StoreCall::Commit(_) if self.conflicting.load(SeqCst) => {
                Injection::FailBefore(fund_account::store::StoreError::Contention)
            }
            _ => Injection::Pass,
        }
    }
}

/// A page and a half of due collections (pages of 100 here, to keep the emulator's part
/// short): a full page, then a short one, then nothing more to read — each settled once,
/// with its version moved on.
async fn settlement_pages_past_a_full_page_and_stops_after_a_short_one(adapter: Adapter) {
    let calls = Arc::new(CallCounter::default());
    let t = hooked_app(adapter, calls.clone()).await;
    let m = t.active_member("seller-1").await;
    let page = 100;
    let due = page * 3 / 2;
    for n in 0..due {
        collection::collect(
            &t.app,
            new_collection(&format!("due-{n:03}"), &m, Currency::Usd, "1", Some(-1)),
        )
        .await
        .unwrap();
    }
    let due_reads = || calls.due_reads.load(SeqCst);
    let settled = collection::settle_due_in_pages(&t.app, t.app.now(), page)
        .await
        .unwrap();
    let total = amount(&due.to_string());
    assert_eq!((settled.count, settled.usd), (due as u64, total));
    assert_eq!(
        due_reads(),
        2,
        "one read per page; a short page, all settled, is the last"
    );
    let usd = t.balances(&m).await.usd;
    assert_eq!((usd.available, usd.pending), (total, Amount::ZERO));
    let stored = t.stored_collection(&format!("due-{:03}", due - 1)).await;
    assert_eq!((stored.status, stored.version), (CollectionStatus::Settled, 2));
    let again = collection::settle_due_in_pages(&t.app, t.app.now(), page)
        .await
        .unwrap();
    assert_eq!((again.count, due_reads()), (0, 3));
    t.assert_books_balance(&m).await;
}

/// Conflicts on every commit: a run gives up after five passes that moved nothing (it
/// never spins), and the next run settles everything.
async fn settlement_that_loses_every_race_gives_up_and_the_next_run_settles(adapter: Adapter) {
    let calls = Arc::new(CallCounter::default());
    let t = hooked_app(adapter, calls.clone()).await;
    let m = t.active_member("seller-1").await;
    for n in 0..3 {
        collection::collect(
            &t.app,
            new_collection(&format!("due-{n}"), &m, Currency::Usd, "1", Some(-1)),
        )
        .await
        .unwrap();
    }
    calls.conflicting.store(true, SeqCst);
    let run = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        collection::settle_due(&t.app, t.app.now()),
    )
    .await
    .expect("a run that makes no progress ends");
    assert_eq!(run.unwrap().count, 0);
    assert_eq!(calls.due_reads.load(SeqCst), 5, "five passes, then it gives up");
    let calm = t.balances(&m).await.usd;
    assert_eq!((calm.available, calm.pending), (Amount::ZERO, amount("3")));

    // The conflicts stop (a new hook state): the next run settles all three.
    calls.conflicting.store(false, SeqCst);
    let next = collection::settle_due(&t.app, t.app.now()).await.unwrap();
    assert_eq!(next.count, 3);
    t.assert_books_balance(&m).await;
}

/// `settle_one` moves only a pending collection that is due.
async fn settle_one_leaves_a_collection_not_yet_due_or_already_settled(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    let later = collection::collect(&t.app, new_collection("later", &m, Currency::Usd, "7", Some(60)))
        .await
        .unwrap()
        .record;
    assert_eq!(collection::settle_one(&t.app, &later, t.app.now()).await.unwrap(), None);
    assert_eq!(t.balances(&m).await.usd.pending, amount("7"));
    t.clock.advance_seconds(60);
    assert_eq!(
        collection::settle_one(&t.app, &later, t.app.now()).await.unwrap(),
        Some(amount("7")),
        "due at its time"
    );
    let settled = t.stored_collection("later").await;
    assert_eq!(
        collection::settle_one(&t.app, &settled, t.app.now()).await.unwrap(),
        None
    );
    let usd = t.balances(&m).await.usd;
    assert_eq!((usd.available, usd.pending), (amount("7"), Amount::ZERO));
    t.assert_books_balance(&m).await;
}

/// An id that cannot be a withdrawal's is "not found" at the HTTP edge, without a store
/// call: it never costs a read, and never reaches DynamoDB's key-size limits.
async fn a_malformed_withdrawal_id_is_not_found_without_a_store_call(adapter: Adapter) {
    let calls = Arc::new(CallCounter::default());
    let t = hooked_app(adapter, calls.clone()).await;
    let ulid = "01JD0000000000000000000000";
    let malformed = [
        "wd_nope".to_owned(),                      // too short
        format!("xx_{ulid}"),                      // the right length, another prefix
        format!("wd_{}-", &ulid[..25]),            // the right length and prefix, a stray character
        format!("wd_{ulid}{}", "0".repeat(2_000)), // far past any key limit
    ];
    for id in &malformed {
        for route in [Route::GetWithdrawal, Route::WithdrawalPaid] {
            let (status, code) = answer_for_withdrawal_id(&t, route, id).await;
            assert_eq!((status, code.as_str()), (404, "withdrawal_not_found"), "{route:?} {id}");
        }
    }
    assert_eq!(calls.calls.load(SeqCst), 0, "no store call");
    // A well-formed id is looked up.
    let (status, _) = answer_for_withdrawal_id(&t, Route::GetWithdrawal, &format!("wd_{ulid}")).await;
    assert_eq!(status, 404);
    assert_eq!(calls.calls.load(SeqCst), 1);
}

/// `route`'s answer (status and problem code) for the withdrawal `id`, through its handler
/// with its event from `events/` (the member of `get-withdrawal.json`, the IAM caller of
/// `withdrawal-paid.json`).
async fn answer_for_withdrawal_id(t: &TestApp, route: Route, id: &str) -> (u16, String) {
    let mut event = fund_account_tests::event(route.function());
    let path = route.path().replace("{id}", id);
    event["rawPath"] = path.clone().into();
    event["requestContext"]["http"]["path"] = path.into();
    event["pathParameters"]["id"] = id.into();
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = routes::handle(route, &t.app, request).await;
    let body: serde_json::Value = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("a JSON body, not {other:?}"),
    };
    (
        response.status().as_u16(),
        body["code"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The payout processor's two reports racing: "paid" has read the withdrawal and is about
/// to commit when "returned" lands. The withdrawal's version makes "paid" read again and
/// refuse, so the money moves once, back to `available`.
async fn a_paid_report_overtaken_by_a_returned_one_moves_no_money(adapter: Adapter) {
    let gate = Gate::new(|writes| {
        writes.iter().any(
            |w| matches!(w, Write::PutWithdrawal { withdrawal, .. } if withdrawal.status == WithdrawalStatus::Paid),
        )
    });
    let t = hooked_app(adapter, gate.clone()).await;
    let m = t.active_member("seller-1").await;
    t.fund(&m, Currency::Usd, "1000").await;
    let id = withdraw(&t, &m, "a", Currency::Usd, "300").await.unwrap().withdrawal.id;

    let paid = tokio::spawn({
        let (app, id) = (Arc::clone(&t.app), id.clone());
        async move { withdrawal::report_payout(&app, &id, Payout::Paid).await }
    });
    gate.wait_until_held().await;
    let returned = withdrawal::report_payout(
        &t.app,
        &id,
        Payout::Returned {
            reason: "closed".to_owned(),
        },
    )
    .await
    .unwrap();
    assert_eq!((returned.status, returned.version), (WithdrawalStatus::Returned, 2));
    gate.release();
    assert_eq!(paid.await.unwrap(), Err(ApiError::WithdrawalAlreadySettled));

    let stored = t.app.store.withdrawal(&id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.version), (WithdrawalStatus::Returned, 2));
    let usd = t.balances(&m).await.usd;
    assert_eq!((usd.available, usd.in_transit), (amount("1000"), Amount::ZERO));
    t.assert_books_balance(&m).await;
}

for_each_adapter!(
    settlement_pages_past_a_full_page_and_stops_after_a_short_one,
    settlement_that_loses_every_race_gives_up_and_the_next_run_settles,
    settle_one_leaves_a_collection_not_yet_due_or_already_settled,
    a_paid_report_overtaken_by_a_returned_one_moves_no_money,
    a_malformed_withdrawal_id_is_not_found_without_a_store_call,
    collections_credit_pending_once_and_settle_at_their_time,
    refunds_come_from_pending_then_available_and_never_exceed_the_collection,
    a_refund_of_exactly_what_is_left_uses_the_collection_up,
    a_refund_repeated_after_its_collection_is_used_up_changes_nothing,
    withdrawals_take_any_amount_up_to_available_with_the_fee_inside,
    an_inactive_account_cannot_withdraw,
    five_wrong_passwords_lock_withdrawals_for_three_hours,
    an_idempotency_key_moves_money_once_and_replays_the_first_answer,
    payouts_complete_in_two_phases,
    fifty_concurrent_withdrawals_never_overdraw,
    racing_requests_with_one_key_move_money_once,
    racing_refunds_of_one_collection_never_exceed_it,
    settlement_racing_withdrawals_and_refunds_keeps_the_books,
);
