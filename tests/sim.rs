//! The simulator (see `support/sim.rs`): many members' collections, settlements, refunds,
//! withdrawals (right and wrong passwords), payout reports, code sends and confirmations,
//! interleaved call by call by a seed, against a store that behaves like DynamoDB at its
//! worst — conflicts, throttling, lost answers, fresh retries, lagging indexes, crashes.
//! After every step every invariant of the books and of the limits is checked; at the end
//! the reconciliation must find nothing.
//!
//! `SIM_SEED=<n>` replays one seed (printing its trace); `SIM_SEEDS=<n>` runs n seeds
//! (default 1,000); `SIM_FIRST_SEED=<n>` starts elsewhere. A failure prints its seed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fund_account::app::{App, Settings};
use fund_account::clock::{Clock, Timestamp};
use fund_account::collection::{self, NewCollection, NewRefund};
use fund_account::error::ApiError;
use fund_account::ids::{ExternalId, WithdrawalId};
use fund_account::ledger::{Bucket, EntryType, LedgerEntry};
use fund_account::member::{MemberId, MemberStatus, PhcHash};
use fund_account::money::{Amount, Currency};
use fund_account::phone::PhoneNumber;
use fund_account::reconciliation::{self, RunOptions};
use fund_account::records::{CollectionStatus, WithdrawalStatus};
use fund_account::routes::{self, Route};
use fund_account::sms::{SmsError, SmsSender};
use fund_account::store::{Expect, PageRequest, Store, StoreError, Write};
use fund_account::verification::{
    SmsCode, MAX_ATTEMPTS_PER_CODE, MAX_SENDS_PER_WINDOW, RESEND_COOLDOWN_SECONDS, SEND_WINDOW_SECONDS,
};
use fund_account::withdrawal::{self, Payout, MAX_PASSWORD_ATTEMPTS};
use fund_account_tests::sim::{Faults, OpId, Sim, SimRng, Step};
use fund_account_tests::{T0, TEST_CODE_SECRET};

const PASSWORD: &str = "Vault-Key-2026!";

/// One client request; a retry is the same request again.
#[derive(Debug, Clone)]
enum Request {
    Collect {
        id: String,
        member: usize,
        currency: Currency,
        cents: i64,
        available_at: Timestamp,
    },
    Refund {
        id: String,
        collection: String,
        cents: i64,
    },
    Settle,
    Withdraw {
        member: usize,
        key: String,
        currency: Currency,
        cents: i64,
        right_password: bool,
    },
    Paid {
        id: String,
    },
    Returned {
        id: String,
    },
    SendCode {
        member: usize,
    },
    ConfirmCode {
        member: usize,
        code: String,
    },
}

/// What the client got: an HTTP status and body; `None` if the function crashed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn of<T>(result: Result<T, ApiError>, body: impl FnOnce(T) -> String) -> Answer {
        match result {
            Ok(value) => Answer {
                status: 200,
                body: body(value),
            },
            Err(error) => Answer {
                status: error.status().as_u16(),
                body: error.code().to_owned(),
            },
        }
    }

    fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The client cannot know whether it happened: it may retry.
    fn ambiguous(&self) -> bool {
        self.status == 503
    }
}

/// SMS as the simulated phones receive them.
#[derive(Default)]
struct Phones {
    sent: Mutex<Vec<(String, String)>>,
}

#[async_trait::async_trait]
impl SmsSender for Phones {
    async fn send(&self, phone: &PhoneNumber, message: &str, _now: Timestamp) -> Result<(), SmsError> {
        let mut sent = self.sent.lock().unwrap();
        sent.push((phone.e164().to_owned(), message.to_owned()));
        Ok(())
    }
}

impl Phones {
    /// The newest code sent to `phone`, if any.
    fn last_code(&self, phone: &str) -> Option<String> {
        let sent = self.sent.lock().unwrap();
        sent.iter().rev().find(|(to, _)| to == phone).and_then(|(_, text)| {
            text.split(|c: char| !c.is_ascii_digit())
                .find(|run| run.len() == 6)
                .map(str::to_owned)
        })
    }
}

#[derive(Default)]
struct Journal {
    /// Every request started, with its answer once it came (`Some(None)`: crashed).
    entries: BTreeMap<OpId, (Request, Option<Option<Answer>>)>,
}

/// What a seed's run came to.
struct Outcome {
    refused: BTreeMap<String, u64>,
    granted: BTreeMap<&'static str, u64>,
    steps: u64,
    requests: usize,
    throttled: u64,
    conflicts: u64,
}

/// A seller in the simulation: active with money, or waiting to confirm a code.
struct Seller {
    id: MemberId,
    phone: String,
}

struct World {
    sim: Arc<Sim>,
    rng: SimRng,
    phones: Arc<Phones>,
    journal: Arc<Mutex<Journal>>,
    active: Vec<Seller>,
    pending: Vec<Seller>,
    /// Requests to (re)send: retries of ambiguous answers.
    retries: Vec<Request>,
    next_id: u64,
    /// What the limits' invariants have counted so far, from applied commits.
    limits: Limits,
    /// Requests whose function runs slowly (see the scheduler's pick).
    slow: BTreeSet<OpId>,
    /// The first successful body each Idempotency-Key answered: every later one must be it.
    first_bodies: BTreeMap<String, String>,
    trace: Vec<String>,
    /// Keep the trace (a replayed seed prints it).
    tracing: bool,
}

#[derive(Default)]
struct Limits {
    /// Wrong-password commits per member since its last lock or right password.
    wrong_passwords: BTreeMap<MemberId, u32>,
    /// Code checks (wrong tries and the activation) per member since its last code.
    code_checks: BTreeMap<MemberId, u32>,
    /// When each member's codes were sent (commits that landed).
    sends: BTreeMap<MemberId, Vec<Timestamp>>,
    /// The lock each member's withdrawals are under, as last written.
    locked_until: BTreeMap<MemberId, Timestamp>,
}

/// An argon2id hash at the lowest parameters: withdrawals verify it in microseconds, so
/// thousands of seeds fit in the test command (the cost parameters are not under test here).
fn cheap_hash(password: &str) -> PhcHash {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(8, 1, 1, None).unwrap();
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"simulation-salt!").unwrap();
    PhcHash::new(hasher.hash_password(password.as_bytes(), &salt).unwrap().to_string())
}

