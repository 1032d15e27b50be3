//! A big seller on a sale day, in the simulator (`support/sim.rs`): one seller takes 2,000
//! collections a second for 60 simulated seconds, while settlement runs every second, the
//! seller withdraws (now and then everything available) and buyers are refunded.
//!
//! The simulated service is DynamoDB's rules without its faults: every store call takes a
//! millisecond, a transaction in flight cancels another on the same item, and an item
//! written more than 1,000 write units in a simulated second is throttled — so a design
//! that funnelled one seller's collections through one item would fail here (a collection
//! costs two units of an item's 1,000: at most 500 a second). After every simulated
//! millisecond the books are checked against what the landed commits wrote; at the end
//! every request must have been answered without a throttle or a give-up reaching the
//! client, and the reconciliation must find nothing.
//!
//! `HOT_SELLER_SECONDS=<n>` and `HOT_SELLER_RATE=<n>` change the load (default 60 and
//! 2,000); `HOT_SELLER_SEED=<n>` the seed. The figures print with `--nocapture`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fund_account::app::{App, KnownMembers, Settings};
use fund_account::clock::{Clock, Timestamp};
use fund_account::collection::{self, NewCollection, NewRefund};
use fund_account::error::ApiError;
use fund_account::ids::ExternalId;
use fund_account::ledger::{Balance, Bucket};
use fund_account::member::{MemberId, MemberStatus};
use fund_account::money::{Amount, Currency};
use fund_account::reconciliation::{self, RunOptions};
use fund_account::sms::{SmsError, SmsSender};
use fund_account::store::{Store, Write};
use fund_account::withdrawal;
use fund_account_tests::fixtures::withdrawal_request;
use fund_account_tests::sim::{cheap_hash, Faults, OpId, Sim, SimRng};
use fund_account_tests::{T0, TEST_CODE_SECRET};

const PASSWORD: &str = "Vault-Key-2026!";
const SELLER: &str = "hot-seller";

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v}")))
}

struct NoSms;

#[async_trait::async_trait]
impl SmsSender for NoSms {
    async fn send(&self, _: &fund_account::phone::PhoneNumber, _: &str, _: Timestamp) -> Result<(), SmsError> {
        Ok(())
    }
}

fn cents(cents: u64) -> Amount {
    Amount::parse_stored(&format!("{}.{:02}", cents / 100, cents % 100)).unwrap()
}

/// What each kind of request came to.
#[derive(Debug, Default)]
struct Answers {
    by_outcome: BTreeMap<(&'static str, String), u64>,
    /// Answers a client must never see under load: a throttle (503) or a give-up (409/503).
    refused_by_the_service: Vec<String>,
    collected: Vec<(String, u64)>,
}

impl Answers {
    fn record<T>(&mut self, kind: &'static str, result: &Result<T, ApiError>) {
        let outcome = match result {
            Ok(_) => "ok".to_owned(),
            Err(error) => error.code().to_owned(),
        };
        if matches!(
            result,
            Err(ApiError::ServiceUnavailable | ApiError::Contention | ApiError::Internal)
        ) {
            self.refused_by_the_service.push(format!("{kind}: {outcome}"));
        }
        *self.by_outcome.entry((kind, outcome)).or_insert(0) += 1;
    }
}

struct Run {
    sim: Arc<Sim>,
    seller: MemberId,
    /// One fleet of warm functions: what they have learnt (the seller exists) is shared.
    known_members: Arc<KnownMembers>,
    answers: Arc<Mutex<Answers>>,
}

impl Run {
    fn app(&self, store: Arc<dyn Store>) -> App {
        let settings = Settings::new(TEST_CODE_SECRET.to_vec()).unwrap();
        let mut app = App::new(
            store,
            Arc::new(NoSms),
            Arc::clone(&self.sim.clock) as Arc<dyn Clock>,
            settings,
        );
        app.known_members = Arc::clone(&self.known_members);
        app
    }

    fn app_for(&self, op: OpId) -> App {
        self.app(self.sim.store_for(op))
    }

