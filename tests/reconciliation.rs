//! The scheduled run on every store adapter: settlement at its boundary, a clean report
//! on clean books, exactly the sabotage it is shown (reported, alerted, never fixed),
//! safe reruns, segments, and thousands of accounts in bounded pages.

use std::sync::Arc;
use std::time::Instant;

use fund_account::collection::{self, NewCollection};
use fund_account::ledger::{Bucket, EntryType, Posting};
use fund_account::member::MemberId;
use fund_account::money::Currency;
use fund_account::reconciliation::{self, Report, RunOptions};
use fund_account::store::{Expect, Write};
use fund_account_tests::fixtures::external_id;
use fund_account_tests::fixtures::{amount, at, member, withdrawal_request};
use fund_account_tests::{for_each_adapter, sqlite_store, test_app, Adapter, TestApp};

/// A test app whose alerts land in a (real, in-memory) alerts table.
async fn app_with_alerts(adapter: Adapter) -> (TestApp, fund_account::adapters::sqlite::SqliteAlerts) {
    let t = test_app(adapter).await;
    let alerts = sqlite_store().alerts();
    let Ok(app) = Arc::try_unwrap(t.app) else {
        panic!("the test app has one owner")
    };
    let app = app.with_alerts(Arc::new(alerts.clone()));
    (
        TestApp {
            app: Arc::new(app),
            clock: t.clock,
            outbox: t.outbox,
        },
        alerts,
    )
}

async fn run(t: &TestApp) -> Report {
    reconciliation::run(&t.app, RunOptions::full()).await.unwrap()
}

/// A member with some of everything: settled and pending money, a processing and a
/// paid withdrawal, a refund.
async fn busy_member(t: &TestApp, id: &str) -> MemberId {
    let m = t.active_member(id).await;
    t.fund(&m, Currency::Usd, "1000").await;
    collection::collect(
        &t.app,
        NewCollection {
            collection_id: external_id(&format!("{id}-later")),
            member_id: m.clone(),
            currency: Currency::Cny,
            amount: amount("80"),
            available_at: Some(at(3600)),
        },
    )
    .await
    .unwrap();
    collection::refund(
        &t.app,
        collection::NewRefund {
            refund_id: external_id(&format!("{id}-r")),
            collection_id: external_id(&format!("{id}-later")),
            amount: amount("30"),
        },
    )
    .await
    .unwrap();
    let request = |key: &str| withdrawal_request(key, Currency::Usd, "100", fund_account_tests::PAYMENT_PASSWORD);
    fund_account::withdrawal::withdraw(&t.app, &m, request("a"))
        .await
        .unwrap();
    let paid = fund_account::withdrawal::withdraw(&t.app, &m, request("b"))
        .await
        .unwrap();
    fund_account::withdrawal::report_payout(&t.app, &paid.withdrawal.id, fund_account::withdrawal::Payout::Paid)
        .await
        .unwrap();
    m
}

async fn clean_books_give_a_clean_report_and_a_stored_record(adapter: Adapter) {
    let (t, alerts) = app_with_alerts(adapter).await;
    busy_member(&t, "seller-1").await;
    busy_member(&t, "seller-2").await;
    t.member("seller-3", "login-Pass-2026", None).await;
    let report = run(&t).await;
    assert_eq!(report.discrepancies, vec![], "{:?}", report.to_json());
    assert_eq!((report.accounts_checked, report.accounts_busy), (3, 0));
    let stored = t.app.store.run_record(&report.run_id).await.unwrap().unwrap();
    assert_eq!(stored.report, report.to_json().to_string());
    assert_eq!(stored.discrepancies, 0);
    assert!(
        alerts.sent().await.unwrap().is_empty(),
        "no alert when the books balance"
    );
}

async fn a_run_settles_at_available_at_to_the_second(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    for (id, offset) in [("before", -1), ("at", 0), ("after", 1)] {
        collection::collect(
            &t.app,
            NewCollection {
                collection_id: external_id(id),
                member_id: m.clone(),
                currency: Currency::Usd,
                amount: amount("10"),
                available_at: Some(at(offset)),
            },
        )
        .await
        .unwrap();
    }
    let report = run(&t).await;
    assert_eq!((report.settled.count, report.settled.usd), (2, amount("20")));
    assert_eq!(report.discrepancies, vec![]);
    let second = run(&t).await;
    assert_eq!(second.settled.count, 0, "a rerun settles nothing twice");
    t.clock.advance_seconds(1);
    assert_eq!(run(&t).await.settled.count, 1);
    assert_eq!(t.balances(&m).await.usd.available, amount("30"));
}