/// An app on the simulation's clock, over `store` (a request's view of the service, or
/// the table itself for setting up and the final reconciliation).
fn sim_app(sim: &Sim, store: Arc<dyn Store>, sms: Arc<dyn SmsSender>) -> App {
    let settings = Settings::new(TEST_CODE_SECRET.to_vec()).unwrap();
    App::new(store, sms, Arc::clone(&sim.clock) as Arc<dyn Clock>, settings)
}

fn cents_to_amount(cents: i64) -> Amount {
    Amount::parse_stored(&format!("{}.{:02}", cents / 100, cents % 100)).unwrap()
}

impl World {
    async fn new(seed: u64, tracing: bool) -> World {
        let mut rng = SimRng::new(seed);
        let faults = Faults::drawn(&mut rng);
        let sim = Sim::new(seed, faults, Timestamp::from_unix_millis(T0));
        let hash = cheap_hash(PASSWORD);
        let now = sim.clock.now();
        let mut active = Vec::new();
        let mut pending = Vec::new();
        for n in 0..(2 + rng.below(2)) {
            active.push(Seller {
                id: MemberId::parse(&format!("seller-{n}")).unwrap(),
                phone: format!("+861380000{n:04}"),
            });
        }
        for n in 0..3 {
            pending.push(Seller {
                id: MemberId::parse(&format!("new-seller-{n}")).unwrap(),
                phone: format!("+861390000{n:04}"),
            });
        }
        for (seller, status) in active
            .iter()
            .map(|s| (s, MemberStatus::Active))
            .chain(pending.iter().map(|s| (s, MemberStatus::PendingVerification)))
        {
            let active = status == MemberStatus::Active;
            // The fixture member (T0, version 1, no sends), with this seller's phone and
            // password in force or waiting for its code.
            let mut member = fund_account_tests::fixtures::member(seller.id.as_str(), 1);
            member.phone = Some(PhoneNumber::parse(&seller.phone).unwrap());
            member.status = status;
            member.code_sends.clear();
            member.payment_password_hash = active.then(|| hash.clone());
            member.pending_password_hash = (!active).then(|| hash.clone());
            sim.table
                .commit(vec![
                    Write::PutMember {
                        member,
                        expect: Expect::Absent,
                    },
                    Write::IndexMember {
                        member_id: seller.id.clone(),
                    },
                ])
                .await
                .unwrap();
        }
        // Every seller starts with settled money in both currencies, collected and settled
        // the way any other is (before the clock starts).
        let journal = Arc::new(Mutex::new(Journal::default()));
        let setup = sim_app(&sim, Arc::new(sim.table.clone()), Arc::new(Phones::default()));
        for (n, seller) in active.iter().enumerate() {
            for currency in Currency::ALL {
                let request = Request::Collect {
                    id: format!("opening-{n}-{}", currency.code()),
                    member: n,
                    currency,
                    cents: 50_000 + rng.below(200_000) as i64,
                    available_at: now,
                };
                let Request::Collect { id, cents, .. } = &request else {
                    unreachable!()
                };
                let new = NewCollection {
                    collection_id: ExternalId::parse(id).unwrap(),
                    member_id: seller.id.clone(),
                    currency,
                    amount: cents_to_amount(*cents),
                    available_at: Some(now),
                };
                collection::collect(&setup, new).await.unwrap();
                let answer = Answer {
                    status: 200,
                    body: cents_to_amount(*cents).to_string(),
                };
                let op = u64::MAX - journal.lock().unwrap().entries.len() as u64;
                journal
                    .lock()
                    .unwrap()
                    .entries
                    .insert(op, (request, Some(Some(answer))));
            }
        }
        collection::settle_due(&setup, now).await.unwrap();
        World {
            sim,
            rng,
            phones: Arc::new(Phones::default()),
            journal,
            active,
            pending,
            retries: Vec::new(),
            next_id: 0,
            limits: Limits::default(),
            first_bodies: BTreeMap::new(),
            slow: BTreeSet::new(),
            trace: Vec::new(),
            tracing,
        }
    }

    fn app_for(&self, op: OpId) -> Arc<App> {
        Arc::new(sim_app(
            &self.sim,
            self.sim.store_for(op),
            Arc::clone(&self.phones) as Arc<dyn SmsSender>,
        ))
    }

    fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}", self.next_id)
    }

    /// Requests answered with success so far, of one kind.
    fn succeeded<T>(&self, pick: impl Fn(&Request, &Answer) -> Option<T>) -> Vec<T> {
        let journal = self.journal.lock().unwrap();
        journal
            .entries
            .values()
            .filter_map(|(request, answer)| match answer {
                Some(Some(answer)) if answer.succeeded() => pick(request, answer),
                _ => None,
            })
            .collect()
    }

    /// A new request, drawn from what has happened so far.
    fn draw_request(&mut self) -> Request {
        let now = self.sim.clock.now();
        loop {
            let roll = self.rng.below(100);
            let request = match roll {
                0..=21 => Request::Collect {
                    id: self.fresh_id("ord"),
                    member: self.rng.below(self.active.len() as u64) as usize,
                    currency: *self.rng.pick(&Currency::ALL),
                    cents: 1 + self.rng.below(50_000) as i64,
                    available_at: now.plus_seconds(self.rng.below(120) as i64),
                },
                22..=30 => {
                    let collections = self.succeeded(|r, _| match r {
                        Request::Collect { id, cents, .. } => Some((id.clone(), *cents)),
                        _ => None,
                    });
                    if collections.is_empty() {
                        continue;
                    }
                    let (collection, cents) = self.rng.pick(&collections).clone();
                    Request::Refund {
                        id: self.fresh_id("rfd"),
                        collection,
                        cents: 1 + self.rng.below(cents as u64) as i64,
                    }
                }
                31..=37 => Request::Settle,
                38..=59 => Request::Withdraw {
                    member: self.rng.below(self.active.len() as u64) as usize,
                    key: self.fresh_id("key"),
                    currency: *self.rng.pick(&Currency::ALL),
                    // Mostly within reach of what the seller has, sometimes not.
                    cents: 1 + self.rng.below(40_000) as i64,
                    right_password: self.rng.chance(650),
                },
                60..=71 => {
                    let withdrawals = self.succeeded(|r, answer| match r {
                        Request::Withdraw { .. } => serde_json::from_str::<serde_json::Value>(&answer.body).ok()?["id"]
                            .as_str()
                            .map(str::to_owned),
                        _ => None,
                    });
                    if withdrawals.is_empty() {
                        continue;
                    }
                    let id = self.rng.pick(&withdrawals).clone();
                    if self.rng.chance(650) {
                        Request::Paid { id }
                    } else {
                        Request::Returned { id }
                    }
                }
                72..=77 => Request::SendCode {
                    member: self.rng.below(self.pending.len() as u64) as usize,
                },
                _ => {
                    // Mostly a member still waiting, who was sent a code.
                    let activated = self.succeeded(|r, _| match r {
                        Request::ConfirmCode { member, .. } => Some(*member),
                        _ => None,
                    });
                    let waiting: Vec<usize> = (0..self.pending.len()).filter(|n| !activated.contains(n)).collect();
                    let sent: Vec<usize> = waiting
                        .iter()
                        .copied()
                        .filter(|n| self.phones.last_code(&self.pending[*n].phone).is_some())
                        .collect();
                    if waiting.is_empty() {
                        continue;
                    } else if sent.is_empty() {
                        Request::SendCode {
                            member: *self.rng.pick(&waiting),
                        }
                    } else {
                        let member = if self.rng.chance(950) {
                            *self.rng.pick(&sent)
                        } else {
                            self.rng.below(self.pending.len() as u64) as usize
                        };
                        self.draw_confirmation(member)
                    }
                }
            };
            return request;
        }
    }

    /// A code confirmation for `pending[member]`: the code last sent (15 % of the time) or
    /// a wrong one.
    fn draw_confirmation(&mut self, member: usize) -> Request {
        let right = self.rng.chance(150);
        self.confirmation(member, right)
    }

    fn confirmation(&mut self, member: usize, right: bool) -> Request {
        let code = match self.phones.last_code(&self.pending[member].phone) {
            Some(code) if right => code,
            // A wrong code: the right one's digits moved.
            Some(code) => {
                let n: u32 = code.parse().unwrap();
                format!("{:06}", (n + 1 + self.rng.below(999_998) as u32) % 1_000_000)
            }
            None => format!("{:06}", self.rng.below(1_000_000)),
        };
        Request::ConfirmCode { member, code }
    }

    fn start(&mut self, request: Request) {
        let journal = Arc::clone(&self.journal);
        let active: Vec<MemberId> = self.active.iter().map(|s| s.id.clone()).collect();
        let pending: Vec<MemberId> = self.pending.iter().map(|s| s.id.clone()).collect();
        let request_for_task = request.clone();
        // The op id is known only inside `spawn`: the app (its store) is made there.
        let op = Arc::clone(&self.sim).spawn(|op| {
            let app = self.app_for(op);
            async move {
                let answer = run(&app, &request_for_task, &active, &pending).await;
                journal.lock().unwrap().entries.get_mut(&op).unwrap().1 = Some(Some(answer));
            }
        });
        self.journal.lock().unwrap().entries.insert(op, (request.clone(), None));
        if self.rng.chance(100) {
            self.slow.insert(op);
        }
        if self.tracing {
            self.trace.push(format!("start op {op}: {request:?}"));
        }
    }
}

/// Sends one request as its client would: the withdrawal through its HTTP handler (so
/// replays are compared byte for byte), the rest through their operations.
async fn run(app: &App, request: &Request, active: &[MemberId], pending: &[MemberId]) -> Answer {
    match request {
        Request::Collect {
            id,
            member,
            currency,
            cents,
            available_at,
        } => {
            let new = NewCollection {
                collection_id: ExternalId::parse(id).unwrap(),
                member_id: active[*member].clone(),
                currency: *currency,
                amount: cents_to_amount(*cents),
                available_at: Some(*available_at),
            };
            Answer::of(collection::collect(app, new).await, |c| c.record.amount.to_string())
        }
        Request::Refund { id, collection, cents } => {
            let new = NewRefund {
                refund_id: ExternalId::parse(id).unwrap(),
                collection_id: ExternalId::parse(collection).unwrap(),
                amount: cents_to_amount(*cents),
            };
            Answer::of(collection::refund(app, new).await, |r| r.record.amount.to_string())
        }
        Request::Settle => Answer::of(collection::settle_due(app, app.now()).await, |s| s.count.to_string()),
        Request::Withdraw {
            member,
            key,
            currency,
            cents,
            right_password,
        } => {
            let mut event = fund_account_tests::event("withdraw");
            event["headers"]["idempotency-key"] = key.clone().into();
            event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = active[*member].as_str().into();
            let password = if *right_password { PASSWORD } else { "Wrong-Key-2026!" };
            let body = serde_json::json!({
                "currency": currency.code(),
                "amount": cents_to_amount(*cents).to_string(),
                "payment_password": password,
                "bank_account": {"holder_name": "Li Wei", "account_number": "6222020200112233", "bank_name": "ICBC"},
            });
            event["body"] = body.to_string().into();
            let request = lambda_http::request::from_str(&event.to_string()).unwrap();
            let response = routes::handle(Route::Withdraw, app, request).await;
            let body = match response.body() {
                lambda_http::Body::Text(text) => text.clone(),
                other => format!("{other:?}"),
            };
            Answer {
                status: response.status().as_u16(),
                body,
            }
        }
        Request::Paid { id } => Answer::of(
            withdrawal::report_payout(app, &WithdrawalId::parse(id).unwrap(), Payout::Paid).await,
            |w| w.status.as_str().to_owned(),
        ),
        Request::Returned { id } => Answer::of(
            withdrawal::report_payout(
                app,
                &WithdrawalId::parse(id).unwrap(),
                Payout::Returned {
                    reason: "account closed".to_owned(),
                },
            )
            .await,
            |w| w.status.as_str().to_owned(),
        ),
        Request::SendCode { member } => Answer::of(
            fund_account::activation::send_code(app, &pending[*member]).await,
            |_| "sent".to_owned(),
        ),
        Request::ConfirmCode { member, code, .. } => Answer::of(
            fund_account::activation::confirm_code(app, &pending[*member], &SmsCode::parse(code).unwrap()).await,
            |()| "active".to_owned(),
        ),
    }
}

