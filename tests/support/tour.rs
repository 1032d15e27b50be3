//! Every operation once, on the DynamoDB adapter through a metered client (see
//! [`metering`](crate::metering)): one member's activation, money in, money out, events,
//! FX, statements, exports and a reconciliation run, each step named by the operation
//! and the function that runs it. `tests/dynamodb_calls.rs` holds the calls against the
//! floor `docs/data-model.md` states and the plain writes against each role's grants;
//! the `capacity` tool prints what each step costs.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fund_account::activation;
use fund_account::adapters::dynamodb::DynamoStore;
use fund_account::app::{App, Settings};
use fund_account::clock::Clock;
use fund_account::collection::{self, NewCollection, NewRefund};
use fund_account::exchange::{self, Fixed, QuoteRequest};
use fund_account::export;
use fund_account::member::PhcHash;
use fund_account::money::{Amount, Currency};
use fund_account::password::PaymentPassword;
use fund_account::phone::PhoneNumber;
use fund_account::publisher::{self, Delivery};
use fund_account::reconciliation::{self, RunOptions};
use fund_account::records::BankAccount;
use fund_account::statement::{self, StatementRange};
use fund_account::store::{PageRequest, Store};
use fund_account::verification::SmsCode;
use fund_account::withdrawal::{self, IdempotencyKey, Payout, WithdrawalRequest};

use crate::fixtures::external_id;
use crate::metering::{Meter, Usage};
use crate::{app_with, aws_config, sqlite_store, TestApp, PAYMENT_PASSWORD};

/// One operation as a client (or the platform) makes it.
#[derive(Debug, Clone)]
pub struct Step {
    pub label: &'static str,
    /// The function that runs it (`BuildProperties.Binary` in the template).
    pub function: &'static str,
    pub usage: Usage,
    /// Wall time in this process, calls to the emulator included.
    pub elapsed: Duration,
}

struct Tour {
    meter: Meter,
    steps: Vec<Step>,
}

impl Tour {
    async fn step<T>(&mut self, label: &'static str, function: &'static str, operation: impl Future<Output = T>) -> T {
        self.meter.take();
        let start = Instant::now();
        let output = operation.await;
        let elapsed = start.elapsed();
        self.steps.push(Step {
            label,
            function,
            usage: self.meter.take(),
            elapsed,
        });
        output
    }
}

/// The first page of 20, as a client asks for it.
const FIRST_PAGE: PageRequest = PageRequest {
    limit: 20,
    before: None,
};

fn amount(text: &str) -> Amount {
    Amount::parse_request(text).unwrap()
}

fn withdrawal_request(key: &str, value: &str, password: &str) -> WithdrawalRequest {
    WithdrawalRequest {
        key: IdempotencyKey::parse(key).unwrap(),
        currency: Currency::Usd,
        amount: amount(value),
        password: PaymentPassword::new(password.to_owned()),
        bank_account: BankAccount {
            holder_name: "Li Wei".to_owned(),
            account_number: "6222020200112233".to_owned(),
            bank_name: "ICBC".to_owned(),
        },
        payout_currency: Currency::Usd,
        quote_id: None,
    }
}

const DAY_MS: i64 = 86_400_000;

