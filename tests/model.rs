//! Model-based test: random sequences of collect / settle / refund / withdraw / paid /
//! returned run against the real services and, step by step, against a plain reference
//! model. After every step the balances must match the model; at the end every bucket
//! equals the sum of its ledger, none is negative, and no refund total exceeds its
//! collection.

use std::collections::HashMap;

use fund_account::collection::{self, NewCollection, NewRefund};
use fund_account::error::ApiError;
use fund_account::member::MemberId;
use fund_account::money::{Amount, Currency};
use fund_account::password::PaymentPassword;
use fund_account::records::BankAccount;
use fund_account::withdrawal::{self, IdempotencyKey, Payout, WithdrawalRequest};
use fund_account_tests::fixtures::external_id;
use fund_account_tests::{test_app, Adapter, TestApp, PAYMENT_PASSWORD};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Collect {
        currency: Currency,
        cents: u32,
        delay_seconds: i64,
    },
    Advance {
        seconds: i64,
    },
    Settle,
    Refund {
        collection: usize,
        cents: u32,
    },
    Withdraw {
        currency: Currency,
        cents: u32,
    },
    Paid {
        withdrawal: usize,
    },
    Returned {
        withdrawal: usize,
    },
}

fn currency() -> impl Strategy<Value = Currency> {
    prop_oneof![Just(Currency::Usd), Just(Currency::Cny)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (currency(), 1u32..200_000, 0i64..120).prop_map(|(currency, cents, delay_seconds)| Op::Collect { currency, cents, delay_seconds }),
        1 => (1i64..120).prop_map(|seconds| Op::Advance { seconds }),
        2 => Just(Op::Settle),
        2 => (0usize..16, 1u32..100_000).prop_map(|(collection, cents)| Op::Refund { collection, cents }),
        3 => (currency(), 1u32..150_000).prop_map(|(currency, cents)| Op::Withdraw { currency, cents }),
        1 => (0usize..16).prop_map(|withdrawal| Op::Paid { withdrawal }),
        1 => (0usize..16).prop_map(|withdrawal| Op::Returned { withdrawal }),
    ]
}

