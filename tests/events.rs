//! Events and SMS notifications end to end on the emulator, with the real SDK clients: the
//! movements made through the domain operations write their outbox items; the table's
//! DynamoDB Stream is read back (`aws-sdk-dynamodbstreams`) and handed to the publisher's
//! handler as the DynamoDB stream event Lambda would hand it; the events land on an
//! EventBridge bus whose rule targets an SQS queue, and are read back from the queue.
//!
//! Done when: after de-duplication by `id`, exactly the movements' events, each once, in
//! `sequence` order per member (1..n); a failed record is retried without blocking or
//! re-sequencing anything; each withdrawal's SMS goes out exactly once, through failures.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use fund_account::adapters::eventbridge::EventBridgeBus;
use fund_account::adapters::sns::SnsSmsSender;
use fund_account::app::{App, Settings};
use fund_account::clock::{Clock, ManualClock, Timestamp};
use fund_account::collection::{self, NewCollection, NewRefund};
use fund_account::event_bus::{EventBus, EventBusError};
use fund_account::events::OutboxEvent;
use fund_account::exchange::{self, Fixed, QuoteRequest};
use fund_account::ids::WithdrawalId;
use fund_account::lambda::stream;
use fund_account::member::MemberId;
use fund_account::money::Currency;
use fund_account::phone::PhoneNumber;
use fund_account::publisher::{self, Delivery};
use fund_account::sms::{SmsError, SmsSender};
use fund_account::withdrawal::{self, IdempotencyKey, Payout};
use fund_account_tests::fixtures::{amount, external_id, withdrawal_request};
use fund_account_tests::{aws_config, dynamodb_store, sent_sms, sqlite_store, TestApp, PAYMENT_PASSWORD, T0};
use serde_json::{json, Value};

/// An EventBridge bus whose rule sends every event of ours to an SQS queue.
struct Bus {
    name: String,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl Bus {
    async fn create(config: &aws_config::SdkConfig, unique: &str) -> Bus {
        let eventbridge = aws_sdk_eventbridge::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);
        let name = format!("fund-account-events-{unique}");
        eventbridge.create_event_bus().name(&name).send().await.unwrap();
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("events-{unique}"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        let rule = format!("all-{unique}");
        eventbridge
            .put_rule()
            .name(&rule)
            .event_bus_name(&name)
            .event_pattern(json!({ "source": [fund_account::event_bus::EVENT_SOURCE] }).to_string())
            .send()
            .await
            .unwrap();
        eventbridge
            .put_targets()
            .rule(&rule)
            .event_bus_name(&name)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(queue_arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        Bus { name, sqs, queue_url }
    }

    /// Every event the queue received so far (each delivery, duplicates included):
    /// the `detail` of each EventBridge envelope.
    async fn received(&self) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                return events;
            }
            for message in messages {
                let envelope: Value = serde_json::from_str(message.body().unwrap()).unwrap();
                assert_eq!(envelope["source"], "fund-account", "{envelope}");
                assert_eq!(envelope["detail-type"], envelope["detail"]["type"], "{envelope}");
                events.push(envelope["detail"].clone());
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

/// A table with its stream, an app over it that sends SMS through the emulator's SNS and
/// publishes to `bus`.
struct Rig {
    t: TestApp,
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    bus: Bus,
    /// Stream records already read (the shard iterator resumes after them).
    read: usize,
}

async fn rig(
    sms: impl Fn(SnsSmsSender) -> Arc<dyn SmsSender>,
    bus: impl Fn(EventBridgeBus) -> Arc<dyn EventBus>,
) -> Rig {
    let config = aws_config().await;
    let unique = ulid::Ulid::new().to_string().to_lowercase();
    let store = dynamodb_store().await;
    let stream_arn = store
        .client()
        .describe_table()
        .table_name(store.table())
        .send()
        .await
        .unwrap()
        .table
        .and_then(|t| t.latest_stream_arn)
        .expect("the template's table has a stream");
    let events = Bus::create(&config, &unique).await;
    let clock = Arc::new(ManualClock::starting_at(Timestamp::from_unix_millis(T0)));
    let settings = Settings::new(fund_account_tests::TEST_CODE_SECRET.to_vec()).unwrap();
    let app = App::new(
        Arc::new(store),
        sms(SnsSmsSender::new(aws_sdk_sns::Client::new(&config))),
        Arc::clone(&clock) as Arc<dyn Clock>,
        settings,
    )
    .with_event_bus(bus(EventBridgeBus::new(
        aws_sdk_eventbridge::Client::new(&config),
        events.name.clone(),
    )));
    Rig {
        t: TestApp {
            app: Arc::new(app),
            clock,
            outbox: sqlite_store().outbox(),
        },
        streams: aws_sdk_dynamodbstreams::Client::new(&config),
        stream_arn,
        bus: events,
        read: 0,
    }
}

/// A stream attribute value as the Lambda event's JSON writes it.
fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::M(map) => {
            json!({ "M": map.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect::<serde_json::Map<_, _>>() })
        }
        AttributeValue::L(list) => json!({ "L": list.iter().map(attribute_json).collect::<Vec<_>>() }),
        AttributeValue::Ss(list) => json!({ "SS": list }),
        AttributeValue::Ns(list) => json!({ "NS": list }),
        other => panic!("no JSON here for {other:?}"),
    }
}

fn item_json(item: &std::collections::HashMap<String, AttributeValue>) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect())
}