/// The member whose item a write touches (a reconciliation run's record has none).
fn written_member(write: &Write) -> Option<MemberId> {
    match write {
        Write::PutMember { member, .. } => Some(member.member_id.clone()),
        Write::PutCode { code, .. } => Some(code.member_id.clone()),
        Write::IndexMember { member_id }
        | Write::CheckMember { member_id, .. }
        | Write::DeleteCode { member_id, .. }
        | Write::AdjustBalance { member_id, .. } => Some(member_id.clone()),
        Write::AppendLedger(entry) => Some(entry.member_id.clone()),
        Write::PutWithdrawal { withdrawal, .. } => Some(withdrawal.member_id.clone()),
        Write::PutCollection { collection, .. } => Some(collection.member_id.clone()),
        Write::PutRefund(refund) => Some(refund.member_id.clone()),
        Write::PutIdempotency { record, .. } => Some(record.member_id.clone()),
        Write::AppendPlatformEntry(entry) => Some(entry.member_id.clone()),
        Write::PutRun(_) | Write::PutDoc { .. } | Write::AdjustPlatform { .. } => None,
    }
}

/// Every ledger entry of a member in one currency, oldest first.
async fn all_entries(store: &dyn Store, member: &MemberId, currency: Currency) -> Vec<LedgerEntry> {
    let mut entries = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .ledger(member, Some(currency), &PageRequest { limit: 100, before })
            .await
            .unwrap();
        before = page.items.last().map(|e| e.id.clone());
        entries.extend(page.items);
        if !page.more {
            break;
        }
    }
    entries.reverse();
    entries
}

impl World {
    fn members(&self) -> Vec<MemberId> {
        self.active.iter().chain(&self.pending).map(|s| s.id.clone()).collect()
    }