fn cents(n: u32) -> Amount {
    Amount::parse_stored(&format!("{}.{:02}", n / 100, n % 100)).unwrap()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Buckets {
    available: i64,
    pending: i64,
    in_transit: i64,
}

/// The reference: integer cents, obviously right.
#[derive(Default)]
struct Model {
    balances: HashMap<Currency, Buckets>,
    /// (id, currency, amount, refunded, available_at seconds, settled)
    collections: Vec<(String, Currency, i64, i64, i64, bool)>,
    /// (id, currency, amount, status 0 processing / 1 paid / 2 returned)
    withdrawals: Vec<(fund_account::ids::WithdrawalId, Currency, i64, u8)>,
    now: i64,
}

fn fee_cents(currency: Currency) -> i64 {
    match currency {
        Currency::Usd => 1500,
        Currency::Cny => 0,
    }
}

fn to_cents(amount: Amount) -> i64 {
    let text = amount.to_string();
    let negative = text.starts_with('-');
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let value: i64 = digits.parse().unwrap();
    if negative {
        -value
    } else {
        value
    }
}

async fn apply(t: &TestApp, m: &MemberId, model: &mut Model, op: &Op, step: usize) {
    match op {
        Op::Collect {
            currency,
            cents: c,
            delay_seconds,
        } => {
            let id = format!("col-{step}");
            let available_at = fund_account_tests::fixtures::at(model.now + delay_seconds);
            collection::collect(
                &t.app,
                NewCollection {
                    collection_id: external_id(&id),
                    member_id: m.clone(),
                    currency: *currency,
                    amount: cents(*c),
                    available_at: Some(available_at),
                },
            )
            .await
            .unwrap();
            model.balances.entry(*currency).or_default().pending += i64::from(*c);
            model
                .collections
                .push((id, *currency, i64::from(*c), 0, model.now + delay_seconds, false));
        }
        Op::Advance { seconds } => {
            t.clock.advance_seconds(*seconds);
            model.now += seconds;
        }
        Op::Settle => {
            collection::settle_due(&t.app, t.app.now()).await.unwrap();
            for (_, currency, amount, refunded, due, settled) in &mut model.collections {
                if !*settled && *due <= model.now {
                    *settled = true;
                    let b = model.balances.entry(*currency).or_default();
                    b.pending -= *amount - *refunded;
                    b.available += *amount - *refunded;
                }
            }
        }
        Op::Refund { collection, cents: c } => {
            if model.collections.is_empty() {
                return;
            }
            let index = collection % model.collections.len();
            let (id, currency, amount, refunded, _, settled) = model.collections[index].clone();
            let value = i64::from(*c);
            let result = collection::refund(
                &t.app,
                NewRefund {
                    refund_id: external_id(&format!("ref-{step}")),
                    collection_id: external_id(&id),
                    amount: cents(*c),
                },
            )
            .await;
            let b = model.balances.entry(currency).or_default();
            if refunded + value > amount {
                assert!(
                    matches!(result, Err(ApiError::RefundExceedsCollection { .. })),
                    "{result:?}"
                );
            } else if settled && b.available < value {
                assert!(matches!(result, Err(ApiError::InsufficientFunds { .. })), "{result:?}");
            } else {
                result.unwrap();
                model.collections[index].3 += value;
                if settled {
                    b.available -= value
                } else {
                    b.pending -= value
                }
            }
        }
        Op::Withdraw { currency, cents: c } => {
            let value = i64::from(*c);
            let result = withdrawal::withdraw(
                &t.app,
                m,
                WithdrawalRequest {
                    key: IdempotencyKey::parse(&format!("key-{step}")).unwrap(),
                    currency: *currency,
                    amount: cents(*c),
                    password: PaymentPassword::new(PAYMENT_PASSWORD.to_owned()),
                    bank_account: BankAccount {
                        holder_name: "Li Wei".to_owned(),
                        account_number: "6222020200112233".to_owned(),
                        bank_name: "ICBC".to_owned(),
                    },
                    payout_currency: *currency,
                    quote_id: None,
                },
            )
            .await;
            let b = model.balances.entry(*currency).or_default();
            if value <= fee_cents(*currency) {
                assert!(matches!(result, Err(ApiError::AmountBelowFee { .. })), "{result:?}");
            } else if value > b.available {
                assert!(matches!(result, Err(ApiError::InsufficientFunds { .. })), "{result:?}");
            } else {
                let created = result.unwrap();
                b.available -= value;
                b.in_transit += value;
                model.withdrawals.push((created.withdrawal.id, *currency, value, 0));
            }
        }
        Op::Paid { withdrawal: w } | Op::Returned { withdrawal: w } => {
            if model.withdrawals.is_empty() {
                return;
            }
            let index = w % model.withdrawals.len();
            let (id, currency, amount, status) = model.withdrawals[index].clone();
            let paid = matches!(op, Op::Paid { .. });
            let report = if paid {
                Payout::Paid
            } else {
                Payout::Returned {
                    reason: "bank said no".to_owned(),
                }
            };
            let result = withdrawal::report_payout(&t.app, &id, report).await;
            let target = if paid { 1 } else { 2 };
            if status == 0 {
                result.unwrap();
                model.withdrawals[index].3 = target;
                let b = model.balances.entry(currency).or_default();
                b.in_transit -= amount;
                if !paid {
                    b.available += amount;
                }
            } else if status == target {
                result.unwrap();
            } else {
                assert_eq!(result.map(|_| ()), Err(ApiError::WithdrawalAlreadySettled));
            }
        }
    }
}

async fn check_model(t: &TestApp, m: &MemberId, model: &Model, after: &Op) {
    let balances = t.balances(m).await;
    for currency in Currency::ALL {
        let b = balances.get(currency);
        let actual = Buckets {
            available: to_cents(b.available),
            pending: to_cents(b.pending),
            in_transit: to_cents(b.in_transit),
        };
        let expected = model.balances.get(&currency).copied().unwrap_or_default();
        assert_eq!(actual, expected, "{currency} after {after:?}");
    }
}

async fn run_sequence(adapter: Adapter, ops: Vec<Op>) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-1").await;
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        apply(&t, &m, &mut model, op, step).await;
        check_model(&t, &m, &model, op).await;
    }
    t.assert_books_balance(&m).await;
    for (id, _, amount, refunded, _, _) in &model.collections {
        let stored = t.stored_collection(id).await;
        assert_eq!(
            (to_cents(stored.amount), to_cents(stored.refunded)),
            (*amount, *refunded)
        );
        assert!(stored.refunded <= stored.amount);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, .. ProptestConfig::default() })]
    #[test]
    fn random_operations_match_the_model_on_sqlite(ops in proptest::collection::vec(op(), 1..40)) {
        runtime().block_on(run_sequence(Adapter::Sqlite, ops));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, max_shrink_iters: 50, .. ProptestConfig::default() })]
    #[test]
    fn random_operations_match_the_model_on_dynamodb(ops in proptest::collection::vec(op(), 1..30)) {
        runtime().block_on(run_sequence(Adapter::DynamoDb, ops));
    }
}