impl Rig {
    /// The stream records written since the last call, as Lambda's DynamoDB event
    /// records (every kind of item: the handler must pick the outbox's own).
    async fn new_records(&mut self) -> Vec<Value> {
        let description = self
            .streams
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .unwrap()
            .stream_description
            .unwrap();
        let mut records = Vec::new();
        for shard in description.shards() {
            let mut iterator = self
                .streams
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(shard.shard_id().unwrap())
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator;
            while let Some(current) = iterator {
                let output = self.streams.get_records().shard_iterator(current).send().await.unwrap();
                let batch = output.records.unwrap_or_default();
                if batch.is_empty() {
                    break;
                }
                for record in batch {
                    let change = record.dynamodb.unwrap();
                    records.push(json!({
                        "eventID": record.event_id,
                        "eventName": record.event_name.map(|n| n.as_str().to_owned()),
                        "eventVersion": "1.1",
                        "eventSource": "aws:dynamodb",
                        "awsRegion": "us-east-1",
                        "eventSourceARN": self.stream_arn,
                        "dynamodb": {
                            "Keys": item_json(change.keys.as_ref().unwrap()),
                            "NewImage": change.new_image.as_ref().map(item_json),
                            "SequenceNumber": change.sequence_number,
                            "SizeBytes": change.size_bytes,
                            "StreamViewType": "NEW_IMAGE",
                        },
                    }));
                }
                iterator = output.next_shard_iterator;
            }
        }
        let fresh = records.split_off(self.read.min(records.len()));
        self.read += fresh.len();
        fresh
    }