    fn collect(&self, id: String, amount: u64, available_at: Timestamp) {
        let (seller, answers) = (self.seller.clone(), Arc::clone(&self.answers));
        self.sim.spawn(|op| {
            let app = self.app_for(op);
            async move {
                let request = NewCollection {
                    collection_id: ExternalId::parse(&id).unwrap(),
                    member_id: seller,
                    currency: Currency::Usd,
                    amount: cents(amount),
                    available_at: Some(available_at),
                };
                let result = collection::collect(&app, request).await;
                let mut answers = answers.lock().unwrap();
                answers.record("collection", &result);
                if result.is_ok() {
                    answers.collected.push((id, amount));
                }
            }
        });
    }
}

/// The busiest second of one item: (writes, item, second).
type Hottest = Option<(u32, String, i64)>;

#[derive(Debug)]
struct Figures {
    collections: u64,
    seconds: u64,
    steps: u64,
    wall: Duration,
    throttled: u64,
    conflicts: u64,
    outcomes: BTreeMap<(&'static str, String), u64>,
    hottest: Vec<(&'static str, Hottest)>,
}

/// The books after every millisecond, from the commits that landed: each ledger
/// transaction sums to zero with the platform's legs, and the seller's balance — the
/// balance item and its pending shards, read as the account reads them — is, bucket by
/// bucket, the sum of every entry written, and never below zero.
struct Books {
    entries: Balance,
}

impl Books {
    async fn check(&mut self, run: &Run) -> Result<(), String> {
        for (_, writes) in run.sim.take_applied() {
            let mut sums: BTreeMap<String, Amount> = BTreeMap::new();
            for write in &writes {
                match write {
                    Write::AppendLedger(entry) => {
                        let transaction = entry.transaction.clone().unwrap_or_default();
                        let sum = sums.entry(transaction).or_insert(Amount::ZERO);
                        *sum = sum.checked_add(entry.amount).unwrap();
                        let bucket = match entry.bucket {
                            Bucket::Available => &mut self.entries.available,
                            Bucket::Pending => &mut self.entries.pending,
                            Bucket::InTransit => &mut self.entries.in_transit,
                        };
                        *bucket = bucket.checked_add(entry.amount).unwrap();
                    }
                    Write::AppendPlatformEntry(entry) => {
                        let sum = sums.entry(entry.transaction.clone()).or_insert(Amount::ZERO);
                        *sum = sum.checked_add(entry.amount).unwrap();
                    }
                    _ => {}
                }
            }
            if let Some((transaction, sum)) = sums.iter().find(|(_, sum)| !sum.is_zero()) {
                return Err(format!("transaction {transaction} sums to {sum}"));
            }
        }
        let balance = *run.sim.table.balances(&run.seller).await.unwrap().get(Currency::Usd);
        if balance != self.entries {
            return Err(format!(
                "balance {balance:?}, but the entries sum to {:?}",
                self.entries
            ));
        }
        if Bucket::ALL.iter().any(|b| balance.get(*b).is_negative()) {
            return Err(format!("a bucket below zero: {balance:?}"));
        }
        Ok(())
    }
}

async fn simulate(seed: u64, seconds: u64, rate: u64) -> Result<Figures, String> {
    let started = Instant::now();
    let sim = Sim::new(seed, Faults::NONE, Timestamp::from_unix_millis(T0));
    let seller = MemberId::parse(SELLER).unwrap();
    let mut member = fund_account_tests::fixtures::member(SELLER, 1);
    member.status = MemberStatus::Active;
    member.payment_password_hash = Some(cheap_hash(PASSWORD));
    member.code_sends.clear();
    sim.add_member(member).await;
    let run = Run {
        sim: Arc::clone(&sim),
        seller: seller.clone(),
        known_members: Arc::default(),
        answers: Arc::default(),
    };
    let mut books = Books {
        entries: Balance::default(),
    };
    let mut rng = SimRng::new(seed);
    let mut next_collection = 0_u64;
    let mut next_refund = 0_u64;
    let mut next_key = 0_u64;
    // Whole collections a second, spread evenly over the milliseconds.
    let per_ms = |ms: u64| rate * (ms + 1) / 1_000 - rate * ms / 1_000;
    let ticks = seconds * 1_000;
    let mut tick = 0;
    loop {
        sim.quiescent().await;
        books
            .check(&run)
            .await
            .map_err(|e| format!("seed {seed}, ms {tick}: {e}"))?;
        if tick >= ticks && sim.live() == 0 {
            break;
        }
        let now = sim.clock.now();
        if tick < ticks {
            for _ in 0..per_ms(tick % 1_000) {
                next_collection += 1;
                // Orders of $1 to $500, available after 1 to 5 seconds.
                let available_at = now.plus_millis(1_000 + rng.below(4_000) as i64);
                run.collect(
                    format!("order-{next_collection}"),
                    100 + rng.below(49_900),
                    available_at,
                );
            }
            // Buyers' refunds: 40 a second, of some order taken so far, any part of it
            // (more than is left, now and then: refused).
            if rng.chance(40) && next_collection > 0 {
                next_refund += 1;
                let order = format!("order-{}", 1 + rng.below(next_collection));
                let (id, amount) = (format!("refund-{next_refund}"), 1 + rng.below(30_000));
                let answers = Arc::clone(&run.answers);
                let app = |op| run.app_for(op);
                sim.spawn(move |op| {
                    let app = app(op);
                    async move {
                        let request = NewRefund {
                            refund_id: ExternalId::parse(&id).unwrap(),
                            collection_id: ExternalId::parse(&order).unwrap(),
                            amount: cents(amount),
                        };
                        let result = collection::refund(&app, request).await;
                        answers.lock().unwrap().record("refund", &result);
                    }
                });
            }
            // The seller withdraws 5 times a second: any part, or all that is available
            // at the moment it asks (which a withdrawal a moment earlier may make too much).
            if rng.chance(5) {
                next_key += 1;
                let available = sim.table.balances(&seller).await.unwrap().usd.available;
                let amount = if rng.chance(300) || available.is_zero() {
                    available.max(cents(1))
                } else {
                    cents(1 + rng.below(200_000)).min(available)
                };
                let key = format!("withdrawal-{next_key}");
                let (seller, answers) = (seller.clone(), Arc::clone(&run.answers));
                let app = |op| run.app_for(op);
                sim.spawn(move |op| {
                    let app = app(op);
                    async move {
                        let request = withdrawal_request(&key, Currency::Usd, &amount.to_string(), PASSWORD);
                        let result = withdrawal::withdraw(&app, &seller, request).await;
                        answers.lock().unwrap().record("withdrawal", &result);
                    }
                });
            }
        }
        // The settlement schedule: every simulated second, and until nothing is left due.
        if tick % 1_000 == 0 {
            if std::env::var_os("HOT_SELLER_PROGRESS").is_some() {
                let (throttled, conflicts) = sim.pressure();
                eprintln!(
                    "{} s: {} live, {} steps, {conflicts} conflicts, {throttled} throttled, {:.1} s; hottest {:?}",
                    tick / 1_000,
                    sim.live(),
                    sim.step(),
                    started.elapsed().as_secs_f64(),
                    sim.hottest("")
                );
            }
            let answers = Arc::clone(&run.answers);
            let app = |op| run.app_for(op);
            sim.spawn(move |op| {
                let app = app(op);
                async move {
                    let result = collection::settle_due(&app, app.now()).await;
                    answers.lock().unwrap().record("settlement run", &result);
                }
            });
        }
        sim.quiescent().await;
        // Every parked call moves one step: a store call takes a millisecond (a
        // transaction two: held, then applied).
        let mut parked = sim.parked();
        for n in (1..parked.len()).rev() {
            parked.swap(n, rng.below(n as u64 + 1) as usize);
        }
        for op in parked {
            sim.advance(op);
        }
        sim.clock.advance_millis(1);
        tick += 1;
        if tick > ticks + 600_000 {
            return Err(format!("seed {seed}: requests still running 10 minutes after the load"));
        }
    }

    // Everything that came due is settled, every order's money is where its records say,
    // and the reconciliation of the final state finds nothing.
    let progress = |what: &str| {
        if std::env::var_os("HOT_SELLER_PROGRESS").is_some() {
            eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
        }
    };
    progress("load done");
    sim.settle_indexes();
    sim.clock.advance_seconds(reconciliation::BOOKS_SETTLE_SECONDS + 60);
    let app = run.app(Arc::new(sim.table.clone()));
    collection::settle_due(&app, app.now())
        .await
        .map_err(|e| e.to_string())?;
    progress("settled");
    let report = reconciliation::run(
        &app,
        RunOptions {
            settle: false,
            recheck_after: Duration::ZERO,
            ..RunOptions::full()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    progress("reconciled");
    if !report.discrepancies.is_empty() || report.accounts_busy != 0 {
        return Err(format!(
            "seed {seed}: the reconciliation found {:?} ({} busy)",
            report.discrepancies, report.accounts_busy
        ));
    }
    let mut total = *sim.table.balances(&seller).await.unwrap().get(Currency::Usd);
    total.available = total.available.checked_add(total.pending).unwrap();
    let mut sum = total.available.checked_add(total.in_transit).unwrap();
    for account in fund_account::exchange::platform_balances(&app).await.unwrap() {
        if account.currency == Currency::Usd {
            sum = sum.checked_add(account.balance).unwrap();
        }
    }
    if !sum.is_zero() {
        return Err(format!(
            "seed {seed}: the seller's and the platform's accounts sum to {sum}"
        ));
    }
    let answers = std::mem::take(&mut *run.answers.lock().unwrap());
    if !answers.refused_by_the_service.is_empty() {
        return Err(format!(
            "seed {seed}: {} requests refused by the service, e.g. {:?}",
            answers.refused_by_the_service.len(),
            &answers.refused_by_the_service[..answers.refused_by_the_service.len().min(5)]
        ));
    }
    // Every order answered is in the books once, for its amount.
    for (id, amount) in &answers.collected {
        let stored = sim
            .table
            .collection(&ExternalId::parse(id).unwrap())
            .await
            .unwrap()
            .ok_or(format!("collection {id} was answered but is not stored"))?;
        if stored.amount != cents(*amount) {
            return Err(format!(
                "collection {id}: stored {}, answered {amount} cents",
                stored.amount
            ));
        }
    }
    let (throttled, conflicts) = sim.pressure();
    let balance_item = format!("balance/{SELLER}/USD");
    let hottest = vec![
        ("any item", sim.hottest("")),
        (
            "the balance item",
            sim.writes_per_second(&balance_item)
                .into_iter()
                .filter(|((item, _), _)| *item == balance_item)
                .map(|((item, second), writes)| (writes, item, second))
                .max(),
        ),
        ("a pending shard", sim.hottest(&format!("{balance_item}#p"))),
        ("the member's profile", sim.hottest(&format!("member/{SELLER}"))),
        ("a platform shard", sim.hottest("platform/")),
    ];
    Ok(Figures {
        collections: answers.collected.len() as u64,
        seconds,
        steps: sim.step(),
        wall: started.elapsed(),
        throttled,
        conflicts,
        outcomes: answers.by_outcome,
        hottest,
    })
}

/// The load: 60 simulated seconds of 2,000 collections a second on one seller,
/// with settlement, withdrawals and refunds. Not one throttle anywhere in the service
/// (so none can reach a client), every invariant after every millisecond, and a clean
/// reconciliation.
#[test]
fn one_seller_takes_2000_collections_a_second_for_a_minute() {
    let seed = env_u64("HOT_SELLER_SEED").unwrap_or(1);
    let seconds = env_u64("HOT_SELLER_SECONDS").unwrap_or(60);
    let rate = env_u64("HOT_SELLER_RATE").unwrap_or(2_000);
    let figures = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(simulate(seed, seconds, rate))
        .unwrap_or_else(|message| panic!("{message}"));
    println!(
        "hot seller, seed {seed}: {} collections in {} simulated s ({}/s), {} steps, {} transaction conflicts (retried), {} throttled, in {:.1} s",
        figures.collections,
        figures.seconds,
        figures.collections / figures.seconds.max(1),
        figures.steps,
        figures.conflicts,
        figures.throttled,
        figures.wall.as_secs_f64()
    );
    for ((kind, outcome), count) in &figures.outcomes {
        println!("  {kind}: {outcome} × {count}");
    }
    for (what, hottest) in &figures.hottest {
        match hottest {
            Some((writes, item, _)) => println!(
                "  busiest second of {what}: {writes} writes ({} write units of 1,000) to {item}",
                writes * 2
            ),
            None => println!("  {what}: not written"),
        }
    }
    assert_eq!(figures.throttled, 0, "no write throttled anywhere in the service");
    assert!(
        figures.collections >= seconds * rate * 99 / 100,
        "{} collections of {}",
        figures.collections,
        seconds * rate
    );
}
