//! Storms: thousands of mixed operations from many concurrent clients — through the
//! local gateway over HTTP, and (smaller) through the services on the DynamoDB emulator —
//! then every invariant is checked and the reconciliation must find nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fund_account::clock::SystemClock;
use fund_account::collection::{self, NewCollection, NewRefund};
use fund_account::error::ApiError;
use fund_account::ledger::Bucket;
use fund_account::member::MemberId;
use fund_account::money::{Amount, Currency};
use fund_account::password::PaymentPassword;
use fund_account::reconciliation::{self, RunOptions};
use fund_account::records::BankAccount;
use fund_account::withdrawal::{self, IdempotencyKey, Payout, WithdrawalRequest};
use fund_account_tests::fixtures::external_id;
use fund_account_tests::{test_app, Adapter, RunningGateway, TestApp, PAYMENT_PASSWORD};
use reqwest::Client;
use serde_json::{json, Value};

/// A small deterministic generator per client (xorshift), so a failing storm repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn amount(&mut self, max_cents: u64) -> String {
        let cents = 1 + self.below(max_cents);
        format!("{}.{:02}", cents / 100, cents % 100)
    }

    fn currency(&mut self) -> &'static str {
        if self.below(2) == 0 {
            "USD"
        } else {
            "CNY"
        }
    }
}

/// Cents of a decimal money string (`"12.3"`, `"12.30"`, `"-1.05"`).
fn cents(text: &str) -> i64 {
    let (sign, digits) = text.strip_prefix('-').map_or((1, text), |rest| (-1, rest));
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let fraction = format!("{fraction:0<2}");
    assert_eq!(fraction.len(), 2, "{text} has more than two decimals");
    sign * (whole.parse::<i64>().unwrap() * 100 + fraction.parse::<i64>().unwrap())
}

/// The money one member's currency saw move, in cents, by what the clients were told
/// succeeded: the model the account must match after the storm.
#[derive(Debug, Default, Clone, Copy)]
struct Flows {
    collected: i64,
    refunded: i64,
    withdrawn: i64,
    paid: i64,
    returned: i64,
}

#[derive(Debug, Clone, Copy)]
enum Flow {
    Collected,
    Refunded,
    Withdrawn,
    Paid,
    Returned,
}

impl Flows {
    fn add(&mut self, flow: Flow, cents: i64) {
        let total = match flow {
            Flow::Collected => &mut self.collected,
            Flow::Refunded => &mut self.refunded,
            Flow::Withdrawn => &mut self.withdrawn,
            Flow::Paid => &mut self.paid,
            Flow::Returned => &mut self.returned,
        };
        *total += cents;
    }
}

/// What the storm's clients saw: successes and refusals per kind of operation (refusals
/// by problem `code`), and the money each success moved.
#[derive(Debug, Default)]
struct Tally {
    successes: BTreeMap<&'static str, u64>,
    refusals: BTreeMap<(&'static str, String), u64>,
    flows: BTreeMap<(String, String), Flows>,
}

impl Tally {
    fn succeeded(&mut self, kind: &'static str) {
        *self.successes.entry(kind).or_default() += 1;
    }

    fn refused(&mut self, kind: &'static str, code: &str) {
        *self.refusals.entry((kind, code.to_owned())).or_default() += 1;
    }

    fn flows(&mut self, member: &str, currency: &str) -> &mut Flows {
        self.flows.entry((member.to_owned(), currency.to_owned())).or_default()
    }

    /// Every kind succeeded at least once (a storm that only refused proves nothing), and
    /// every refusal is one the contract allows for that kind under these inputs.
    fn assert_plausible(&self, kinds: &[&str], allowed_refusals: &[(&str, &str)]) {
        for kind in kinds {
            assert!(
                self.successes.get(kind).copied().unwrap_or(0) > 0,
                "no {kind} succeeded: {self:?}"
            );
        }
        for (kind, code) in self.refusals.keys() {
            assert!(
                allowed_refusals.contains(&(kind, code.as_str())),
                "{kind} refused with {code}, which cannot happen here: {self:?}"
            );
        }
    }