    /// Hands `records` to the publisher's handler as one stream batch; returns the
    /// sequence numbers it reported failed.
    async fn deliver(&self, records: &[Value]) -> Vec<String> {
        let response = stream::handle(&self.t.app, json!({ "Records": records }))
            .await
            .unwrap();
        response["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
            .collect()
    }

    /// An active member whose bound phone is `phone`.
    async fn seller(&self, id: &str, phone: &str) -> MemberId {
        let member = self.t.active_member(id).await;
        let state = self.t.app.store.member_state(&member).await.unwrap().unwrap();
        fund_account::activation::sync_member(
            &self.t.app,
            &member,
            state.member.login_password_hash,
            Some(PhoneNumber::parse(phone).unwrap()),
        )
        .await
        .unwrap();
        member
    }

    async fn collect(&self, member: &MemberId, id: &str, value: &str, later: bool) {
        collection::collect(
            &self.t.app,
            NewCollection {
                collection_id: external_id(id),
                member_id: member.clone(),
                currency: Currency::Usd,
                amount: amount(value),
                available_at: later.then(|| self.t.app.now().plus_seconds(86_400)),
            },
        )
        .await
        .unwrap();
    }

    async fn withdraw(&self, member: &MemberId, key: &str, value: &str) -> WithdrawalId {
        let request = withdrawal_request(key, Currency::Usd, value, PAYMENT_PASSWORD);
        withdrawal::withdraw(&self.t.app, member, request)
            .await
            .unwrap()
            .withdrawal
            .id
    }
}

/// (type, the id the event is about) in commit order, per member.
type Expected = BTreeMap<String, Vec<(String, String)>>;

fn subject(event: &Value) -> String {
    let detail = &event["detail"];
    ["withdrawal_id", "refund_id", "conversion_id", "collection_id"]
        .iter()
        .find_map(|field| detail[*field].as_str())
        .unwrap_or_else(|| panic!("an event about nothing: {event}"))
        .to_owned()
}

/// Every movement of the contract, for two members, interleaved.
async fn make_every_movement(r: &Rig, a: &MemberId, b: &MemberId) -> Expected {
    let mut expected: Expected = BTreeMap::new();
    let mut note = |member: &MemberId, kind: &str, id: &str| {
        expected
            .entry(member.to_string())
            .or_default()
            .push((kind.to_owned(), id.to_owned()));
    };
    r.collect(a, "col-a1", "1000", false).await;
    note(a, "collection.created", "col-a1");
    r.collect(b, "col-b1", "500", false).await;
    note(b, "collection.created", "col-b1");
    collection::settle_due(&r.t.app, r.t.app.now()).await.unwrap();
    note(a, "collection.settled", "col-a1");
    note(b, "collection.settled", "col-b1");
    r.collect(a, "col-a2", "300", true).await;
    note(a, "collection.created", "col-a2");
    collection::refund(
        &r.t.app,
        NewRefund {
            refund_id: external_id("ref-a1"),
            collection_id: external_id("col-a2"),
            amount: amount("100"),
        },
    )
    .await
    .unwrap();
    note(a, "refund.created", "ref-a1");
    let w1 = r.withdraw(a, "key-a-1", "100").await;
    note(a, "withdrawal.created", w1.as_str());
    let wb = r.withdraw(b, "key-b-1", "20").await;
    note(b, "withdrawal.created", wb.as_str());
    withdrawal::report_payout(&r.t.app, &w1, Payout::Paid).await.unwrap();
    note(a, "withdrawal.paid", w1.as_str());
    let w2 = r.withdraw(a, "key-a-2", "50").await;
    note(a, "withdrawal.created", w2.as_str());
    withdrawal::report_payout(
        &r.t.app,
        &w2,
        Payout::Returned {
            reason: "account closed".to_owned(),
        },
    )
    .await
    .unwrap();
    note(a, "withdrawal.returned", w2.as_str());
    fund_account_tests::journey::fresh_rate(&r.t.app, "USD-CNY", "7.1845").await;
    let quote = exchange::create_quote(
        &r.t.app,
        a,
        QuoteRequest {
            sell: Currency::Usd,
            buy: Currency::Cny,
            fixed: Fixed::Sell(amount("100")),
        },
    )
    .await
    .unwrap();
    let conversion = exchange::convert(&r.t.app, a, &IdempotencyKey::parse("key-a-fx").unwrap(), &quote.id)
        .await
        .unwrap()
        .conversion;
    note(a, "conversion.created", conversion.id.as_str());
    expected
}

/// The received events de-duplicated by `id` (every copy of an id the same event, with
/// the same sequence), per member in `sequence` order; checks the sequences are 1..n.
fn per_member(received: &[Value]) -> Expected {
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    for event in received {
        let id = event["id"].as_str().unwrap().to_owned();
        if let Some(first) = by_id.get(&id) {
            assert_eq!(
                first, event,
                "every delivery of {id} is the same event, sequence included"
            );
        }
        by_id.insert(id, event.clone());
    }
    let mut members: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for event in by_id.values() {
        members
            .entry(event["member_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(event);
    }
    members
        .into_iter()
        .map(|(member, mut events)| {
            events.sort_by_key(|e| e["sequence"].as_u64().unwrap());
            let sequences: Vec<u64> = events.iter().map(|e| e["sequence"].as_u64().unwrap()).collect();
            assert_eq!(sequences, (1..=events.len() as u64).collect::<Vec<_>>(), "{member}");
            let order = events
                .iter()
                .map(|e| (e["type"].as_str().unwrap().to_owned(), subject(e)))
                .collect();
            (member, order)
        })
        .collect()
}

/// Nothing that names a person or an account in full leaves in an event.
fn assert_no_personal_data(received: &[Value], phones: &[&str]) {
    for event in received {
        let text = event.to_string();
        for secret in ["Li Wei", "ICBC", "6222020200112233"].iter().chain(phones) {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(event["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{event}");
    }
}

fn sns(sender: SnsSmsSender) -> Arc<dyn SmsSender> {
    Arc::new(sender)
}

fn eventbridge(bus: EventBridgeBus) -> Arc<dyn EventBus> {
    Arc::new(bus)
}

/// A unique phone number, so that the emulator's SMS (shared by the suite) are this test's.
fn phone() -> String {
    let digits = ulid::Ulid::new().random() % 100_000_000;
    format!("+86138{digits:08}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_receives_exactly_the_movements_events_in_sequence_order_per_member() {
    let mut r = rig(sns, eventbridge).await;
    let (phone_a, phone_b) = (phone(), phone());
    let a = r.seller("events-a", &phone_a).await;
    let b = r.seller("events-b", &phone_b).await;
    let expected = make_every_movement(&r, &a, &b).await;

    let records = r.new_records().await;
    let outbox_records = records
        .iter()
        .filter(|r| {
            r["dynamodb"]["Keys"]["PK"]["S"]
                .as_str()
                .is_some_and(|pk| pk.starts_with("OUTBOX#"))
        })
        .count();
    assert_eq!(
        outbox_records,
        expected.values().map(Vec::len).sum::<usize>(),
        "one item per movement"
    );
    assert_eq!(r.deliver(&records).await, Vec::<String>::new(), "nothing failed");
    // At least once: Lambda may hand the same batch again. Same ids, same sequences.
    assert_eq!(r.deliver(&records).await, Vec::<String>::new());

    let received = r.bus.received().await;
    assert_eq!(
        received.len(),
        2 * outbox_records,
        "each record published on each delivery"
    );
    assert_eq!(per_member(&received), expected);
    assert_no_personal_data(&received, &[&phone_a, &phone_b]);
    let withdrawal = received
        .iter()
        .find(|e| e["type"] == "withdrawal.paid")
        .expect("a paid withdrawal's event");
    assert_eq!(withdrawal["detail"]["account_last4"], "2233", "{withdrawal}");
    assert_eq!(withdrawal["detail"]["status"], "paid", "{withdrawal}");

    // One SMS per withdrawal movement, each once, though its record came twice.
    let sms_a: Vec<String> = sent_sms()
        .await
        .into_iter()
        .filter(|(p, _)| *p == phone_a)
        .map(|(_, m)| m)
        .collect();
    assert_eq!(sms_a.len(), 4, "{sms_a:?}");
    assert!(sms_a
        .iter()
        .all(|m| m.contains("2233") && m.contains("提现") && m.contains("withdrawal")));
    assert_eq!(sent_sms().await.iter().filter(|(p, _)| *p == phone_b).count(), 1);
}

/// A bus that refuses the first `failures` events of one member.
struct RefusingBus {
    inner: Arc<dyn EventBus>,
    member: String,
    failures: AtomicUsize,
}

#[async_trait]
impl EventBus for RefusingBus {
    async fn put(&self, event: &OutboxEvent) -> Result<(), EventBusError> {
        if event.member_id.as_str() == self.member
            && self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(EventBusError("refused for the test".to_owned()));
        }
        self.inner.put(event).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_record_fails_only_its_member_and_its_redelivery_keeps_every_sequence() {
    let mut r = rig(sns, |bus| {
        Arc::new(RefusingBus {
            inner: Arc::new(bus),
            member: "refused-b".to_owned(),
            failures: AtomicUsize::new(1),
        })
    })
    .await;
    let a = r.seller("refused-a", &phone()).await;
    let b = r.seller("refused-b", &phone()).await;
    let expected = make_every_movement(&r, &a, &b).await;
    let records = r.new_records().await;

    let failed = r.deliver(&records).await;
    let outbox_of = |member: &MemberId| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["dynamodb"]["Keys"]["PK"]["S"] == format!("OUTBOX#{member}"))
            .map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        failed,
        outbox_of(&b),
        "the refused member's records, from its first on, and no other"
    );
    let first = r.bus.received().await;
    assert!(
        first.iter().all(|e| e["member_id"] == "refused-a"),
        "b's later records were held back"
    );

    // Lambda retries from the lowest failed sequence number: every record after it,
    // of both members, comes again.
    let from = records
        .iter()
        .position(|r| r["dynamodb"]["SequenceNumber"].as_str() == failed.first().map(String::as_str))
        .unwrap();
    assert_eq!(r.deliver(&records[from..]).await, Vec::<String>::new());
    let mut received = first;
    received.extend(r.bus.received().await);
    assert_eq!(
        per_member(&received),
        expected,
        "each once after de-duplication, sequences unchanged"
    );
}

/// An SMS sender that fails its first `failures` sends.
struct FlakySms {
    inner: SnsSmsSender,
    failures: AtomicUsize,
}

#[async_trait]
impl SmsSender for FlakySms {
    async fn send(&self, phone: &PhoneNumber, message: &str, now: Timestamp) -> Result<(), SmsError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(SmsError("provider down for the test".to_owned()));
        }
        self.inner.send(phone, message, now).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sms_is_retried_by_the_sweep_until_sent_and_sent_once() {
    let mut r = rig(
        |sender| {
            Arc::new(FlakySms {
                inner: sender,
                failures: AtomicUsize::new(3),
            })
        },
        eventbridge,
    )
    .await;
    let phone_a = phone();
    let a = r.seller("flaky-sms", &phone_a).await;
    r.collect(&a, "col-flaky", "500", false).await;
    collection::settle_due(&r.t.app, r.t.app.now()).await.unwrap();
    let w1 = r.withdraw(&a, "key-flaky-1", "100").await;
    withdrawal::report_payout(&r.t.app, &w1, Payout::Paid).await.unwrap();
    let records = r.new_records().await;
    assert_eq!(
        r.deliver(&records).await,
        Vec::<String>::new(),
        "an SMS problem never fails a record"
    );
    let sent = || async { sent_sms().await.into_iter().filter(|(p, _)| *p == phone_a).count() };
    assert_eq!(sent().await, 0, "both sends failed");

    // Not due yet: the sweep leaves them.
    let report = publisher::sweep_notifications(&r.t.app).await.unwrap();
    assert_eq!(report.sent, 0, "{report:?}");
    r.t.clock.advance_seconds(publisher::MAX_SMS_BACKOFF_SECONDS);
    let report = publisher::sweep_notifications(&r.t.app).await.unwrap();
    assert_eq!(
        (report.sent, report.failed),
        (1, 1),
        "the third failure, then a send: {report:?}"
    );
    r.t.clock.advance_seconds(publisher::MAX_SMS_BACKOFF_SECONDS);
    let report = publisher::sweep_notifications(&r.t.app).await.unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    r.t.clock.advance_seconds(publisher::MAX_SMS_BACKOFF_SECONDS);
    let report = publisher::sweep_notifications(&r.t.app).await.unwrap();
    assert_eq!(report, publisher::SweepReport::default(), "nothing left");
    assert_eq!(sent().await, 2, "one SMS per movement");
    // The stream delivering the records again sends nothing more.
    assert_eq!(r.deliver(&records).await, Vec::<String>::new());
    assert_eq!(sent().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_of_one_record_send_one_sms() {
    let mut r = rig(sns, eventbridge).await;
    let phone_a = phone();
    let a = r.seller("concurrent-sms", &phone_a).await;
    r.collect(&a, "col-concurrent", "500", false).await;
    collection::settle_due(&r.t.app, r.t.app.now()).await.unwrap();
    r.withdraw(&a, "key-concurrent", "100").await;
    let records = r.new_records().await;
    let record = records
        .iter()
        .find(|r| {
            r["dynamodb"]["NewImage"]["body"]["S"]
                .as_str()
                .is_some_and(|b| b.contains("withdrawal.created"))
        })
        .unwrap()
        .clone();
    let record: aws_lambda_events::event::dynamodb::EventRecord = serde_json::from_value(record).unwrap();
    let key = stream::outbox_key(&record).unwrap();
    let app = &r.t.app;
    let deliveries = futures_join(
        publisher::publish(app, &*app.events, &key),
        publisher::publish(app, &*app.events, &key),
    )
    .await;
    let smses: Vec<Delivery> = [deliveries.0.unwrap().sms, deliveries.1.unwrap().sms].into();
    assert_eq!(smses.iter().filter(|d| **d == Delivery::Sent).count(), 1, "{smses:?}");
    assert_eq!(sent_sms().await.iter().filter(|(p, _)| *p == phone_a).count(), 1);
    let received = r.bus.received().await;
    let ids: BTreeSet<&str> = received.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), 1, "one event, put once per delivery: {received:?}");
}

async fn futures_join<A: std::future::Future, B: std::future::Future>(a: A, b: B) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}

/// The local gateway over the embedded store: its stand-in for the stream publishes each
/// movement's event to the local bus (`GET /dev/events`) and sends the withdrawal's SMS
/// to the local outbox (`GET /dev/sms`), after the movement, without being asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_gateway_publishes_events_and_sends_sms_after_a_withdrawal() {
    use fund_account_tests::{Adapter, GatewayClient};
    use reqwest::Method;
    let api = GatewayClient::start(Adapter::Sqlite).await;
    let token = api.active_member("gw-events").await;
    let phone = "+8613800005678";
    let bound = api
        .client
        .post(api.gw.url("/dev/members"))
        .json(&json!({ "member_id": "gw-events", "login_password": "login-Pass-2026", "phone": phone }))
        .send()
        .await
        .unwrap();
    assert_eq!(bound.status(), 201);
    let collected = api
        .internal(
            Method::POST,
            "/internal/collections",
            Some(json!({ "collection_id": "col-gw", "member_id": "gw-events", "currency": "USD", "amount": "500.00" })),
        )
        .await;
    assert_eq!(collected.status(), 201);
    api.settle().await;
    let withdrawn = api
        .member(
            Method::POST,
            &token,
            "/v1/withdrawals",
            Some("gw-events-1"),
            Some(json!({
                "currency": "USD",
                "amount": "100.00",
                "payment_password": PAYMENT_PASSWORD,
                "bank_account": { "holder_name": "Li Wei", "account_number": "6222020200112233", "bank_name": "ICBC" },
            })),
        )
        .await;
    assert_eq!(withdrawn.status(), 201);
    let withdrawal: Value = withdrawn.json().await.unwrap();

    let get = |path: String| {
        let request = api.client.get(api.gw.url(&path));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (events, sms) = loop {
        let events = get("/dev/events?member_id=gw-events".to_owned()).await;
        let sms = get(format!("/dev/sms?phone=%2B{}", &phone[1..])).await;
        let done =
            events["items"].as_array().map(Vec::len) == Some(3) && sms["items"].as_array().map(Vec::len) == Some(1);
        if done || std::time::Instant::now() > deadline {
            break (events, sms);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let items = events["items"].as_array().unwrap();
    let seen: Vec<(u64, &str)> = items
        .iter()
        .map(|e| (e["sequence"].as_u64().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, "collection.created"),
            (2, "collection.settled"),
            (3, "withdrawal.created")
        ],
        "{events}"
    );
    for event in items {
        for field in ["id", "type", "member_id", "sequence", "time", "detail"] {
            assert!(event.get(field).is_some(), "{field} in {event}");
        }
    }
    assert_eq!(items[2]["detail"]["withdrawal_id"], withdrawal["id"]);
    assert_no_personal_data(items, &[phone]);
    let messages = sms["items"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{sms}");
    let text = messages[0]["message"].as_str().unwrap();
    assert!(
        text.contains("2233") && text.contains("100.00") && !text.contains("6222020200112233"),
        "{text}"
    );
    api.gw.stop().await;
}

/// What the local gateway had not published when it stopped is published after its
/// restart, in order, with the sequence going on where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_publisher_picks_up_after_a_restart() {
    use fund_account::clock::SystemClock;
    use fund_account_tests::RunningGateway;
    let client = reqwest::Client::new();
    let gw = RunningGateway::start(None, Arc::new(SystemClock)).await;
    gw.member_token(&client, "gw-restart", None).await;
    let collect = |gw: &RunningGateway, id: &str| {
        client
            .post(gw.url("/internal/collections"))
            .header("x-internal-key", &gw.internal_key)
            .json(&json!({ "collection_id": id, "member_id": "gw-restart", "currency": "USD", "amount": "10.00" }))
            .send()
    };
    assert_eq!(collect(&gw, "col-before").await.unwrap().status(), 201);
    // Stopped at once: the item may or may not have been published yet.
    let gw = gw.restart(Arc::new(SystemClock)).await;
    assert_eq!(collect(&gw, "col-after").await.unwrap().status(), 201);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let events = loop {
        let events: Value = client
            .get(gw.url("/dev/events?member_id=gw-restart"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if events["items"].as_array().map(Vec::len) == Some(2) || std::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let seen: Vec<(u64, &str)> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["sequence"].as_u64().unwrap(),
                e["detail"]["collection_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [(1, "col-before"), (2, "col-after")], "{events}");
    gw.stop().await;
}

/// Loses the answer of the first delete of a notification: it lands, the caller sees
/// the store unavailable (what a DynamoDB timeout after the write looks like).
struct LoseTheFirstDelete(AtomicUsize);

#[async_trait]
impl fund_account_tests::StoreHook for LoseTheFirstDelete {
    async fn before(&self, call: fund_account_tests::StoreCall<'_>) -> fund_account_tests::Injection {
        use fund_account::store::{StoreError, Write};
        use fund_account_tests::{Injection, StoreCall};
        match call {
            StoreCall::Commit(writes)
                if writes.iter().any(|w| matches!(w, Write::DeleteDoc { .. }))
                    && self.0.fetch_add(1, Ordering::SeqCst) == 0 =>
            {
                Injection::FailAfter(StoreError::Unavailable("the answer was lost".to_owned()))
            }
            _ => Injection::Pass,
        }
    }
}

/// The delete after a send is retried: a lost answer neither fails the delivery nor
/// leaves the notification to be sent again.
async fn a_lost_answer_to_the_delete_after_a_send_sends_nothing_twice(adapter: fund_account_tests::Adapter) {
    let store = Arc::new(fund_account_tests::HookedStore::new(
        fund_account_tests::store_of(adapter).await,
        Arc::new(LoseTheFirstDelete(AtomicUsize::new(0))),
    ));
    let outbox = sqlite_store().outbox();
    let clock = Arc::new(ManualClock::starting_at(Timestamp::from_unix_millis(T0)));
    let app = App::new(
        store,
        Arc::new(outbox.clone()),
        Arc::clone(&clock) as Arc<dyn Clock>,
        Settings::new(fund_account_tests::TEST_CODE_SECRET.to_vec()).unwrap(),
    )
    .with_event_bus(Arc::new(sqlite_store().event_bus()));
    let t = TestApp {
        app: Arc::new(app),
        clock,
        outbox,
    };
    let member = t.active_member("lost-delete").await;
    let state = t.app.store.member_state(&member).await.unwrap().unwrap();
    let phone = "+8613800009876";
    fund_account::activation::sync_member(
        &t.app,
        &member,
        state.member.login_password_hash,
        Some(PhoneNumber::parse(phone).unwrap()),
    )
    .await
    .unwrap();
    t.fund(&member, Currency::Usd, "500").await;
    let request = withdrawal_request("key-lost-delete", Currency::Usd, "100", PAYMENT_PASSWORD);
    withdrawal::withdraw(&t.app, &member, request).await.unwrap();
    let partition = format!("OUTBOX#{member}");
    let items = t
        .app
        .store
        .doc_page(
            &partition,
            &fund_account::store::PageRequest {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap()
        .items;
    let created = items.iter().find(|d| d.body.contains("withdrawal.created")).unwrap();
    let published = publisher::publish(&t.app, &*t.app.events, &created.key).await.unwrap();
    assert_eq!(published.sms, Delivery::Sent);
    let notification: fund_account::store::DocKey =
        fund_account::events::keys::notification(&member, &created.key.sort).into();
    assert_eq!(t.app.store.docs(&[notification]).await.unwrap(), vec![None], "deleted");
    t.clock.advance_seconds(publisher::NOTIFICATION_LEASE_SECONDS + 1);
    assert_eq!(publisher::sweep_notifications(&t.app).await.unwrap().sent, 0);
    assert_eq!(t.sms_count(phone).await, 1);
}

fund_account_tests::for_each_adapter!(a_lost_answer_to_the_delete_after_a_send_sends_nothing_twice);

/// Loses the answer of the first commit that gives an event its sequence.
struct LoseTheFirstSequence(AtomicUsize);

#[async_trait]
impl fund_account_tests::StoreHook for LoseTheFirstSequence {
    async fn before(&self, call: fund_account_tests::StoreCall<'_>) -> fund_account_tests::Injection {
        use fund_account::store::{StoreError, Write};
        use fund_account_tests::{Injection, StoreCall};
        match call {
            StoreCall::Commit(writes)
                if writes
                    .iter()
                    .any(|w| matches!(w, Write::PutDoc { doc, .. } if doc.key.partition.starts_with("EVENTSEQ#")))
                    && self.0.fetch_add(1, Ordering::SeqCst) == 0 =>
            {
                Injection::FailAfter(StoreError::Unavailable("the answer was lost".to_owned()))
            }
            _ => Injection::Pass,
        }
    }
}

/// A sequence that landed without its answer is found by the retry and kept: the
/// counter moves once per event.
async fn a_lost_answer_to_the_sequence_keeps_the_sequence(adapter: fund_account_tests::Adapter) {
    let t = fund_account_tests::hooked_app(adapter, Arc::new(LoseTheFirstSequence(AtomicUsize::new(0)))).await;
    let bus = sqlite_store().event_bus();
    let member = t.active_member("lost-sequence").await;
    t.fund(&member, Currency::Usd, "500").await;
    let items = t
        .app
        .store
        .doc_page(
            &format!("OUTBOX#{member}"),
            &fund_account::store::PageRequest {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap()
        .items;
    let key = |kind: &str| items.iter().find(|d| d.body.contains(kind)).unwrap().key.clone();
    let created = key("collection.created");
    assert!(
        publisher::publish(&t.app, &bus, &created).await.is_err(),
        "the record is retried"
    );
    let again = publisher::publish(&t.app, &bus, &created).await.unwrap();
    assert_eq!(again.event.and_then(|e| e.sequence), Some(1));
    let settled = publisher::publish(&t.app, &bus, &key("collection.settled"))
        .await
        .unwrap();
    assert_eq!(settled.event.and_then(|e| e.sequence), Some(2));
    let published = bus.events(Some(member.to_string()), 10).await.unwrap();
    let sequences: Vec<u64> = published.iter().map(|e| e["sequence"].as_u64().unwrap()).collect();
    assert_eq!(sequences, [1, 2]);
}

fund_account_tests::for_each_adapter!(a_lost_answer_to_the_sequence_keeps_the_sequence);