async fn a_balance_changed_without_a_ledger_entry_is_reported_alerted_and_left_alone(adapter: Adapter) {
    let (t, alerts) = app_with_alerts(adapter).await;
    let m = busy_member(&t, "seller-1").await;
    busy_member(&t, "seller-2").await;
    let before = t.balances(&m).await;
    // Sabotage: a balance write with no ledger entry, as a bug would make.
    let tampered =
        Posting::new(&m, Currency::Usd, EntryType::Collection, "sabotage").change(Bucket::Available, amount("5"));
    let balance_only = Write::posting(tampered, t.app.now()).into_iter().next().unwrap();
    t.app.store.commit(vec![balance_only]).await.unwrap();

    let report = run(&t).await;
    let found: Vec<_> = report
        .discrepancies
        .iter()
        .map(|d| (d.member_id.as_deref().unwrap_or("-"), d.currency, d.kind))
        .collect();
    assert_eq!(
        found,
        [("seller-1", Some(Currency::Usd), "balance_mismatch")],
        "{:?}",
        report.to_json()
    );
    assert!(report.discrepancies[0]
        .detail
        .contains("available is 805.00 but its ledger entries sum to 800.00"));
    let sent = alerts.sent().await.unwrap();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].0.contains("1 discrepancies"));
    assert!(sent[0].1.contains("balance_mismatch"));
    let after = t.balances(&m).await;
    assert_eq!(
        after.usd.available,
        before.usd.available.checked_add(amount("5")).unwrap(),
        "never fixed silently"
    );
    assert_eq!(
        t.app
            .store
            .run_record(&report.run_id)
            .await
            .unwrap()
            .unwrap()
            .discrepancies,
        1
    );
}

async fn a_stray_ledger_entry_is_reported(adapter: Adapter) {
    let (t, alerts) = app_with_alerts(adapter).await;
    let m = busy_member(&t, "seller-1").await;
    let stray = Posting::new(&m, Currency::Cny, EntryType::Refund, "stray").change(Bucket::Pending, amount("-1.5"));
    let entry = Write::posting(stray, t.app.now()).into_iter().nth(1).unwrap();
    assert!(matches!(entry, Write::AppendLedger(_)));
    t.app.store.commit(vec![entry]).await.unwrap();
    let report = run(&t).await;
    let found: Vec<_> = report.discrepancies.iter().map(|d| (d.currency, d.kind)).collect();
    assert_eq!(
        found,
        [(Some(Currency::Cny), "balance_mismatch")],
        "{:?}",
        report.to_json()
    );
    assert!(report.discrepancies[0]
        .detail
        .starts_with("pending is 50.00 but its ledger entries sum to 48.50"));
    assert_eq!(alerts.sent().await.unwrap().len(), 1);
}

async fn money_in_transit_without_a_withdrawal_is_reported(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = busy_member(&t, "seller-1").await;
    // Balanced against the ledger, but no processing withdrawal explains it.
    let writes = Write::posting(
        Posting::new(&m, Currency::Usd, EntryType::Withdrawal, "ghost").change(Bucket::InTransit, amount("10")),
        t.app.now(),
    );
    t.app.store.commit(writes).await.unwrap();
    let report = run(&t).await;
    let found: Vec<_> = report.discrepancies.iter().map(|d| (d.currency, d.kind)).collect();
    assert_eq!(
        found,
        [(Some(Currency::Usd), "in_transit_mismatch")],
        "{:?}",
        report.to_json()
    );
}

async fn refunds_above_a_collection_are_reported(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = busy_member(&t, "seller-1").await;
    let mut collection = t.stored_collection("seller-1-later").await;
    let version = collection.version;
    collection.refunded = amount("81");
    collection.version += 1;
    t.app
        .store
        .commit(vec![Write::PutCollection {
            collection,
            expect: Expect::Version(version),
        }])
        .await
        .unwrap();
    let report = run(&t).await;
    let kinds: Vec<_> = report.discrepancies.iter().map(|d| d.kind).collect();
    // The pending balance no longer matches what the collection says is left, either.
    assert_eq!(
        kinds,
        ["pending_mismatch", "refunds_exceed_collection"],
        "{:?}",
        report.to_json()
    );
    assert_eq!(t.balances(&m).await.cny.pending, amount("50"));
}