    /// The account matches the model: what is held (`available + pending + in_transit`)
    /// is what was collected less what was refunded and paid out, and `in_transit` holds
    /// exactly the withdrawals neither paid nor returned.
    fn assert_balances(&self, member: &str, currency: &str, available: i64, pending: i64, in_transit: i64) {
        let f = self
            .flows
            .get(&(member.to_owned(), currency.to_owned()))
            .copied()
            .unwrap_or_default();
        assert_eq!(
            available + pending + in_transit,
            f.collected - f.refunded - f.paid,
            "{member} {currency}: held vs the successes the clients saw ({f:?})"
        );
        assert_eq!(
            in_transit,
            f.withdrawn - f.paid - f.returned,
            "{member} {currency}: in transit vs the withdrawals the clients saw ({f:?})"
        );
    }
}

const HTTP_KINDS: [&str; 6] = ["collection", "refund", "reconcile", "withdrawal", "payout", "read"];

/// The refusals these storms can meet: a refund of a collection that does not exist (the
/// target is a random earlier operation), of more than is left of it, or of money already
/// withdrawn; a withdrawal of more than is available, or of less than its fee.
const ALLOWED_REFUSALS: [(&str, &str); 5] = [
    ("refund", "collection_not_found"),
    ("refund", "refund_exceeds_collection"),
    ("refund", "insufficient_funds"),
    ("withdrawal", "insufficient_funds"),
    ("withdrawal", "amount_below_fee"),
];

/// A storm through a local gateway over HTTP on `adapter`'s store: `members` sellers,
/// `clients` concurrent clients of `ops` operations each.
async fn http_storm(adapter: Adapter, members: usize, clients: u64, ops: u64) {
    let gw = Arc::new(RunningGateway::start_on(adapter, Arc::new(SystemClock)).await);
    let client = Client::new();
    let mut tokens = Vec::new();
    for i in 0..members {
        tokens.push(gw.active_member_token(&client, &format!("storm-{i}")).await);
    }
    let tokens = Arc::new(tokens);
    let counter = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (gw, tokens, counter, client, tally) = (
            Arc::clone(&gw),
            Arc::clone(&tokens),
            Arc::clone(&counter),
            client.clone(),
            Arc::clone(&tally),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (c + 1));
            // (id, member, currency, amount) of this client's withdrawals not yet reported.
            let mut withdrawals: Vec<(String, String, String, String)> = Vec::new();
            for _ in 0..ops {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let m = usize::try_from(rng.below(members as u64)).unwrap();
                let member = format!("storm-{m}");
                let key = gw.internal_key.clone();
                let (what, response) = match rng.below(20) {
                    0..=7 => {
                        let body = json!({ "collection_id": format!("col-{n}"), "member_id": member, "currency": rng.currency(), "amount": rng.amount(50_000) });
                        ("collection", client.post(gw.url("/internal/collections")).header("x-internal-key", key).json(&body).send().await.unwrap())
                    }
                    8..=9 => {
                        let target = rng.below(n.max(1));
                        let body = json!({ "refund_id": format!("ref-{n}"), "collection_id": format!("col-{target}"), "amount": rng.amount(10_000) });
                        ("refund", client.post(gw.url("/internal/refunds")).header("x-internal-key", key).json(&body).send().await.unwrap())
                    }
                    10..=11 => ("reconcile", client.post(gw.url("/dev/reconcile")).send().await.unwrap()),
                    12..=13 => {
                        let body = json!({
                            "currency": rng.currency(), "amount": rng.amount(20_000), "payment_password": PAYMENT_PASSWORD,
                            "bank_account": { "holder_name": "Storm", "account_number": "6222020200112233", "bank_name": "ICBC" },
                        });
                        ("withdrawal", client.post(gw.url("/v1/withdrawals")).bearer_auth(&tokens[m]).header("idempotency-key", format!("k-{n}")).json(&body).send().await.unwrap())
                    }
                    14 if !withdrawals.is_empty() => {
                        let (id, member, currency, amount) = withdrawals.remove(usize::try_from(rng.below(withdrawals.len() as u64)).unwrap());
                        let outcome = if rng.below(2) == 0 { "paid" } else { "returned" };
                        let response = client
                            .post(gw.url(&format!("/internal/withdrawals/{id}/{outcome}")))
                            .header("x-internal-key", key)
                            .json(&if outcome == "paid" { json!({}) } else { json!({ "reason": "storm" }) })
                            .send()
                            .await
                            .unwrap();
                        if response.status() == 200 {
                            let mut tally = tally.lock().unwrap();
                            let flow = if outcome == "paid" { Flow::Paid } else { Flow::Returned };
                            tally.flows(&member, &currency).add(flow, cents(&amount));
                        }
                        ("payout", response)
                    }
                    _ => {
                        let path = ["/v1/account", "/v1/account/transactions?limit=5", "/v1/withdrawals?limit=5"][usize::try_from(rng.below(3)).unwrap()];
                        ("read", client.get(gw.url(path)).bearer_auth(&tokens[m]).send().await.unwrap())
                    }
                };
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let success = match what {
                    "collection" | "refund" | "withdrawal" => 201,
                    _ => 200,
                };
                let mut tally = tally.lock().unwrap();
                if status == success {
                    tally.succeeded(what);
                    let text = |key: &str| body[key].as_str().unwrap().to_owned();
                    match what {
                        "collection" => tally.flows(&text("member_id"), &text("currency")).add(Flow::Collected, cents(&text("amount"))),
                        "refund" => tally.flows(&text("member_id"), &text("currency")).add(Flow::Refunded, cents(&text("amount"))),
                        "withdrawal" => {
                            tally.flows(&member, &text("currency")).add(Flow::Withdrawn, cents(&text("amount")));
                            withdrawals.push((text("id"), member.clone(), text("currency"), text("amount")));
                        }
                        _ => {}
                    }
                } else {
                    assert!(matches!(status, 404 | 422), "{what} answered {status}: {body}");
                    tally.refused(what, body["code"].as_str().unwrap_or("(no code)"));
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let report: Value = client
        .post(gw.url("/dev/reconcile"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["discrepancies"], json!([]), "{report}");
    assert_eq!(report["accounts_checked"], u64::try_from(members).unwrap());
    let tally = Arc::try_unwrap(tally).unwrap().into_inner().unwrap();
    tally.assert_plausible(&HTTP_KINDS, &ALLOWED_REFUSALS);
    for (i, token) in tokens.iter().enumerate() {
        let account: Value = client
            .get(gw.url("/v1/account"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for currency in ["USD", "CNY"] {
            let bucket = |name: &str| cents(account["balances"][currency][name].as_str().unwrap());
            tally.assert_balances(
                &format!("storm-{i}"),
                currency,
                bucket("available"),
                bucket("pending"),
                bucket("in_transit"),
            );
        }
    }
    for i in 0..members {
        let id = MemberId::parse(&format!("storm-{i}")).unwrap();
        let t = TestApp {
            app: gw.gateway.app.clone(),
            clock: Arc::new(fund_account::clock::ManualClock::starting_at(gw.gateway.app.now())),
            outbox: fund_account_tests::sqlite_store().outbox(),
        };
        t.assert_books_balance(&id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_through_the_local_gateway_keeps_every_invariant() {
    http_storm(Adapter::Sqlite, 8, 12, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_through_the_local_gateway_on_the_dynamodb_emulator_keeps_every_invariant() {
    http_storm(Adapter::DynamoDb, 4, 4, 40).await;
}

fn bank() -> BankAccount {
    BankAccount {
        holder_name: "Storm".to_owned(),
        account_number: "6222020200112233".to_owned(),
        bank_name: "ICBC".to_owned(),
    }
}

/// The refusal codes of the errors the services' storm can meet (see [`ALLOWED_REFUSALS`]).
fn refusal_code(error: &ApiError) -> Option<&'static str> {
    match error {
        ApiError::CollectionNotFound => Some("collection_not_found"),
        ApiError::RefundExceedsCollection { .. } => Some("refund_exceeds_collection"),
        ApiError::InsufficientFunds { .. } => Some("insufficient_funds"),
        ApiError::AmountBelowFee { .. } => Some("amount_below_fee"),
        _ => None,
    }
}

/// What a success moved: its kind, and (member, currency, flow, cents).
type Moved = (&'static str, Option<(String, &'static str, Flow, i64)>);

fn moved(kind: &'static str, flow: Flow, member: &MemberId, currency: Currency, amount: Amount) -> Moved {
    let cents = cents(&amount.to_string());
    (kind, Some((member.as_str().to_owned(), currency.code(), flow, cents)))
}

const SERVICE_KINDS: [&str; 5] = ["collection", "refund", "settlement", "withdrawal", "payout"];

/// The same storm through the services, for a store adapter.
async fn storm(adapter: Adapter, members: usize, clients: u64, ops: u64) {
    let t = Arc::new(test_app(adapter).await);
    let mut ids = Vec::new();
    for i in 0..members {
        ids.push(t.active_member(&format!("storm-{i}")).await);
    }
    let ids = Arc::new(ids);
    let counter = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (t, ids, counter, tally) = (
            Arc::clone(&t),
            Arc::clone(&ids),
            Arc::clone(&counter),
            Arc::clone(&tally),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ (c + 1));
            let mut withdrawals: Vec<fund_account::ids::WithdrawalId> = Vec::new();
            for _ in 0..ops {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let m = &ids[usize::try_from(rng.below(ids.len() as u64)).unwrap()];
                let currency = if rng.below(2) == 0 {
                    Currency::Usd
                } else {
                    Currency::Cny
                };
                let amount = Amount::parse_request(&rng.amount(20_000)).unwrap();
                let result: Result<Moved, (&'static str, ApiError)> = match rng.below(10) {
                    0..=3 => collection::collect(
                        &t.app,
                        NewCollection {
                            collection_id: external_id(&format!("col-{n}")),
                            member_id: m.clone(),
                            currency,
                            amount,
                            available_at: None,
                        },
                    )
                    .await
                    .map(|c| {
                        assert!(c.created, "collection ids are unique");
                        moved(
                            "collection",
                            Flow::Collected,
                            &c.record.member_id,
                            c.record.currency,
                            c.record.amount,
                        )
                    })
                    .map_err(|e| ("collection", e)),
                    4 => collection::refund(
                        &t.app,
                        NewRefund {
                            refund_id: external_id(&format!("ref-{n}")),
                            collection_id: external_id(&format!("col-{}", rng.below(n.max(1)))),
                            amount,
                        },
                    )
                    .await
                    .map(|r| {
                        moved(
                            "refund",
                            Flow::Refunded,
                            &r.record.member_id,
                            r.record.currency,
                            r.record.amount,
                        )
                    })
                    .map_err(|e| ("refund", e)),
                    5..=6 => collection::settle_due(&t.app, t.app.now())
                        .await
                        .map(|_| ("settlement", None))
                        .map_err(|e| ("settlement", e)),
                    7..=8 => {
                        let request = WithdrawalRequest {
                            key: IdempotencyKey::parse(&format!("k-{n}")).unwrap(),
                            currency,
                            amount,
                            password: PaymentPassword::new(PAYMENT_PASSWORD.to_owned()),
                            bank_account: bank(),
                            payout_currency: currency,
                            quote_id: None,
                        };
                        withdrawal::withdraw(&t.app, m, request)
                            .await
                            .map(|created| {
                                assert!(!created.replayed, "idempotency keys are unique");
                                withdrawals.push(created.withdrawal.id);
                                moved("withdrawal", Flow::Withdrawn, m, currency, amount)
                            })
                            .map_err(|e| ("withdrawal", e))
                    }
                    _ => match withdrawals.pop() {
                        Some(id) => {
                            let paid = rng.below(2) == 0;
                            let report = if paid {
                                Payout::Paid
                            } else {
                                Payout::Returned {
                                    reason: "storm".to_owned(),
                                }
                            };
                            withdrawal::report_payout(&t.app, &id, report)
                                .await
                                .map(|w| {
                                    let flow = if paid { Flow::Paid } else { Flow::Returned };
                                    moved("payout", flow, &w.member_id, w.currency, w.amount)
                                })
                                .map_err(|e| ("payout", e))
                        }
                        None => Ok(("nothing", None)),
                    },
                };
                let mut tally = tally.lock().unwrap();
                match result {
                    Ok(("nothing", _)) => {}
                    Ok((kind, moved)) => {
                        tally.succeeded(kind);
                        if let Some((member, currency, flow, cents)) = moved {
                            tally.flows(&member, currency).add(flow, cents);
                        }
                    }
                    Err((kind, error)) => match refusal_code(&error) {
                        Some(code) => tally.refused(kind, code),
                        None => panic!("{kind} {n} failed: {error:?}"),
                    },
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let report = reconciliation::run(&t.app, RunOptions::full()).await.unwrap();
    assert_eq!(report.discrepancies, vec![], "{}", report.to_json());
    assert_eq!(report.accounts_checked, u64::try_from(members).unwrap());
    let tally = Arc::try_unwrap(tally).unwrap().into_inner().unwrap();
    tally.assert_plausible(&SERVICE_KINDS, &ALLOWED_REFUSALS);
    for id in ids.iter() {
        t.assert_books_balance(id).await;
        let balances = t.balances(id).await;
        for currency in Currency::ALL {
            let bucket = |b: Bucket| cents(&balances.get(currency).get(b).to_string());
            tally.assert_balances(
                id.as_str(),
                currency.code(),
                bucket(Bucket::Available),
                bucket(Bucket::Pending),
                bucket(Bucket::InTransit),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_on_the_embedded_store_keeps_every_invariant() {
    storm(Adapter::Sqlite, 6, 10, 150).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_on_the_dynamodb_emulator_keeps_every_invariant() {
    storm(Adapter::DynamoDb, 4, 4, 40).await;
}