/// Runs every operation once on a table of its own and returns the steps in order.
/// Panics if an operation does not do what the step expects (the measurement would be
/// of something else).
pub async fn every_operation() -> Vec<Step> {
    let config = aws_config().await;
    let table = format!("fund-account-tour-{}", ulid::Ulid::new().to_string().to_lowercase());
    let meter = Meter::new(&config, &table);
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .interceptor(meter.clone())
            .build(),
    );
    DynamoStore::create_table(&client, &table).await.unwrap();
    let store = Arc::new(DynamoStore::new(client, table));
    let outbox = sqlite_store().outbox();
    let (app, clock) = app_with(store.clone(), Arc::new(outbox.clone()));
    let t = TestApp {
        app: app.clone(),
        clock,
        outbox,
    };
    let mut tour = Tour {
        meter,
        steps: Vec::new(),
    };

    // Activation, with a phone. The login hash is the marketplace's, made before.
    let m = fund_account::member::MemberId::parse("tour-seller").unwrap();
    let login = PhcHash::new(
        fund_account::password::hash_blocking(&PaymentPassword::new("login-Pass-2026".to_owned())).unwrap(),
    );
    let phone = PhoneNumber::parse("+8613800001234").unwrap();
    tour.step(
        "member sync (create)",
        "member-sync",
        activation::sync_member(&app, &m, login.clone(), Some(phone.clone())),
    )
    .await
    .unwrap();
    tour.step(
        "activation (set the payment password)",
        "activate",
        activation::set_payment_password(&app, &m, PaymentPassword::new(PAYMENT_PASSWORD.to_owned())),
    )
    .await
    .unwrap();
    tour.step("send code", "send-code", activation::send_code(&app, &m))
        .await
        .unwrap();
    let code = t.last_code("+8613800001234").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let _ = tour
        .step(
            "confirm code, wrong",
            "confirm-code",
            activation::confirm_code(&app, &m, &SmsCode::parse(wrong).unwrap()),
        )
        .await;
    tour.step(
        "confirm code, right",
        "confirm-code",
        activation::confirm_code(&app, &m, &SmsCode::parse(&code).unwrap()),
    )
    .await
    .unwrap();
    tour.step(
        "member sync (new phone)",
        "member-sync",
        activation::sync_member(&app, &m, login, Some(PhoneNumber::parse("+8613800005678").unwrap())),
    )
    .await
    .unwrap();
    tour.step("get account", "get-account", activation::account(&app, &m))
        .await
        .unwrap();

    // Money in.
    let new_collection = |id: &str| NewCollection {
        collection_id: external_id(id),
        member_id: m.clone(),
        currency: Currency::Usd,
        amount: amount("1000"),
        available_at: None,
    };
    tour.step(
        "collection",
        "create-collection",
        collection::collect(&app, new_collection("col-1")),
    )
    .await
    .unwrap();
    tour.step(
        "collection, repeated",
        "create-collection",
        collection::collect(&app, new_collection("col-1")),
    )
    .await
    .unwrap();
    let refund = NewRefund {
        refund_id: external_id("r-1"),
        collection_id: external_id("col-1"),
        amount: amount("100"),
    };
    tour.step("refund", "create-refund", collection::refund(&app, refund))
        .await
        .unwrap();
    let settled = tour
        .step(
            "settlement of one collection",
            "reconcile",
            collection::settle_due(&app, app.now()),
        )
        .await
        .unwrap();
    assert_eq!(settled.count, 1);
    // Three collections of one pending shard settle in one commit: the shard and the
    // balance item once each, every collection with its own entries and event.
    let shard = fund_account::ledger::pending_shard_of("col-1");
    let same_shard: Vec<String> = (2..)
        .map(|n| format!("col-{n}"))
        .filter(|id| fund_account::ledger::pending_shard_of(id) == shard)
        .take(3)
        .collect();
    for id in &same_shard {
        collection::collect(&app, new_collection(id)).await.unwrap();
    }
    let settled = tour
        .step(
            "settlement of three collections of one pending shard",
            "reconcile",
            collection::settle_due(&app, app.now()),
        )
        .await
        .unwrap();
    assert_eq!(settled.count, 3);

    // Money out.
    let first = tour
        .step(
            "withdrawal",
            "withdraw",
            withdrawal::withdraw(&app, &m, withdrawal_request("k-1", "300", PAYMENT_PASSWORD)),
        )
        .await
        .unwrap();
    tour.step(
        "withdrawal, replayed",
        "withdraw",
        withdrawal::withdraw(&app, &m, withdrawal_request("k-1", "300", PAYMENT_PASSWORD)),
    )
    .await
    .unwrap();
    let _ = tour
        .step(
            "withdrawal, wrong password",
            "withdraw",
            withdrawal::withdraw(&app, &m, withdrawal_request("k-2", "300", "Wrong-Pass-1")),
        )
        .await;
    let second = tour
        .step(
            "withdrawal that resets the wrong-password count",
            "withdraw",
            withdrawal::withdraw(&app, &m, withdrawal_request("k-3", "200", PAYMENT_PASSWORD)),
        )
        .await
        .unwrap();
    tour.step(
        "get withdrawal",
        "get-withdrawal",
        withdrawal::member_withdrawal(&app, &m, &first.withdrawal.id),
    )
    .await
    .unwrap();
    tour.step(
        "list withdrawals",
        "list-withdrawals",
        store.withdrawals(&m, &FIRST_PAGE),
    )
    .await
    .unwrap();
    tour.step(
        "list transactions, one currency",
        "list-transactions",
        store.ledger(&m, Some(Currency::Usd), &FIRST_PAGE),
    )
    .await
    .unwrap();
    tour.step(
        "list transactions, both currencies",
        "list-transactions",
        store.ledger(&m, None, &FIRST_PAGE),
    )
    .await
    .unwrap();
    tour.step(
        "withdrawal paid",
        "withdrawal-paid",
        withdrawal::report_payout(&app, &first.withdrawal.id, Payout::Paid),
    )
    .await
    .unwrap();
    tour.step(
        "withdrawal paid, reported again",
        "withdrawal-paid",
        withdrawal::report_payout(&app, &first.withdrawal.id, Payout::Paid),
    )
    .await
    .unwrap();
    tour.step(
        "withdrawal returned",
        "withdrawal-returned",
        withdrawal::report_payout(
            &app,
            &second.withdrawal.id,
            Payout::Returned {
                reason: "account closed".to_owned(),
            },
        ),
    )
    .await
    .unwrap();

    // Publishing: a withdrawal's events (each with its SMS), a collection's, a redelivery.
    let publishing = App::new(
        store.clone(),
        Arc::new(t.outbox.clone()),
        Arc::clone(&t.clock) as Arc<dyn Clock>,
        Settings::new(crate::TEST_CODE_SECRET.to_vec()).unwrap(),
    )
    .with_event_bus(Arc::new(sqlite_store().event_bus()));
    let outbox_items = store
        .doc_page(
            &format!("OUTBOX#{m}"),
            &PageRequest {
                limit: 100,
                before: None,
            },
        )
        .await
        .unwrap()
        .items;
    let key_of = |kind: &str| {
        outbox_items
            .iter()
            .find(|d| d.body.contains(kind))
            .map(|d| d.key.clone())
            .unwrap_or_else(|| panic!("an outbox item of {kind}"))
    };
    for (label, kind, sms) in [
        ("publish withdrawal.created (and its SMS)", "withdrawal.created", true),
        ("publish withdrawal.paid (and its SMS)", "withdrawal.paid", true),
        ("publish collection.created", "collection.created", false),
        ("publish collection.settled", "collection.settled", false),
    ] {
        let published = tour
            .step(
                label,
                "publish-events",
                publisher::publish(&publishing, &*publishing.events, &key_of(kind)),
            )
            .await
            .unwrap();
        assert_eq!(published.sms == Delivery::Sent, sms, "{label}");
    }
    tour.step(
        "publish a redelivery",
        "publish-events",
        publisher::publish(&publishing, &*publishing.events, &key_of("withdrawal.paid")),
    )
    .await
    .unwrap();

    // Across currencies.
    tour.step(
        "reference rate",
        "put-fx-rate",
        crate::journey::fresh_rate(&app, "USD-CNY", "7.2"),
    )
    .await;
    tour.step(
        "preview, same currency",
        "preview-withdrawal",
        exchange::preview(&app, &m, Currency::Usd, amount("100"), Currency::Usd),
    )
    .await
    .unwrap();
    let preview = tour
        .step(
            "preview across currencies",
            "preview-withdrawal",
            exchange::preview(&app, &m, Currency::Usd, amount("100"), Currency::Cny),
        )
        .await
        .unwrap();
    let mut cross = withdrawal_request("k-fx", "100", PAYMENT_PASSWORD);
    cross.payout_currency = Currency::Cny;
    cross.quote_id = preview.quote.map(|q| q.id);
    tour.step(
        "withdrawal across currencies",
        "withdraw",
        withdrawal::withdraw(&app, &m, cross),
    )
    .await
    .unwrap();
    let quote_request = QuoteRequest {
        sell: Currency::Usd,
        buy: Currency::Cny,
        fixed: Fixed::Sell(amount("50")),
    };
    let quote = tour
        .step("quote", "create-quote", exchange::create_quote(&app, &m, quote_request))
        .await
        .unwrap();
    tour.step(
        "conversion",
        "create-conversion",
        exchange::convert(&app, &m, &IdempotencyKey::parse("cv-1").unwrap(), &quote.id),
    )
    .await
    .unwrap();
    tour.step(
        "list conversions",
        "list-conversions",
        exchange::conversions(&app, &m, &FIRST_PAGE),
    )
    .await
    .unwrap();
    tour.step(
        "platform balances",
        "platform-balances",
        exchange::platform_balances(&app),
    )
    .await
    .unwrap();

    // Statements, two days on: the first reader snapshots the days it passes.
    t.clock.advance_millis(2 * DAY_MS);
    let now = app.now();
    let range = StatementRange::new(Currency::Usd, now.plus_millis(-DAY_MS), now).unwrap();
    tour.step(
        "statement (first reader: snapshots its days)",
        "get-statement",
        statement::statement(&app, &m, range.clone(), 20, None),
    )
    .await
    .unwrap();
    tour.step(
        "statement",
        "get-statement",
        statement::statement(&app, &m, range.clone(), 20, None),
    )
    .await
    .unwrap();
    let wide = StatementRange::new(Currency::Usd, now.plus_millis(-3 * DAY_MS), now).unwrap();
    let requested = tour
        .step("export requested", "create-export", export::request(&app, &m, wide))
        .await
        .unwrap();
    let status = tour
        .step(
            "export written",
            "export-statement",
            export::run(&app, &m, &requested.id),
        )
        .await
        .unwrap();
    assert_eq!(status, export::ExportStatus::Ready);
    tour.step("get export", "get-export", export::view(&app, &m, &requested.id))
        .await
        .unwrap();

    // The nightly run, over this one member.
    let report = tour
        .step(
            "reconciliation run (one member)",
            "reconcile",
            reconciliation::run(&app, RunOptions::full()),
        )
        .await
        .unwrap();
    assert!(report.discrepancies.is_empty(), "{:?}", report.discrepancies);
    tour.steps
}