async fn concurrent_runs_settle_each_collection_once(adapter: Adapter) {
    let t = Arc::new(test_app(adapter).await);
    let m = t.active_member("seller-1").await;
    for i in 0..12 {
        collection::collect(
            &t.app,
            NewCollection {
                collection_id: external_id(&format!("c-{i}")),
                member_id: m.clone(),
                currency: Currency::Cny,
                amount: amount("1"),
                available_at: Some(at(0)),
            },
        )
        .await
        .unwrap();
    }
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let t = Arc::clone(&t);
            tokio::spawn(async move { reconciliation::run(&t.app, RunOptions::full()).await.unwrap() })
        })
        .collect();
    let mut settled = 0;
    for r in runs {
        let report = r.await.unwrap();
        assert_eq!(report.discrepancies, vec![]);
        settled += report.settled.count;
    }
    assert_eq!(settled, 12);
    assert_eq!(t.balances(&m).await.cny.available, amount("12"));
    t.assert_books_balance(&m).await;
}

async fn seed_accounts(t: &TestApp, count: usize) {
    for i in 0..count {
        let id = format!("bulk-{i:05}");
        let m = member(&id, 1);
        let mut writes = vec![
            Write::PutMember {
                member: m.clone(),
                expect: Expect::Absent,
            },
            Write::IndexMember {
                member_id: m.member_id.clone(),
            },
        ];
        writes.extend(Write::posting(
            Posting::new(&m.member_id, Currency::Usd, EntryType::Collection, &id)
                .change(Bucket::Available, amount("1")),
            t.app.now(),
        ));
        t.app.store.commit(writes).await.unwrap();
    }
}

/// Accounts per run: thousands on the embedded store; fewer on the emulator, which
/// answers each call in about a millisecond of Python.
fn bulk_size(adapter: Adapter) -> usize {
    match adapter {
        Adapter::Sqlite => 3000,
        Adapter::DynamoDb => 150,
    }
}

async fn a_run_walks_thousands_of_accounts_in_bounded_pages(adapter: Adapter) {
    let t = test_app(adapter).await;
    let count = bulk_size(adapter);
    seed_accounts(&t, count).await;
    let started = Instant::now();
    let report = run(&t).await;
    let elapsed = started.elapsed();
    assert_eq!(report.accounts_checked, u64::try_from(count).unwrap());
    assert_eq!(report.discrepancies, vec![]);
    // Memory: the walk holds one page of AUDIT_PAGE ids and one account's sums at a time.
    let millis = elapsed.as_millis();
    let per_thousand = millis * 1000 / u128::try_from(count).unwrap();
    println!("reconciliation over {count} accounts on {adapter:?}: {millis} ms ({per_thousand} ms per 1000 accounts)");
}

async fn segments_split_a_run_without_overlap(adapter: Adapter) {
    let t = test_app(adapter).await;
    seed_accounts(&t, 60).await;
    let mut total = 0;
    for segment in 0..4 {
        let options = RunOptions {
            segment,
            segments: 4,
            ..RunOptions::full()
        };
        let report = reconciliation::run(&t.app, options).await.unwrap();
        assert!(report.accounts_checked > 0, "segment {segment} has members");
        total += report.accounts_checked;
    }
    assert_eq!(total, 60);
}

/// Retries the commit of the run's record as a fresh call after it landed: what the SDK
/// does to a plain `PutItem` whose answer was lost.
struct RunRecordRetried;

#[async_trait::async_trait]
impl fund_account_tests::StoreHook for RunRecordRetried {
    async fn before(&self, call: fund_account_tests::StoreCall<'_>) -> fund_account_tests::Injection {
        match call {
            fund_account_tests::StoreCall::Commit([Write::PutRun(_)]) => {
                fund_account_tests::Injection::AppliedThenRetried
            }
            _ => fund_account_tests::Injection::Pass,
        }
    }
}

/// The run's record is one write, sent as a plain `PutItem`: a retry that meets the
/// record it wrote itself (the id is the run's own ULID) is the run done, not a failure.
async fn a_run_record_retried_after_it_landed_is_no_failure(adapter: Adapter) {
    let t = fund_account_tests::hooked_app(adapter, Arc::new(RunRecordRetried)).await;
    t.member("seller-1", "login-Pass-2026", None).await;
    let report = reconciliation::run(&t.app, RunOptions::full()).await.unwrap();
    let stored = t.app.store.run_record(&report.run_id).await.unwrap().unwrap();
    assert_eq!(stored.report, report.to_json().to_string());
}

for_each_adapter!(
    clean_books_give_a_clean_report_and_a_stored_record,
    a_run_record_retried_after_it_landed_is_no_failure,
    a_run_settles_at_available_at_to_the_second,
    a_balance_changed_without_a_ledger_entry_is_reported_alerted_and_left_alone,
    a_stray_ledger_entry_is_reported,
    money_in_transit_without_a_withdrawal_is_reported,
    refunds_above_a_collection_are_reported,
    concurrent_runs_settle_each_collection_once,
    a_run_walks_thousands_of_accounts_in_bounded_pages,
    segments_split_a_run_without_overlap,
);