    /// The books of `members`, read straight from the table: every bucket is the sum of its
    /// entries and never below zero, and every record's entries are there exactly once.
    async fn check_books(&self, members: &BTreeSet<MemberId>) -> Result<(), String> {
        let table = &self.sim.table;
        let (collection_ids, refund_ids, keys) = {
            let journal = self.journal.lock().unwrap();
            let mut collections = BTreeSet::new();
            let mut member_of_collection = BTreeMap::new();
            let mut refunds = BTreeSet::new();
            let mut keys = BTreeSet::new();
            for (request, _) in journal.entries.values() {
                if let Request::Collect { id, member, .. } = request {
                    member_of_collection.insert(id.clone(), &self.active[*member].id);
                    if members.contains(&self.active[*member].id) {
                        collections.insert(id.clone());
                    }
                }
            }
            for (request, _) in journal.entries.values() {
                match request {
                    Request::Refund { id, collection, .. }
                        if member_of_collection
                            .get(collection)
                            .is_some_and(|m| members.contains(*m)) =>
                    {
                        refunds.insert(id.clone());
                    }
                    Request::Withdraw { member, key, .. } if members.contains(&self.active[*member].id) => {
                        keys.insert((self.active[*member].id.clone(), key.clone()));
                    }
                    _ => {}
                }
            }
            (collections, refunds, keys)
        };
        // What each record says its entries must be: (reference, type, bucket) → amount.
        let mut expected: BTreeMap<(String, &'static str, Bucket), Amount> = BTreeMap::new();
        let mut expect = |reference: &str, entry_type: EntryType, bucket: Bucket, amount: Amount| {
            if !amount.is_zero() {
                expected.insert((reference.to_owned(), entry_type.as_str(), bucket), amount);
            }
        };
        let mut refunds_of: BTreeMap<String, Vec<fund_account::records::Refund>> = BTreeMap::new();
        for id in &refund_ids {
            if let Some(refund) = table.refund(&ExternalId::parse(id).unwrap()).await.unwrap() {
                expect(id, EntryType::Refund, refund.taken_from, refund.amount.negated());
                refunds_of
                    .entry(refund.collection_id.to_string())
                    .or_default()
                    .push(refund);
            }
        }
        for id in &collection_ids {
            let Some(c) = table.collection(&ExternalId::parse(id).unwrap()).await.unwrap() else {
                continue;
            };
            let refunds = refunds_of.get(id).map(Vec::as_slice).unwrap_or_default();
            let refunded = refunds
                .iter()
                .try_fold(Amount::ZERO, |sum, r| sum.checked_add(r.amount))
                .unwrap();
            if refunded != c.refunded || refunded > c.amount {
                return Err(format!(
                    "collection {id}: refunds {refunded}, recorded {}, of {}",
                    c.refunded, c.amount
                ));
            }
            expect(id, EntryType::Collection, Bucket::Pending, c.amount);
            if c.status == CollectionStatus::Settled {
                let from_pending = refunds
                    .iter()
                    .filter(|r| r.taken_from == Bucket::Pending)
                    .try_fold(Amount::ZERO, |sum, r| sum.checked_add(r.amount))
                    .unwrap();
                let moved = c.amount.checked_sub(from_pending).unwrap();
                expect(id, EntryType::CollectionSettled, Bucket::Pending, moved.negated());
                expect(id, EntryType::CollectionSettled, Bucket::Available, moved);
            }
        }
        let mut withdrawal_ids = BTreeSet::new();
        for member in members {
            let mut before = None;
            loop {
                let page = table
                    .withdrawals(member, &PageRequest { limit: 100, before })
                    .await
                    .unwrap();
                before = page.items.last().map(|w| w.id.to_string());
                for w in &page.items {
                    withdrawal_ids.insert(w.id.to_string());
                    let id = w.id.as_str();
                    expect(id, EntryType::Withdrawal, Bucket::Available, w.amount.negated());
                    expect(id, EntryType::Withdrawal, Bucket::InTransit, w.amount);
                    match w.status {
                        WithdrawalStatus::Processing => {}
                        WithdrawalStatus::Paid => {
                            expect(id, EntryType::WithdrawalPaid, Bucket::InTransit, w.amount.negated());
                        }
                        WithdrawalStatus::Returned => {
                            expect(id, EntryType::WithdrawalReturned, Bucket::InTransit, w.amount.negated());
                            expect(id, EntryType::WithdrawalReturned, Bucket::Available, w.amount);
                        }
                    }
                }
                if !page.more {
                    break;
                }
            }
        }
        // Exactly once per key: the keys' records name exactly the withdrawals stored.
        let mut keyed = BTreeSet::new();
        for (member, key) in &keys {
            if let Some(record) = table.idempotency_record(member, key).await.unwrap() {
                let fund_account::records::Created::Withdrawal(withdrawal) = &record.created else {
                    return Err(format!("key {key} holds a conversion"));
                };
                if !keyed.insert(withdrawal.id.to_string()) {
                    return Err(format!("withdrawal {} is held by two keys", withdrawal.id));
                }
            }
        }
        if keyed != withdrawal_ids {
            return Err(format!(
                "withdrawals {withdrawal_ids:?} but keys hold {keyed:?}: a withdrawal without its key, or a key without its withdrawal"
            ));
        }

        let mut found: BTreeMap<(String, &'static str, Bucket), (Amount, u32)> = BTreeMap::new();
        for member in members {
            let balances = table.balances(member).await.unwrap();
            for currency in Currency::ALL {
                let balance = balances.get(currency);
                let entries = all_entries(table, member, currency).await;
                for bucket in Bucket::ALL {
                    let sum = entries
                        .iter()
                        .filter(|e| e.bucket == bucket)
                        .try_fold(Amount::ZERO, |sum, e| sum.checked_add(e.amount))
                        .unwrap();
                    if sum != balance.get(bucket) {
                        return Err(format!(
                            "{member} {currency} {}: balance {} but entries sum to {sum}",
                            bucket.as_str(),
                            balance.get(bucket)
                        ));
                    }
                    if balance.get(bucket).is_negative() {
                        return Err(format!("{member} {currency} {} is negative", bucket.as_str()));
                    }
                }
                for e in entries {
                    let slot = found
                        .entry((e.reference.clone(), e.entry_type.as_str(), e.bucket))
                        .or_insert((Amount::ZERO, 0));
                    slot.0 = slot.0.checked_add(e.amount).unwrap();
                    slot.1 += 1;
                }
            }
        }
        for (key, (amount, count)) in &found {
            match expected.get(key) {
                Some(want) if want == amount && *count == 1 => {}
                _ => {
                    return Err(format!(
                        "entries {key:?}: {count} summing to {amount}, the records say {:?}",
                        expected.get(key)
                    ))
                }
            }
        }
        if let Some(missing) = expected.keys().find(|key| !found.contains_key(*key)) {
            return Err(format!("no entry {missing:?} for a stored record"));
        }
        Ok(())
    }

    /// The limits, from the commits that landed since the last step: a payment password
    /// is never found wrong more than five times without a lock, and a code never checked
    /// more than five times.
    /// Returns the members whose items the landed commits wrote (only their books can have
    /// changed).
    fn check_limits(&mut self) -> Result<BTreeSet<MemberId>, String> {
        let journal = self.journal.lock().unwrap();
        let applied = self.sim.take_applied();
        let touched = applied
            .iter()
            .flat_map(|(_, writes)| writes.iter().filter_map(written_member))
            .collect();
        for (op, writes) in applied {
            let Some((request, _)) = journal.entries.get(&op) else {
                continue;
            };
            match request {
                Request::Withdraw {
                    member, right_password, ..
                } => {
                    let member_id = &self.active[*member].id;
                    let written = writes.iter().find_map(|w| match w {
                        Write::PutMember { member, .. } if &member.member_id == member_id => Some(member),
                        _ => None,
                    });
                    // A lock stops every password check until it ends: a commit of a
                    // check that read the member before the lock must not land after it.
                    let now = self.sim.clock.now();
                    if let Some(until) = self.limits.locked_until.get(member_id).filter(|until| **until > now) {
                        return Err(format!(
                            "{member_id}: a payment password check landed while withdrawals were locked until {until}"
                        ));
                    }
                    if let Some(until) = written.and_then(|m| m.withdrawals_locked_until) {
                        self.limits.locked_until.insert(member_id.clone(), until);
                    }
                    let count = self.limits.wrong_passwords.entry(member_id.clone()).or_insert(0);
                    if *right_password {
                        // A right password resets the count (when there was one).
                        if written.is_some() {
                            *count = 0;
                        }
                        continue;
                    }
                    *count += 1;
                    if *count > MAX_PASSWORD_ATTEMPTS {
                        return Err(format!(
                            "{member_id}: a payment password was found wrong {count} times without a lock"
                        ));
                    }
                    if written.is_some_and(|m| m.withdrawals_locked_until.is_some_and(|until| until > m.updated_at))
                        && written.is_some_and(|m| m.failed_password_attempts == 0)
                    {
                        *count = 0;
                    }
                }
                Request::SendCode { member } => {
                    let member_id = &self.pending[*member].id;
                    let Some(sent_at) = writes.iter().find_map(|w| match w {
                        Write::PutCode { code, .. } => Some(code.sent_at),
                        _ => None,
                    }) else {
                        continue;
                    };
                    self.limits.code_checks.insert(member_id.clone(), 0);
                    // One code per cooldown, and at most five an hour.
                    let sends = self.limits.sends.entry(member_id.clone()).or_default();
                    if let Some(last) = sends
                        .last()
                        .filter(|last| sent_at < last.plus_seconds(RESEND_COOLDOWN_SECONDS))
                    {
                        return Err(format!(
                            "{member_id}: a code sent at {sent_at}, within the cooldown of the one at {last}"
                        ));
                    }
                    sends.push(sent_at);
                    let window_start = sent_at.plus_seconds(-SEND_WINDOW_SECONDS);
                    let in_window = sends.iter().filter(|t| **t > window_start).count();
                    if in_window > MAX_SENDS_PER_WINDOW {
                        return Err(format!("{member_id}: {in_window} codes sent within an hour"));
                    }
                }
                Request::ConfirmCode { member, .. } => {
                    let member_id = &self.pending[*member].id;
                    let checks = self.limits.code_checks.entry(member_id.clone()).or_insert(0);
                    *checks += 1;
                    if *checks > MAX_ATTEMPTS_PER_CODE {
                        return Err(format!("{member_id}: one code was checked {checks} times"));
                    }
                }
                _ => {}
            }
        }
        Ok(touched)
    }

    /// What the clients were just told, against the table: every success happened (its
    /// record is there, as answered), every replay of a key answered the first body byte
    /// for byte, and no answer was a 500.
    async fn check_answers(&mut self, answered: &[(Request, Option<Answer>)]) -> Result<(), String> {
        let table = &self.sim.table;
        for (request, answer) in answered {
            let Some(answer) = answer else { continue };
            if answer.status == 500 {
                return Err(format!("{request:?} answered 500: {}", answer.body));
            }
            if !answer.succeeded() {
                continue;
            }
            match request {
                Request::Collect { id, cents, .. } => {
                    let stored = table.collection(&ExternalId::parse(id).unwrap()).await.unwrap();
                    if stored.is_none_or(|c| c.amount != cents_to_amount(*cents)) {
                        return Err(format!("collection {id} answered success but is not stored as asked"));
                    }
                }
                Request::Refund { id, cents, .. } => {
                    let stored = table.refund(&ExternalId::parse(id).unwrap()).await.unwrap();
                    if stored.is_none_or(|r| r.amount != cents_to_amount(*cents)) {
                        return Err(format!("refund {id} answered success but is not stored as asked"));
                    }
                }
                Request::Withdraw { key, .. } => {
                    let first = self
                        .first_bodies
                        .entry(key.clone())
                        .or_insert_with(|| answer.body.clone());
                    if first != &answer.body {
                        return Err(format!("key {key} answered {first} and then {}", answer.body));
                    }
                    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
                    let id = WithdrawalId::parse(body["id"].as_str().unwrap()).unwrap();
                    if table.withdrawal(&id).await.unwrap().is_none() {
                        return Err(format!("withdrawal {id} answered success but is not stored"));
                    }
                }
                Request::Paid { id } | Request::Returned { id } => {
                    let want = if matches!(request, Request::Paid { .. }) {
                        WithdrawalStatus::Paid
                    } else {
                        WithdrawalStatus::Returned
                    };
                    let stored = table.withdrawal(&WithdrawalId::parse(id).unwrap()).await.unwrap();
                    if stored.is_none_or(|w| w.status != want) {
                        return Err(format!(
                            "{request:?} answered success but the withdrawal is not {want:?}"
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// At the end: a request refused every time (no success, no ambiguous answer, no
    /// crash) left no record behind.
    async fn check_refusals_changed_nothing(&self) -> Result<(), String> {
        let table = &self.sim.table;
        let journal: Vec<(Request, Option<Option<Answer>>)> =
            self.journal.lock().unwrap().entries.values().cloned().collect();
        let mut maybe_happened: BTreeMap<String, bool> = BTreeMap::new();
        for (request, answer) in &journal {
            let Some(answer) = answer else { continue };
            let happened = answer.as_ref().is_none_or(|a| a.succeeded() || a.ambiguous());
            if let Request::Collect { id, .. } | Request::Refund { id, .. } | Request::Withdraw { key: id, .. } =
                request
            {
                *maybe_happened.entry(id.clone()).or_insert(false) |= happened;
            }
        }
        for (request, _) in &journal {
            let refused_only = |identity: &str| maybe_happened.get(identity) == Some(&false);
            let left = match request {
                Request::Collect { id, .. } if refused_only(id) => table
                    .collection(&ExternalId::parse(id).unwrap())
                    .await
                    .unwrap()
                    .is_some(),
                Request::Refund { id, .. } if refused_only(id) => {
                    table.refund(&ExternalId::parse(id).unwrap()).await.unwrap().is_some()
                }
                Request::Withdraw { member, key, .. } if refused_only(key) => table
                    .idempotency_record(&self.active[*member].id, key)
                    .await
                    .unwrap()
                    .is_some(),
                _ => false,
            };
            if left {
                return Err(format!("{request:?} was refused every time, yet it left a record"));
            }
        }
        Ok(())
    }

    /// Ambiguous answers (503, a crash) are retried by their clients, as the same request.
    fn queue_retries(&mut self, answered: &[(Request, Option<Answer>)]) {
        for (request, answer) in answered {
            let retry = answer.as_ref().is_none_or(Answer::ambiguous);
            if retry && self.rng.chance(700) {
                self.retries.push(request.clone());
            }
        }
    }
}

/// Runs one seed to the end; `Err` says which invariant broke, after which step.
async fn simulate(seed: u64, tracing: bool) -> Result<Outcome, (String, Vec<String>)> {
    let mut world = World::new(seed, tracing).await;
    let budget = 20 + world.rng.below(40) as usize;
    let mut started = 0;
    let mut answered_before = BTreeSet::new();
    loop {
        world.sim.quiescent().await;
        let step = world.sim.step();
        let fail =
            |world: &World, message: String| (format!("seed {seed}, step {step}: {message}"), world.trace.clone());
        match world.check_limits() {
            Err(message) => return Err(fail(&world, message)),
            // The books change only when a commit lands: checked after each one, for the
            // members it wrote.
            Ok(touched) => {
                if let Err(message) = world.check_books(&touched).await {
                    return Err(fail(&world, message));
                }
            }
        }
        // Newly answered requests (a crash is an answer that never comes): their answers
        // are checked, their ambiguity retried.
        let newly: Vec<(Request, Option<Answer>)> = {
            let mut journal = world.journal.lock().unwrap();
            for op in world.sim.take_crashed() {
                if let Some(entry) = journal.entries.get_mut(&op) {
                    entry.1 = Some(None);
                }
            }
            let mut newly = Vec::new();
            for (op, (request, answer)) in &journal.entries {
                if answer.is_some() && answered_before.insert(*op) {
                    newly.push((request.clone(), answer.clone().flatten()));
                }
            }
            newly
        };
        if !newly.is_empty() {
            if tracing {
                for (request, answer) in &newly {
                    world.trace.push(format!("answered {request:?}: {answer:?}"));
                }
            }
            if let Err(message) = world.check_answers(&newly).await {
                return Err(fail(&world, message));
            }
            world.queue_retries(&newly);
        }

        let parked = world.sim.parked();
        let can_start = started < budget || !world.retries.is_empty();
        if parked.is_empty() && !can_start {
            break;
        }
        // Time moves a little every step (ids stay in order), sometimes a lot.
        let millis = if world.rng.chance(2) {
            31 * 60 * 1000
        } else {
            1 + world.rng.below(2_000) as i64
        };
        world.sim.clock.advance_millis(millis);
        if can_start && (parked.is_empty() || world.rng.chance(350)) {
            let request = if !world.retries.is_empty() && world.rng.chance(500) {
                let n = world.rng.below(world.retries.len() as u64) as usize;
                world.retries.swap_remove(n)
            } else if started < budget {
                started += 1;
                world.draw_request()
            } else {
                world.retries.pop().unwrap()
            };
            world.start(request.clone());
            // Clients that send twice (a double click, a mobile retry on a slow network),
            // and a payout processor whose reports arrive twice or contradict each other.
            if world.rng.chance(100) {
                world.start(request.clone());
            }
            match request {
                // Someone guessing codes in parallel, next to the member's own tries.
                // The member types the right code while someone fires guesses at it.
                Request::ConfirmCode { member, .. } if world.rng.chance(400) => {
                    let right = world.rng.below(4);
                    for n in 0..3 + world.rng.below(4) {
                        let guess = world.confirmation(member, n == right);
                        world.start(guess);
                    }
                }
                // Someone guessing the payment password in parallel with the member's own
                // withdrawals.
                Request::Withdraw { member, currency, .. } if world.rng.chance(250) => {
                    let right = world.rng.below(3);
                    for n in 0..3 + world.rng.below(8) {
                        let key = world.fresh_id("key");
                        let cents = 1 + world.rng.below(40_000) as i64;
                        world.start(Request::Withdraw {
                            member,
                            key,
                            currency,
                            cents,
                            right_password: n == right,
                        });
                    }
                }
                Request::Paid { id } if world.rng.chance(300) => world.start(Request::Returned { id }),
                Request::Returned { id } if world.rng.chance(300) => world.start(Request::Paid { id }),
                _ => {}
            }
            continue;
        }
        // A slow function (a pause between its read and its commit) is picked an eighth as
        // often as the others: the window in which the world moves on under it.
        let weight = |op: &OpId| if world.slow.contains(op) { 1 } else { 8 };
        let mut ticket = world.rng.below(parked.iter().map(weight).sum());
        let op = *parked
            .iter()
            .find(|op| {
                let w = weight(op);
                let hit = ticket < w;
                ticket = ticket.saturating_sub(w);
                hit
            })
            .unwrap();
        let step = world.sim.advance(op);
        if tracing {
            world.trace.push(format!("{step:?}"));
        }
    }
    if world.sim.live() != 0 {
        return Err((format!("seed {seed}: operations still live at the end"), world.trace));
    }
    let everyone = world.members().into_iter().collect();
    if let Err(message) = world.check_books(&everyone).await {
        return Err((format!("seed {seed}, at the end: {message}"), world.trace));
    }
    if let Err(message) = world.check_refusals_changed_nothing().await {
        return Err((format!("seed {seed}, at the end: {message}"), world.trace));
    }
    // The reconciliation of the final state, once the indexes have caught up, finds nothing.
    world.sim.settle_indexes();
    let app = sim_app(
        &world.sim,
        Arc::new(world.sim.table.clone()),
        Arc::clone(&world.phones) as Arc<dyn SmsSender>,
    );
    let options = RunOptions {
        settle: false,
        recheck_after: Duration::ZERO,
        ..RunOptions::full()
    };
    let report = reconciliation::run(&app, options).await.unwrap();
    if !report.discrepancies.is_empty() {
        return Err((
            format!("seed {seed}: the reconciliation found {:?}", report.discrepancies),
            world.trace,
        ));
    }
    if tracing {
        for line in &world.trace {
            println!("{line}");
        }
    }
    let (throttled, conflicts) = world.sim.pressure();
    let requests = world.journal.lock().unwrap().entries.len();
    Ok(Outcome {
        refused: world.sim.refused(),
        granted: world.sim.granted(),
        steps: world.sim.step(),
        requests,
        throttled,
        conflicts,
    })
}

fn run_seed(seed: u64, tracing: bool) -> Result<Outcome, (String, Vec<String>)> {
    paused_runtime().block_on(simulate(seed, tracing))
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

/// Seeds that once failed, kept: each replays its run and must keep every invariant.
///
/// - 5277 (found by the run of seeds 1,000–20,999): a duplicate refund crashed after its
///   commit landed while its twin was refused; the checker took the crash for "no
///   answer yet" and the record for one a refusal left (a defect of the checker, which
///   now counts a crash as an answer that may have happened — and retries it).
#[test]
fn seeds_that_once_failed_pass() {
    for seed in [5277] {
        if let Err((message, _)) = run_seed(seed, false) {
            panic!("{message}");
        }
    }
}

#[test]
fn seeds_keep_every_invariant() {
    if let Some(seed) = env_u64("SIM_SEED") {
        match run_seed(seed, true) {
            Ok(outcome) => println!(
                "seed {seed}: {} requests, {} steps, {} conflicts, {} throttled, refused by condition: {:?}",
                outcome.requests, outcome.steps, outcome.conflicts, outcome.throttled, outcome.refused
            ),
            Err((message, trace)) => {
                for line in trace {
                    println!("{line}");
                }
                panic!("{message}");
            }
        }
        return;
    }
    let seeds = env_u64("SIM_SEEDS").unwrap_or(1_000);
    let first = env_u64("SIM_FIRST_SEED").unwrap_or(0);
    // One thread per core: each runs every other seed on its own runtime.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let started = Instant::now();
    let totals = Arc::new(Mutex::new((0u64, 0u64, 0u64, 0u64)));
    let refused = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let totals = Arc::clone(&totals);
                let refused = Arc::clone(&refused);
                scope.spawn(move || {
                    for seed in (first + t..first + seeds).step_by(threads as usize) {
                        match run_seed(seed, false) {
                            Ok(o) => {
                                let mut totals = totals.lock().unwrap();
                                totals.0 += o.steps;
                                totals.1 += o.requests as u64;
                                totals.2 += o.conflicts;
                                totals.3 += o.throttled;
                                let mut refused = refused.lock().unwrap();
                                for (target, n) in o.refused {
                                    *refused.entry(target).or_insert(0) += n;
                                }
                                for (label, n) in o.granted {
                                    *refused.entry(format!("service: {label}")).or_insert(0) += n;
                                }
                            }
                            Err((message, _)) => return Some(message),
                        }
                    }
                    None
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    let (steps, requests, conflicts, throttled) = *totals.lock().unwrap();
    println!(
        "{seeds} seeds from {first} in {:.1} s ({:.1} seeds/s): {requests} requests, {steps} steps, {conflicts} conflicts, {throttled} throttled; refused by condition and what the service did: {:?}",
        elapsed.as_secs_f64(),
        seeds as f64 / elapsed.as_secs_f64(),
        refused.lock().unwrap()
    );
    assert!(
        failures.is_empty(),
        "{}\nreplay with SIM_SEED=<seed> cargo test -p fund-account-tests --test sim -- --nocapture",
        failures.join("\n")
    );
}

// The simulated service's own failure modes, each shown to strike: a simulator that never
// injected them would pass every seed above.

/// A single-threaded runtime on paused time: backoff sleeps pass in simulated time (the
/// runtime jumps to the next timer whenever every task waits).
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

type Results = Arc<Mutex<Vec<(OpId, Result<(), StoreError>)>>>;

/// Starts an operation that makes `commits` commits of `writes`, recording each result.
fn committer(sim: &Arc<Sim>, writes: Vec<Write>, commits: usize, results: &Results) -> OpId {
    sim.spawn(|op| {
        let store = sim.store_for(op);
        let results = Arc::clone(results);
        async move {
            for _ in 0..commits {
                let result = store.commit(writes.clone()).await;
                results.lock().unwrap().push((op, result));
            }
        }
    })
}

fn index_member(id: &str) -> Write {
    Write::IndexMember {
        member_id: MemberId::parse(id).unwrap(),
    }
}

#[test]
fn a_transaction_in_flight_cancels_another_on_the_same_item() {
    paused_runtime().block_on(async {
        let sim = Sim::new(1, Faults::NONE, Timestamp::from_unix_millis(T0));
        let results = Results::default();
        let first = committer(&sim, vec![index_member("m-1"), index_member("m-2")], 1, &results);
        let second = committer(&sim, vec![index_member("m-2")], 1, &results);
        let apart = committer(&sim, vec![index_member("m-3")], 1, &results);
        sim.quiescent().await;
        assert_eq!(sim.advance(first), Step::Prepared(first));
        assert_eq!(sim.advance(second), Step::Conflict(second));
        assert_eq!(sim.advance(apart), Step::Prepared(apart));
        assert_eq!(sim.advance(apart), Step::Granted(apart, "applied"));
        assert_eq!(sim.advance(first), Step::Granted(first, "applied"));
        sim.quiescent().await;
        let results = results.lock().unwrap().clone();
        assert_eq!(
            results.iter().find(|(op, _)| *op == second).map(|(_, r)| r.clone()),
            Some(Err(StoreError::Contention))
        );
        assert!(results.iter().filter(|(op, _)| *op != second).all(|(_, r)| r.is_ok()));
    });
}

#[test]
fn an_item_past_1000_write_units_in_a_second_is_throttled() {
    paused_runtime().block_on(async {
        let sim = Sim::new(1, Faults::NONE, Timestamp::from_unix_millis(T0));
        let results = Results::default();
        // A transactional write costs two units: 500 fit in one second, the 501st does not.
        committer(&sim, vec![index_member("hot")], 501, &results);
        loop {
            sim.quiescent().await;
            let Some(op) = sim.parked().first().copied() else { break };
            sim.advance(op);
        }
        let landed = results.lock().unwrap().clone();
        assert!(landed[..500].iter().all(|(_, r)| r.is_ok()));
        assert!(matches!(&landed[500].1, Err(StoreError::Unavailable(why)) if why.contains("Throttling")));
        assert_eq!(sim.pressure().0, 1);
        // The next second the item takes writes again.
        sim.clock.advance_seconds(1);
        committer(&sim, vec![index_member("hot")], 1, &results);
        loop {
            sim.quiescent().await;
            let Some(op) = sim.parked().first().copied() else { break };
            sim.advance(op);
        }
        assert!(results.lock().unwrap()[501].1.is_ok());
    });
}

#[test]
fn an_index_read_sees_the_table_as_it_was() {
    paused_runtime().block_on(async {
        let faults = Faults {
            index_lag_steps: 1_000_000,
            ..Faults::NONE
        };
        let sim = Sim::new(7, faults, Timestamp::from_unix_millis(T0));
        let now = sim.clock.now();
        let mut collection = fund_account_tests::fixtures::collection("ord-1", "m-1", now, CollectionStatus::Pending);
        collection.created_at = now;
        let results = Results::default();
        let write = Write::PutCollection {
            collection,
            expect: Expect::Absent,
        };
        let op = committer(&sim, vec![write], 1, &results);
        sim.quiescent().await;
        sim.advance(op);
        sim.advance(op);
        sim.quiescent().await;
        assert!(results.lock().unwrap()[0].1.is_ok());
        let due = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..2 {
            let reader = sim.spawn(|op| {
                let store = sim.store_for(op);
                let due = Arc::clone(&due);
                async move {
                    let found = store.due_collections(now, 10).await.unwrap().len();
                    due.lock().unwrap().push(found);
                }
            });
            sim.quiescent().await;
            sim.advance(reader);
            sim.quiescent().await;
            sim.settle_indexes();
        }
        // In the table at once; in the index only once it has caught up.
        assert_eq!(*due.lock().unwrap(), vec![0, 1]);
    });
}
