//! DynamoDB calls per operation, counted by an SDK interceptor on the real client, held
//! against the floor `docs/data-model.md` states. Counts are deterministic (unlike
//! times), so they are asserted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use fund_account::activation;
use fund_account::adapters::dynamodb::DynamoStore;
use fund_account::app::{App, Settings};
use fund_account::clock::Clock;
use fund_account::collection::{self, NewCollection, NewRefund};
use fund_account::exchange::{self, Fixed, QuoteRequest};
use fund_account::money::{Amount, Currency};
use fund_account::password::PaymentPassword;
use fund_account::publisher::{self, Delivery};
use fund_account::records::BankAccount;
use fund_account::store::{PageRequest, Store};
use fund_account::verification::SmsCode;
use fund_account::withdrawal::{self, IdempotencyKey, Payout, WithdrawalRequest};
use fund_account_tests::fixtures::external_id;
use fund_account_tests::{app_with, aws_config, sqlite_store, TestApp, PAYMENT_PASSWORD};

/// Counts DynamoDB operations by name (once per operation, whatever the SDK's retries).
#[derive(Debug, Default, Clone)]
struct CallCounter(Arc<Mutex<BTreeMap<String, usize>>>, Arc<Mutex<Vec<usize>>>);

impl CallCounter {
    fn take(&self) -> BTreeMap<String, usize> {
        self.1.lock().unwrap().clear();
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// The items of each `TransactWriteItems` since the last `take`, in order (what a
    /// commit costs: DynamoDB charges 2 write units per item of up to 1 KB).
    fn items_written(&self) -> Vec<usize> {
        self.1.lock().unwrap().clone()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = cfg
            .load::<Metadata>()
            .map_or_else(|| operation_name(context.input()), |m| m.name())
            .to_owned();
        *self.0.lock().unwrap().entry(name).or_default() += 1;
        if let Some(write) = context
            .input()
            .downcast_ref::<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput>()
        {
            self.1.lock().unwrap().push(write.transact_items().len());
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The operation an input belongs to (the SDK's metadata is not in the bag this early).
fn operation_name(input: &aws_smithy_runtime_api::client::interceptors::context::Input) -> &'static str {
    use aws_sdk_dynamodb::operation as op;
    macro_rules! named {
        ($($module:ident :: $input:ident => $name:literal),* $(,)?) => {
            $(if input.downcast_ref::<op::$module::$input>().is_some() { return $name; })*
        };
    }
    named!(
        query::QueryInput => "Query",
        get_item::GetItemInput => "GetItem",
        put_item::PutItemInput => "PutItem",
        update_item::UpdateItemInput => "UpdateItem",
        delete_item::DeleteItemInput => "DeleteItem",
        scan::ScanInput => "Scan",
        batch_get_item::BatchGetItemInput => "BatchGetItem",
        transact_get_items::TransactGetItemsInput => "TransactGetItems",
        transact_write_items::TransactWriteItemsInput => "TransactWriteItems",
    );
    "other"
}

/// The first page of 20, as a client asks for it.
const FIRST_PAGE: PageRequest = PageRequest {
    limit: 20,
    before: None,
};

fn calls(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(name, n)| ((*name).to_owned(), *n)).collect()
}

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

#[tokio::test]
async fn every_operation_makes_the_calls_the_data_model_states() {
    let counter = CallCounter::default();
    let config = aws_config().await;
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .interceptor(counter.clone())
            .build(),
    );
    let table = format!("fund-account-calls-{}", ulid_suffix());
    DynamoStore::create_table(&client, &table).await.unwrap();
    let store = Arc::new(DynamoStore::new(client, table));
    let outbox = sqlite_store().outbox();
    let (app, clock) = app_with(store.clone(), Arc::new(outbox.clone()));
    let t = TestApp {
        app: app.clone(),
        clock,
        outbox,
    };
    counter.take();

    // Activation, with a phone.
    let m = t
        .member("calls-seller", "login-Pass-2026", Some("+8613800001234"))
        .await;
    assert_eq!(
        counter.take(),
        calls(&[("Query", 1), ("TransactWriteItems", 1)]),
        "member sync (create)"
    );
    activation::set_payment_password(&app, &m, PaymentPassword::new(PAYMENT_PASSWORD.to_owned()))
        .await
        .unwrap();
    assert_eq!(
        counter.take(),
        calls(&[("PutItem", 2), ("Query", 1)]),
        "activation (the try is recorded before the argon2id work)"
    );
    activation::send_code(&app, &m).await.unwrap();
    assert_eq!(
        counter.take(),
        calls(&[("Query", 1), ("TransactWriteItems", 1)]),
        "send code"
    );
    let code = t.last_code("+8613800001234").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let _ = activation::confirm_code(&app, &m, &SmsCode::parse(wrong).unwrap()).await;
    assert_eq!(
        counter.take(),
        calls(&[("PutItem", 1), ("Query", 1)]),
        "confirm, wrong code"
    );
    activation::confirm_code(&app, &m, &SmsCode::parse(&code).unwrap())
        .await
        .unwrap();
    assert_eq!(
        counter.take(),
        calls(&[("Query", 1), ("TransactWriteItems", 1)]),
        "confirm, right code"
    );
    activation::account(&app, &m).await.unwrap();
    assert_eq!(counter.take(), calls(&[("Query", 1)]), "get account");

    // Money in.
    let new_collection = |id: &str| NewCollection {
        collection_id: external_id(id),
        member_id: m.clone(),
        currency: Currency::Usd,
        amount: amount("1000"),
        available_at: None,
    };
    collection::collect(&app, new_collection("col-1")).await.unwrap();
    // The collection, the member check, the balance and its entry, a clearing shard and
    // its entry, the outbox event.
    assert_eq!(counter.items_written(), [7], "collection's items");
    assert_eq!(counter.take(), calls(&[("TransactWriteItems", 1)]), "collection");
    collection::collect(&app, new_collection("col-1")).await.unwrap();
    assert_eq!(
        counter.take(),
        calls(&[("GetItem", 1), ("TransactWriteItems", 1)]),
        "collection repeat"
    );
    collection::refund(
        &app,
        NewRefund {
            refund_id: external_id("r-1"),
            collection_id: external_id("col-1"),
            amount: amount("100"),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        counter.take(),
        calls(&[("GetItem", 1), ("TransactWriteItems", 1)]),
        "refund"
    );
    let settled = collection::settle_due(&app, app.now()).await.unwrap();
    assert_eq!(settled.count, 1);
    // One page of the due index (a Query per shard), one commit per collection.
    assert_eq!(
        counter.take(),
        calls(&[("Query", 8), ("TransactWriteItems", 1)]),
        "settlement of one collection"
    );

    // Money out.
    let first = withdrawal::withdraw(&app, &m, withdrawal_request("k-1", "300", PAYMENT_PASSWORD))
        .await
        .unwrap();
    assert_eq!(
        counter.take(),
        calls(&[("TransactGetItems", 1), ("TransactWriteItems", 1)]),
        "withdrawal"
    );
    withdrawal::withdraw(&app, &m, withdrawal_request("k-1", "300", PAYMENT_PASSWORD))
        .await
        .unwrap();
    assert_eq!(counter.take(), calls(&[("TransactGetItems", 1)]), "withdrawal replay");
    let _ = withdrawal::withdraw(&app, &m, withdrawal_request("k-2", "300", "Wrong-Pass-1")).await;
    assert_eq!(
        counter.take(),
        calls(&[("PutItem", 1), ("TransactGetItems", 1)]),
        "wrong password"
    );
    withdrawal::withdraw(&app, &m, withdrawal_request("k-3", "200", PAYMENT_PASSWORD))
        .await
        .unwrap();
    assert_eq!(
        counter.take(),
        calls(&[("TransactGetItems", 1), ("TransactWriteItems", 1)]),
        "withdrawal that resets the wrong-password count"
    );
    withdrawal::member_withdrawal(&app, &m, &first.withdrawal.id)
        .await
        .unwrap();
    assert_eq!(counter.take(), calls(&[("GetItem", 1)]), "get withdrawal");
    store.withdrawals(&m, &FIRST_PAGE).await.unwrap();
    assert_eq!(counter.take(), calls(&[("Query", 1)]), "list withdrawals");
    store.ledger(&m, Some(Currency::Usd), &FIRST_PAGE).await.unwrap();
    assert_eq!(counter.take(), calls(&[("Query", 1)]), "transactions, one currency");
    store.ledger(&m, None, &FIRST_PAGE).await.unwrap();
    assert_eq!(counter.take(), calls(&[("Query", 2)]), "transactions, both currencies");
    withdrawal::report_payout(&app, &first.withdrawal.id, Payout::Paid)
        .await
        .unwrap();
    // The withdrawal, the balance and its two entries (the net amount, the fee); fee
    // revenue and clearing: two shards (or one, when both legs land on the same) and two
    // entries; the outbox event and the SMS notification.
    assert!(
        [9, 10].contains(&counter.items_written()[0]),
        "{:?}",
        counter.items_written()
    );
    assert_eq!(
        counter.take(),
        calls(&[("GetItem", 1), ("TransactWriteItems", 1)]),
        "paid"
    );
    withdrawal::report_payout(&app, &first.withdrawal.id, Payout::Paid)
        .await
        .unwrap();
    assert_eq!(counter.take(), calls(&[("GetItem", 1)]), "paid again (no-op)");

    // Publishing: the paid withdrawal's event, then a collection's, then a redelivery.
    let publishing = App::new(
        store.clone(),
        Arc::new(t.outbox.clone()),
        Arc::clone(&t.clock) as Arc<dyn Clock>,
        Settings::new(fund_account_tests::TEST_CODE_SECRET.to_vec()).unwrap(),
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
            .unwrap()
    };
    counter.take();
    let paid = publisher::publish(&publishing, &*publishing.events, &key_of("withdrawal.paid"))
        .await
        .unwrap();
    assert_eq!(paid.sms, Delivery::Sent);
    // The item and the counter (one read), the sequence (two items), the notification,
    // its claim, the member's phone, its delete.
    assert_eq!(
        counter.items_written(),
        [2],
        "the sequence (the claim and the delete are plain)"
    );
    assert_eq!(
        counter.take(),
        calls(&[
            ("DeleteItem", 1),
            ("PutItem", 1),
            ("Query", 1),
            ("TransactGetItems", 2),
            ("TransactWriteItems", 1),
        ]),
        "publish a withdrawal's event and send its SMS"
    );
    publisher::publish(&publishing, &*publishing.events, &key_of("collection.created"))
        .await
        .unwrap();
    assert_eq!(
        counter.take(),
        calls(&[("TransactGetItems", 1), ("TransactWriteItems", 1)]),
        "publish a collection's event"
    );
    publisher::publish(&publishing, &*publishing.events, &key_of("withdrawal.paid"))
        .await
        .unwrap();
    assert_eq!(
        counter.take(),
        calls(&[("TransactGetItems", 2)]),
        "a redelivery: the sequence found, the notification gone"
    );

    // Across currencies.
    fund_account_tests::journey::fresh_rate(&app, "USD-CNY", "7.2").await;
    assert_eq!(
        counter.take(),
        calls(&[("TransactGetItems", 1), ("TransactWriteItems", 1)]),
        "reference rate (the current one and its history entry)"
    );
    exchange::preview(&app, &m, Currency::Usd, amount("100"), Currency::Usd)
        .await
        .unwrap();
    assert_eq!(counter.take(), calls(&[("Query", 1)]), "preview, same currency");
    let preview = exchange::preview(&app, &m, Currency::Usd, amount("100"), Currency::Cny)
        .await
        .unwrap();
    assert_eq!(counter.items_written(), [2], "the quote and the member's quote book");
    assert_eq!(
        counter.take(),
        calls(&[("Query", 1), ("TransactGetItems", 1), ("TransactWriteItems", 1)]),
        "preview across currencies (member, then book + both rates, then the quote)"
    );
    let mut cross = withdrawal_request("k-fx", "100", PAYMENT_PASSWORD);
    cross.payout_currency = Currency::Cny;
    cross.quote_id = preview.quote.map(|q| q.id);
    withdrawal::withdraw(&app, &m, cross).await.unwrap();
    assert_eq!(
        counter.take(),
        calls(&[("TransactGetItems", 1), ("TransactWriteItems", 1)]),
        "withdrawal across currencies (the quote and book read with the rest)"
    );
    let quote = exchange::create_quote(
        &app,
        &m,
        QuoteRequest {
            sell: Currency::Usd,
            buy: Currency::Cny,
            fixed: Fixed::Sell(amount("50")),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        counter.take(),
        calls(&[("Query", 1), ("TransactGetItems", 1), ("TransactWriteItems", 1)]),
        "quote"
    );
    exchange::convert(&app, &m, &IdempotencyKey::parse("cv-1").unwrap(), &quote.id)
        .await
        .unwrap();
    // Key, conversion, quote, book; two balances and their entries; two FX shards and
    // their entries; the outbox event.
    assert_eq!(counter.items_written(), [13], "conversion's items");
    assert_eq!(
        counter.take(),
        calls(&[("TransactGetItems", 2), ("TransactWriteItems", 1)]),
        "conversion (the quote, then key + balance + quote + book together; one commit)"
    );
    exchange::conversions(&app, &m, &FIRST_PAGE).await.unwrap();
    assert_eq!(counter.take(), calls(&[("Query", 1)]), "list conversions");
    exchange::platform_balances(&app).await.unwrap();
    assert_eq!(
        counter.take(),
        calls(&[("BatchGetItem", 1)]),
        "platform balances (96 shards)"
    );
}

fn ulid_suffix() -> String {
    format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
