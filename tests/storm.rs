//! Storms: thousands of mixed operations from many concurrent clients — through the
//! local gateway over HTTP, and (smaller) through the services on the DynamoDB emulator —
//! then every invariant is checked and the reconciliation must find nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fund_account::clock::SystemClock;
use fund_account::collection::{self, NewCollection, NewRefund};
use fund_account::error::ApiError;
use fund_account::member::MemberId;
use fund_account::money::{Amount, Currency};
use fund_account::password::PaymentPassword;
use fund_account::reconciliation::{self, RunOptions};
use fund_account::records::BankAccount;
use fund_account::withdrawal::{self, IdempotencyKey, Payout, WithdrawalRequest};
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

const HTTP_MEMBERS: usize = 8;
const HTTP_CLIENTS: u64 = 12;
const HTTP_OPS_PER_CLIENT: u64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_through_the_local_gateway_keeps_every_invariant() {
    let gw = Arc::new(RunningGateway::start(None, Arc::new(SystemClock)).await);
    let client = Client::new();
    let mut tokens = Vec::new();
    for i in 0..HTTP_MEMBERS {
        tokens.push(gw.active_member_token(&client, &format!("storm-{i}")).await);
    }
    let tokens = Arc::new(tokens);
    let counter = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for c in 0..HTTP_CLIENTS {
        let (gw, tokens, counter, client) = (
            Arc::clone(&gw),
            Arc::clone(&tokens),
            Arc::clone(&counter),
            client.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (c + 1));
            let mut withdrawals: Vec<String> = Vec::new();
            for _ in 0..HTTP_OPS_PER_CLIENT {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let m = usize::try_from(rng.below(HTTP_MEMBERS as u64)).unwrap();
                let member = format!("storm-{m}");
                let key = gw.internal_key.clone();
                let (status, what) = match rng.below(20) {
                    0..=7 => {
                        let body = json!({ "collection_id": format!("col-{n}"), "member_id": member, "currency": rng.currency(), "amount": rng.amount(50_000) });
                        let r = client.post(gw.url("/internal/collections")).header("x-internal-key", key).json(&body).send().await.unwrap();
                        (r.status().as_u16(), "collection")
                    }
                    8..=9 => {
                        let target = rng.below(n.max(1));
                        let body = json!({ "refund_id": format!("ref-{n}"), "collection_id": format!("col-{target}"), "amount": rng.amount(10_000) });
                        let r = client.post(gw.url("/internal/refunds")).header("x-internal-key", key).json(&body).send().await.unwrap();
                        (r.status().as_u16(), "refund")
                    }
                    10..=11 => {
                        let r = client.post(gw.url("/dev/reconcile")).send().await.unwrap();
                        (r.status().as_u16(), "reconcile")
                    }
                    12..=13 => {
                        let body = json!({
                            "currency": rng.currency(), "amount": rng.amount(20_000), "payment_password": PAYMENT_PASSWORD,
                            "bank_account": { "holder_name": "Storm", "account_number": "6222020200112233", "bank_name": "ICBC" },
                        });
                        let r = client.post(gw.url("/v1/withdrawals")).bearer_auth(&tokens[m]).header("idempotency-key", format!("k-{n}")).json(&body).send().await.unwrap();
                        let status = r.status().as_u16();
                        if status == 201 {
                            let created: Value = r.json().await.unwrap();
                            withdrawals.push(created["id"].as_str().unwrap().to_owned());
                        }
                        (status, "withdrawal")
                    }
                    14 if !withdrawals.is_empty() => {
                        let id = withdrawals.remove(usize::try_from(rng.below(withdrawals.len() as u64)).unwrap());
                        let outcome = if rng.below(2) == 0 { "paid" } else { "returned" };
                        let r = client
                            .post(gw.url(&format!("/internal/withdrawals/{id}/{outcome}")))
                            .header("x-internal-key", key)
                            .json(&if outcome == "paid" { json!({}) } else { json!({ "reason": "storm" }) })
                            .send()
                            .await
                            .unwrap();
                        (r.status().as_u16(), "payout")
                    }
                    _ => {
                        let path = ["/v1/account", "/v1/account/transactions?limit=5", "/v1/withdrawals?limit=5"][usize::try_from(rng.below(3)).unwrap()];
                        let r = client.get(gw.url(path)).bearer_auth(&tokens[m]).send().await.unwrap();
                        (r.status().as_u16(), "read")
                    }
                };
                let allowed: &[u16] = match what {
                    "collection" => &[201],
                    "refund" => &[201, 404, 422],
                    "withdrawal" => &[201, 422],
                    "payout" | "read" | "reconcile" => &[200],
                    _ => &[],
                };
                assert!(allowed.contains(&status), "{what} answered {status}");
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
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
    assert_eq!(report["accounts_checked"], u64::try_from(HTTP_MEMBERS).unwrap());
    assert_eq!(counter.load(Ordering::SeqCst), HTTP_CLIENTS * HTTP_OPS_PER_CLIENT);
    for i in 0..HTTP_MEMBERS {
        let id = MemberId::parse(&format!("storm-{i}")).unwrap();
        let t = TestApp {
            app: gw.gateway.app.clone(),
            clock: Arc::new(fund_account::clock::ManualClock::starting_at(gw.gateway.app.now())),
            outbox: fund_account_tests::sqlite_store().outbox(),
        };
        t.assert_books_balance(&id).await;
    }
}

fn bank() -> BankAccount {
    BankAccount {
        holder_name: "Storm".to_owned(),
        account_number: "6222020200112233".to_owned(),
        bank_name: "ICBC".to_owned(),
    }
}

/// The same storm through the services, for a store adapter.
async fn storm(adapter: Adapter, members: usize, clients: u64, ops: u64) {
    let t = Arc::new(test_app(adapter).await);
    let mut ids = Vec::new();
    for i in 0..members {
        ids.push(t.active_member(&format!("storm-{i}")).await);
    }
    let ids = Arc::new(ids);
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (t, ids, counter) = (Arc::clone(&t), Arc::clone(&ids), Arc::clone(&counter));
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ (c + 1));
            let mut withdrawals = Vec::new();
            for _ in 0..ops {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let m = &ids[usize::try_from(rng.below(ids.len() as u64)).unwrap()];
                let currency = if rng.below(2) == 0 {
                    Currency::Usd
                } else {
                    Currency::Cny
                };
                let amount = Amount::parse_request(&rng.amount(20_000)).unwrap();
                let result: Result<(), ApiError> = match rng.below(10) {
                    0..=3 => collection::collect(
                        &t.app,
                        NewCollection {
                            collection_id: format!("col-{n}"),
                            member_id: m.clone(),
                            currency,
                            amount,
                            available_at: None,
                        },
                    )
                    .await
                    .map(|_| ()),
                    4 => collection::refund(
                        &t.app,
                        NewRefund {
                            refund_id: format!("ref-{n}"),
                            collection_id: format!("col-{}", rng.below(n.max(1))),
                            amount,
                        },
                    )
                    .await
                    .map(|_| ()),
                    5..=6 => collection::settle_due(&t.app, t.app.now()).await.map(|_| ()),
                    7..=8 => {
                        let request = WithdrawalRequest {
                            key: IdempotencyKey::parse(&format!("k-{n}")).unwrap(),
                            currency,
                            amount,
                            password: PaymentPassword::new(PAYMENT_PASSWORD.to_owned()),
                            bank_account: bank(),
                        };
                        withdrawal::withdraw(&t.app, m, request)
                            .await
                            .map(|created| withdrawals.push(created.withdrawal_id))
                    }
                    _ => match withdrawals.pop() {
                        Some(id) => {
                            let report = if rng.below(2) == 0 {
                                Payout::Paid
                            } else {
                                Payout::Returned {
                                    reason: "storm".to_owned(),
                                }
                            };
                            withdrawal::report_payout(&t.app, &id, report).await.map(|_| ())
                        }
                        None => Ok(()),
                    },
                };
                match result {
                    Ok(())
                    | Err(
                        ApiError::CollectionNotFound
                        | ApiError::InsufficientFunds { .. }
                        | ApiError::RefundExceedsCollection { .. }
                        | ApiError::AmountBelowFee { .. },
                    ) => {}
                    Err(other) => panic!("operation {n} failed: {other:?}"),
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
    for id in ids.iter() {
        t.assert_books_balance(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_on_the_embedded_store_keeps_every_invariant() {
    storm(Adapter::Sqlite, 6, 10, 150).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_on_the_dynamodb_emulator_keeps_every_invariant() {
    storm(Adapter::DynamoDb, 4, 6, 50).await;
}
