//! The simulator (see `support/sim.rs`): many members' collections, settlements, refunds,
//! withdrawals (right and wrong passwords), payout reports, code sends and confirmations,
//! the treasury's reference rates, FX quotes, conversions (bursts of up to 20 on one
//! quote), withdrawal previews and withdrawals paid out in another currency, interleaved
//! call by call by a seed, against a store that behaves like DynamoDB at its worst —
//! conflicts, throttling, lost answers, fresh retries, lagging indexes, crashes. After
//! every step every invariant of the books (double-entry: every transaction sums to zero,
//! every platform shard is the sum of its entries), of quotes, of the outbox (each
//! movement commits exactly one event, a withdrawal's with one SMS notification) and of
//! the limits is checked; at the end the reconciliation must find nothing and all accounts sum to zero.
//!
//! `SIM_SEED=<n>` replays one seed (printing its trace); `SIM_SEEDS=<n>` runs n seeds
//! (default 600); `SIM_FIRST_SEED=<n>` starts elsewhere. A failure prints its seed.
//! `SIM_HEAVY_SEEDS=<n>` runs n seeds of the collection-heavy load that counts writes per
//! item (default 1).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fund_account::app::{App, Settings};
use fund_account::clock::{Clock, Timestamp};
use fund_account::collection::{self, NewCollection, NewRefund};
use fund_account::error::ApiError;
use fund_account::events::{EventType, OutboxEvent};
use fund_account::exchange::{self, Fixed, QuoteRequest, RateUpdate};
use fund_account::fx::{Conversion, Mid, Pair, Quote, QuotePurpose};
use fund_account::ids::{ExternalId, QuoteId, WithdrawalId};
use fund_account::ledger::{BalancePart, Bucket, EntryType, LedgerEntry, PlatformShard};
use fund_account::member::{MemberId, MemberStatus};
use fund_account::money::{Amount, Currency};
use fund_account::phone::PhoneNumber;
use fund_account::reconciliation::{self, RunOptions};
use fund_account::records::{CollectionStatus, Created, IdempotencyKey, WithdrawalStatus};
use fund_account::routes::{self, Route};
use fund_account::sms::{SmsError, SmsSender};
use fund_account::store::{Doc, Expect, PageRequest, Store, StoreError, Write};
use fund_account::verification::{
    SmsCode, MAX_ATTEMPTS_PER_CODE, MAX_SENDS_PER_WINDOW, RESEND_COOLDOWN_SECONDS, SEND_WINDOW_SECONDS,
};
use fund_account::withdrawal::{self, Payout, MAX_PASSWORD_ATTEMPTS};
use fund_account_tests::sim::{cheap_hash, Faults, OpId, Sim, SimRng, Step};
use fund_account_tests::{T0, TEST_CODE_SECRET};
use rust_decimal::Decimal;

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
        /// A preview's quote: the payout is in CNY.
        quote: Option<String>,
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
    /// The treasury's reference rate (`mid` as it sends it).
    PutRate {
        pair: Pair,
        mid: String,
        as_of: Timestamp,
    },
    /// A quote to sell `sell` for `buy`, fixing the sell side (`sell_fixed`) or the buy side
    /// at `cents`.
    Quote {
        member: usize,
        sell: Currency,
        buy: Currency,
        sell_fixed: bool,
        cents: i64,
    },
    Convert {
        member: usize,
        key: String,
        quote: String,
    },
    /// A withdrawal preview of `cents` USD paid out in CNY (it locks a quote).
    Preview {
        member: usize,
        cents: i64,
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
    /// What the money across currencies came to (commits that landed).
    fx: FxCounts,
    /// The FX requests' answers, by kind and code.
    answers: BTreeMap<String, u64>,
    /// The most writes one platform shard took in one simulated second, and which.
    hottest_shard: Option<(u32, String, i64)>,
    /// The same for a member's balance item.
    hottest_balance: Option<(u32, String, i64)>,
    /// The most writes one platform account (all its shards of one currency) took in one
    /// simulated second: what a single unsharded item would have had to take.
    hottest_account: Option<(u32, String, i64)>,
}

/// Counts of the FX operations whose commits landed.
#[derive(Debug, Clone, Copy, Default)]
struct FxCounts {
    rates: u64,
    quotes: u64,
    conversions: u64,
    fx_withdrawals: u64,
    fx_paid: u64,
}

/// The request kinds a profile draws, in the order of its weights.
const KINDS: usize = 11;
const COLLECT: usize = 0;
const REFUND: usize = 1;
const SETTLE: usize = 2;
const WITHDRAW: usize = 3;
const PAYOUT: usize = 4;
const SEND_CODE: usize = 5;
const CONFIRM_CODE: usize = 6;
const QUOTE: usize = 7;
const CONVERT: usize = 8;
const PREVIEW: usize = 9;
const PREVIEW_WITHDRAW: usize = 10;

/// The shape of a run: sellers, requests, their mix and how fast the clock moves.
#[derive(Debug, Clone, Copy)]
struct Profile {
    /// Active sellers: `sellers + below(extra_sellers)`.
    sellers: u64,
    extra_sellers: u64,
    /// Requests: `budget + below(budget_spread)`.
    budget: usize,
    budget_spread: u64,
    /// How often each kind of request is drawn (see `KINDS`).
    weights: [u64; KINDS],
    /// Per mille: how often the scheduler starts a request when it may.
    start: u64,
    /// Most requests live at once.
    max_live: usize,
    /// `None`: the clock moves 1 ms to 2 s a step and now and then 31 minutes.
    /// `Some(p)`: it moves 1 ms with chance p per mille a step (thousands of calls a
    /// simulated second: the load that would make a single item hot).
    tick_per_mille: Option<u64>,
}

impl Profile {
    /// The default: a few sellers doing everything, the clock moving on.
    const MIXED: Profile = Profile {
        sellers: 2,
        extra_sellers: 2,
        budget: 20,
        budget_spread: 40,
        //       collect refund settle withdraw payout send confirm quote convert preview pw
        weights: [18, 7, 6, 16, 10, 5, 12, 9, 5, 9, 3],
        start: 350,
        max_live: usize::MAX,
        tick_per_mille: None,
    };

    /// Many sellers, mostly collections (each writes a clearing shard), with conversions
    /// and payouts (the FX position, fee revenue), at thousands of calls a second.
    const COLLECTION_HEAVY: Profile = Profile {
        sellers: 100,
        extra_sellers: 1,
        budget: 1_500,
        budget_spread: 1,
        weights: [75, 0, 2, 5, 6, 0, 0, 6, 2, 3, 1],
        start: 900,
        max_live: 48,
        tick_per_mille: Some(75),
    };
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
    /// Requests to (re)send: retries of ambiguous answers, and what a client does next
    /// with a quote or a preview.
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
    profile: Profile,
    /// When the treasury next sends a reference rate.
    next_rate_at: Timestamp,
    /// Quotes some request was drawn for (clients mostly use a fresh one).
    drawn_quotes: BTreeSet<String>,
    /// What the landed commits did with quotes.
    fx: FxBooks,
    /// The ids of the events the landed commits put in the outbox (each once).
    event_ids: BTreeSet<String>,
}

/// Quotes as the commits that landed spent them.
#[derive(Default)]
struct FxBooks {
    /// Quote → the conversion or withdrawal its `used_by` names (written once).
    used_by: BTreeMap<String, String>,
    /// Quote → the conversion or withdrawal created with it.
    created_with: BTreeMap<String, String>,
    counts: FxCounts,
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

/// An app on the simulation's clock, over `store` (a request's view of the service, or
/// the table itself for setting up and the final reconciliation).
fn sim_app(sim: &Sim, store: Arc<dyn Store>, sms: Arc<dyn SmsSender>) -> App {
    let settings = Settings::new(TEST_CODE_SECRET.to_vec()).unwrap();
    App::new(store, sms, Arc::clone(&sim.clock) as Arc<dyn Clock>, settings)
}

/// The quote a quote's or a preview's answer names.
fn quote_id_of(answer: &Answer) -> Option<String> {
    let body: serde_json::Value = serde_json::from_str(&answer.body).ok()?;
    body["id"].as_str().or(body["quote_id"].as_str()).map(str::to_owned)
}

fn cents_to_amount(cents: i64) -> Amount {
    Amount::parse_stored(&format!("{}.{:02}", cents / 100, cents % 100)).unwrap()
}

impl World {
    async fn new(seed: u64, tracing: bool, profile: Profile) -> World {
        let mut rng = SimRng::new(seed);
        let faults = Faults::drawn(&mut rng);
        // A run at thousands of calls a second keeps the service calm: its point is the
        // load, and a hostile service would only slow it down.
        let faults = if profile.tick_per_mille.is_some() {
            Faults {
                index_lag_steps: faults.index_lag_steps,
                ..Faults::NONE
            }
        } else {
            faults
        };
        let sim = Sim::new(seed, faults, Timestamp::from_unix_millis(T0));
        let hash = cheap_hash(PASSWORD);
        let now = sim.clock.now();
        let mut active = Vec::new();
        let mut pending = Vec::new();
        for n in 0..(profile.sellers + rng.below(profile.extra_sellers)) {
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
            sim.add_member(member).await;
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
        // The treasury's first rate, before the clock starts.
        exchange::put_rate(
            &setup,
            RateUpdate {
                pair: Pair::new(Currency::Usd, Currency::Cny).unwrap(),
                mid: Mid::parse("7.2").unwrap(),
                as_of: now,
                confirm_jump: false,
            },
        )
        .await
        .unwrap();
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
            profile,
            next_rate_at: now.plus_seconds(30),
            drawn_quotes: BTreeSet::new(),
            fx: FxBooks::default(),
            event_ids: BTreeSet::new(),
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
        let weights = self.profile.weights;
        loop {
            let mut ticket = self.rng.below(weights.iter().sum());
            let kind = (0..KINDS)
                .find(|kind| {
                    let hit = ticket < weights[*kind];
                    ticket = ticket.saturating_sub(weights[*kind]);
                    hit
                })
                .unwrap();
            let request = match kind {
                COLLECT => Request::Collect {
                    id: self.fresh_id("ord"),
                    member: self.rng.below(self.active.len() as u64) as usize,
                    currency: *self.rng.pick(&Currency::ALL),
                    cents: 1 + self.rng.below(50_000) as i64,
                    available_at: now.plus_seconds(self.rng.below(120) as i64),
                },
                REFUND => {
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
                SETTLE => Request::Settle,
                WITHDRAW => Request::Withdraw {
                    member: self.rng.below(self.active.len() as u64) as usize,
                    key: self.fresh_id("key"),
                    currency: *self.rng.pick(&Currency::ALL),
                    // Mostly within reach of what the seller has, sometimes not.
                    cents: 1 + self.rng.below(40_000) as i64,
                    right_password: self.rng.chance(650),
                    quote: None,
                },
                PAYOUT => {
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
                SEND_CODE => Request::SendCode {
                    member: self.rng.below(self.pending.len() as u64) as usize,
                },
                QUOTE => {
                    let (sell, buy) = if self.rng.chance(600) {
                        (Currency::Usd, Currency::Cny)
                    } else {
                        (Currency::Cny, Currency::Usd)
                    };
                    let sell_fixed = self.rng.chance(500);
                    // In the fixed side's currency: up to $300 or ¥2,000, mostly affordable;
                    // now and then a cent (which may convert to nothing).
                    let most = if (sell == Currency::Usd) == sell_fixed {
                        30_000
                    } else {
                        200_000
                    };
                    let cents = if self.rng.chance(20) {
                        1
                    } else {
                        1 + self.rng.below(most) as i64
                    };
                    Request::Quote {
                        member: self.rng.below(self.active.len() as u64) as usize,
                        sell,
                        buy,
                        sell_fixed,
                        cents,
                    }
                }
                CONVERT => {
                    // Now and then a preview's quote, which serves only its withdrawal.
                    let previews_too = self.rng.chance(30);
                    let quotes = self.succeeded(|r, answer| match r {
                        Request::Quote { member, .. } => Some((*member, quote_id_of(answer)?)),
                        Request::Preview { member, .. } if previews_too => Some((*member, quote_id_of(answer)?)),
                        _ => None,
                    });
                    let Some((member, quote)) = self.pick_quote(quotes) else {
                        continue;
                    };
                    Request::Convert {
                        member,
                        key: self.fresh_id("key"),
                        quote,
                    }
                }
                PREVIEW => Request::Preview {
                    member: self.rng.below(self.active.len() as u64) as usize,
                    // From below the $8.00 minimum fee to more than most sellers hold.
                    cents: 1 + self.rng.below(40_000) as i64,
                },
                PREVIEW_WITHDRAW => {
                    // The withdrawal the preview was for, with its quote.
                    let previews = self.succeeded(|r, answer| match r {
                        Request::Preview { member, cents } => Some((*member, *cents, quote_id_of(answer)?)),
                        _ => None,
                    });
                    let by_quote: BTreeMap<String, (usize, i64)> =
                        previews.into_iter().map(|(m, c, q)| (q, (m, c))).collect();
                    let quotes = by_quote.iter().map(|(q, (m, _))| (*m, q.clone())).collect();
                    let Some((member, quote)) = self.pick_quote(quotes) else {
                        continue;
                    };
                    let mut cents = by_quote[&quote].1;
                    // Now and then the client sends another amount than it previewed.
                    if self.rng.chance(30) {
                        cents += 1;
                    }
                    Request::Withdraw {
                        member,
                        key: self.fresh_id("key"),
                        currency: Currency::Usd,
                        cents,
                        right_password: self.rng.chance(900),
                        quote: Some(quote),
                    }
                }
                CONFIRM_CODE => {
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
                _ => unreachable!(),
            };
            return request;
        }
    }

    /// A quote for a conversion or a withdrawal, from `quotes` (member, id) answered so
    /// far: mostly one no request was drawn for yet; now and then one already used, one
    /// of the other kind (`quote_mismatch`) or another member's (`quote_not_found`).
    fn pick_quote(&mut self, quotes: Vec<(usize, String)>) -> Option<(usize, String)> {
        let fresh: Vec<(usize, String)> = quotes
            .iter()
            .filter(|(_, q)| !self.drawn_quotes.contains(q))
            .cloned()
            .collect();
        let (mut member, quote) = if !fresh.is_empty() && self.rng.chance(850) {
            self.rng.pick(&fresh).clone()
        } else if !quotes.is_empty() {
            self.rng.pick(&quotes).clone()
        } else {
            return None;
        };
        if self.rng.chance(20) {
            member = self.rng.below(self.active.len() as u64) as usize;
        }
        self.drawn_quotes.insert(quote.clone());
        Some((member, quote))
    }

    /// The treasury's next rate: mostly USD-CNY, now and then CNY-USD, within 1 % of
    /// 7.2 (a 10 % jump would need confirming), as of a few seconds ago; now and then a
    /// typo (ten times the rate), refused as out of band.
    fn draw_rate(&mut self) -> Request {
        let (pair, centre) = if self.rng.chance(800) {
            (Pair::new(Currency::Usd, Currency::Cny).unwrap(), 720_000_000_i64)
        } else {
            (Pair::new(Currency::Cny, Currency::Usd).unwrap(), 13_888_889_i64)
        };
        let spread = centre / 100;
        let mut scaled = centre - spread + self.rng.below(2 * spread as u64 + 1) as i64;
        // Only the pair stored from the start: a typo as a pair's first rate would stand.
        if pair.base == Currency::Usd && self.rng.chance(20) {
            scaled *= 10;
        }
        Request::PutRate {
            pair,
            mid: format!("{}.{:08}", scaled / 100_000_000, scaled % 100_000_000),
            as_of: self.sim.clock.now().plus_seconds(-(self.rng.below(5) as i64)),
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
            quote,
        } => {
            let mut event = fund_account_tests::event("withdraw");
            event["headers"]["idempotency-key"] = key.clone().into();
            event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = active[*member].as_str().into();
            let password = if *right_password { PASSWORD } else { "Wrong-Key-2026!" };
            let mut body = serde_json::json!({
                "currency": currency.code(),
                "amount": cents_to_amount(*cents).to_string(),
                "payment_password": password,
                "bank_account": {"holder_name": "Li Wei", "account_number": "6222020200112233", "bank_name": "ICBC"},
            });
            if let Some(quote) = quote {
                body["payout_currency"] = "CNY".into();
                body["quote_id"] = quote.clone().into();
            }
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
        Request::PutRate { pair, mid, as_of } => {
            let update = RateUpdate {
                pair: *pair,
                mid: Mid::parse(mid).unwrap(),
                as_of: *as_of,
                confirm_jump: false,
            };
            Answer::of(exchange::put_rate(app, update).await, |r| {
                r.mid.as_decimal().to_string()
            })
        }
        Request::Quote {
            member,
            sell,
            buy,
            sell_fixed,
            cents,
        } => {
            let amount = cents_to_amount(*cents);
            let request = QuoteRequest {
                sell: *sell,
                buy: *buy,
                fixed: if *sell_fixed {
                    Fixed::Sell(amount)
                } else {
                    Fixed::Buy(amount)
                },
            };
            Answer::of(exchange::create_quote(app, &active[*member], request).await, |q| {
                serde_json::to_string(&q).unwrap()
            })
        }
        Request::Convert { member, key, quote } => {
            let key = IdempotencyKey::parse(key).unwrap();
            let quote = QuoteId::parse(quote).unwrap();
            Answer::of(exchange::convert(app, &active[*member], &key, &quote).await, |c| {
                serde_json::to_string(&c.conversion).unwrap()
            })
        }
        Request::Preview { member, cents } => Answer::of(
            exchange::preview(
                app,
                &active[*member],
                Currency::Usd,
                cents_to_amount(*cents),
                Currency::Cny,
            )
            .await,
            |p| {
                serde_json::json!({
                    "amount": p.amount.to_string(),
                    "fee": p.fee.to_string(),
                    "net_amount": p.net_amount.to_string(),
                    "payout_amount": p.payout_amount.to_string(),
                    "quote_id": p.quote.map(|q| q.id.to_string()),
                })
                .to_string()
            },
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
        Write::PutRun(_) | Write::PutDoc { .. } | Write::DeleteDoc { .. } | Write::AdjustPlatform { .. } => None,
    }
}

fn currency_slot(currency: Currency) -> usize {
    match currency {
        Currency::Usd => 0,
        Currency::Cny => 1,
    }
}

/// The sum of a platform shard's entries in the table.
async fn platform_entries_sum(store: &dyn Store, shard: PlatformShard) -> Amount {
    let entries = every_page(
        |page| async move { store.platform_entries(shard, &page).await },
        |e| e.id.clone(),
    )
    .await;
    entries
        .iter()
        .try_fold(Amount::ZERO, |sum, e| sum.checked_add(e.amount))
        .unwrap()
}

/// Every document of a partition.
async fn all_docs(store: &dyn Store, partition: &str) -> Vec<Doc> {
    every_page(
        |page| async move { store.doc_page(partition, &page).await },
        |d| d.key.sort.clone(),
    )
    .await
}

/// Every item of a newest-first listing, newest first, a page of 100 at a time.
async fn every_page<T, Fut>(fetch: impl Fn(PageRequest) -> Fut, id: impl Fn(&T) -> String) -> Vec<T>
where
    Fut: std::future::Future<Output = Result<fund_account::store::Page<T>, StoreError>>,
{
    let mut items = Vec::new();
    let mut before = None;
    loop {
        let page = fetch(PageRequest { limit: 100, before }).await.unwrap();
        before = page.items.last().map(&id);
        items.extend(page.items);
        if !page.more {
            return items;
        }
    }
}

/// Every success for one Idempotency-Key answers the first one's body, byte for byte.
fn same_as_first_body(first_bodies: &mut BTreeMap<String, String>, key: &str, body: &str) -> Result<(), String> {
    let first = first_bodies.entry(key.to_owned()).or_insert_with(|| body.to_owned());
    if first != body {
        return Err(format!("key {key} answered {first} and then {body}"));
    }
    Ok(())
}

/// `creator` (a conversion or a withdrawal) was made with `quote` for these (sell, buy)
/// amounts: nothing else used it, and the stored quote names it and has them.
async fn check_served(
    served: &mut BTreeMap<String, String>,
    member: &MemberId,
    quote: &QuoteId,
    creator: &str,
    amounts: (Amount, Amount),
    store: &dyn Store,
) -> Result<(), String> {
    if let Some(other) = served.insert(quote.to_string(), creator.to_owned()) {
        return Err(format!("quote {quote} serves {other} and {creator}"));
    }
    let stored = stored_quote(store, member, quote).await;
    match &stored {
        Some(q) if q.used_by.as_deref() == Some(creator) && (q.sell_amount, q.buy_amount) == amounts => Ok(()),
        _ => Err(format!(
            "{creator} was made with {amounts:?} but its quote is {stored:?}"
        )),
    }
}

/// What a quote promises: whose it is, and what it sells for what at which rate.
fn terms_of(quote: &Quote) -> (&MemberId, Currency, Amount, Currency, Amount, Decimal) {
    (
        &quote.member_id,
        quote.sell_currency,
        quote.sell_amount,
        quote.buy_currency,
        quote.buy_amount,
        quote.rate,
    )
}

/// A member's quote as stored.
async fn stored_quote(store: &dyn Store, member: &MemberId, quote: &QuoteId) -> Option<Quote> {
    let doc = store
        .docs(&[exchange::keys::quote(member, quote)])
        .await
        .unwrap()
        .pop()
        .flatten()?;
    Some(doc.parse().unwrap())
}

/// The contract's rounding: the member never receives more than `sell_amount × rate`;
/// a fixed sell amount buys that rounded down to the cent, a fixed buy amount costs the
/// fewest cents that buy it.
fn check_rounding(quote: &Quote, sell_fixed: bool) -> Result<(), String> {
    let decimal = |amount: Amount| Decimal::from_i128_with_scale(amount.to_cents(), 2);
    let cent = Decimal::new(1, 2);
    let (sell, buy) = (decimal(quote.sell_amount), decimal(quote.buy_amount));
    let worth = sell * quote.rate;
    let tight = if sell_fixed {
        buy + cent > worth
    } else {
        (sell - cent) * quote.rate < buy
    };
    if buy > worth || !tight || buy.is_zero() {
        return Err(format!(
            "quote {} sells {sell} for {buy} at {}: not the contract's rounding",
            quote.id, quote.rate
        ));
    }
    Ok(())
}

/// Every ledger entry of a member in one currency, oldest first.
async fn all_entries(store: &dyn Store, member: &MemberId, currency: Currency) -> Vec<LedgerEntry> {
    let mut entries = every_page(
        |page| async move { store.ledger(member, Some(currency), &page).await },
        |e| e.id.clone(),
    )
    .await;
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
        let (collection_ids, refund_ids, keys, conversion_keys) = {
            let journal = self.journal.lock().unwrap();
            let mut collections = BTreeSet::new();
            let mut member_of_collection = BTreeMap::new();
            let mut refunds = BTreeSet::new();
            let mut keys = BTreeSet::new();
            let mut conversion_keys = BTreeSet::new();
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
                    Request::Convert { member, key, .. } if members.contains(&self.active[*member].id) => {
                        conversion_keys.insert((self.active[*member].id.clone(), key.clone()));
                    }
                    _ => {}
                }
            }
            (collections, refunds, keys, conversion_keys)
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
        // Each quote serves one conversion or withdrawal, which its `used_by` names.
        let mut served: BTreeMap<String, String> = BTreeMap::new();
        let mut conversion_ids = BTreeMap::new();
        for member in members {
            for doc in all_docs(table, &exchange::keys::conversions(member)).await {
                let c: Conversion = doc.parse().unwrap();
                let id = c.id.as_str();
                conversion_ids.insert(id.to_owned(), c.clone());
                expect(id, EntryType::ConversionOut, Bucket::Available, c.sell_amount.negated());
                expect(id, EntryType::ConversionIn, Bucket::Available, c.buy_amount);
                check_served(
                    &mut served,
                    member,
                    &c.quote_id,
                    id,
                    (c.sell_amount, c.buy_amount),
                    table,
                )
                .await?;
            }
        }
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
                    if let Some(payout) = &w.payout {
                        let amounts = (w.net_amount, payout.amount);
                        check_served(&mut served, member, &payout.quote_id, id, amounts, table).await?;
                    }
                    expect(id, EntryType::Withdrawal, Bucket::Available, w.amount.negated());
                    expect(id, EntryType::Withdrawal, Bucket::InTransit, w.amount);
                    match w.status {
                        WithdrawalStatus::Processing => {}
                        WithdrawalStatus::Paid => {
                            // The fee leaves on an entry of its own (none when it is zero).
                            expect(id, EntryType::WithdrawalPaid, Bucket::InTransit, w.net_amount.negated());
                            if !w.fee.is_zero() {
                                expect(id, EntryType::WithdrawalFee, Bucket::InTransit, w.fee.negated());
                            }
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
        // Exactly once per key: the keys' records name exactly the withdrawals and the
        // conversions stored, each as stored.
        let (mut keyed_withdrawals, mut keyed_conversions) = (BTreeSet::new(), BTreeSet::new());
        for (member, key) in keys.iter().chain(&conversion_keys) {
            let Some(record) = table.idempotency_record(member, key).await.unwrap() else {
                continue;
            };
            let for_conversion = conversion_keys.contains(&(member.clone(), key.clone()));
            let (id, once) = match &record.created {
                Created::Withdrawal(w) if !for_conversion => {
                    (w.id.to_string(), keyed_withdrawals.insert(w.id.to_string()))
                }
                Created::Conversion(c) if for_conversion && conversion_ids.get(c.id.as_str()) == Some(c) => {
                    (c.id.to_string(), keyed_conversions.insert(c.id.to_string()))
                }
                created => return Err(format!("key {key} holds {created:?}")),
            };
            if !once {
                return Err(format!("{id} is held by two keys"));
            }
        }
        if keyed_withdrawals != withdrawal_ids || keyed_conversions.iter().ne(conversion_ids.keys()) {
            return Err(format!(
                "withdrawals {withdrawal_ids:?} and conversions {:?}, but keys hold {keyed_withdrawals:?} and {keyed_conversions:?}: one without its key, or a key without it",
                conversion_ids.keys()
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

    /// Each commit that landed since the last step, as written: every ledger transaction
    /// in it sums to zero in each currency across the member's entries and the platform's;
    /// a quote is spent once, in the commit that creates the conversion or withdrawal it
    /// serves, on its terms; a conversion moves exactly its quote's amounts out of and
    /// into `available`. Then every platform shard written equals, in the table, the sum
    /// of its entries.
    async fn check_commits(&mut self, applied: &[(OpId, Vec<Write>)]) -> Result<(), String> {
        let mut shards = BTreeSet::new();
        for (_, writes) in applied {
            let mut sums: BTreeMap<String, [Amount; 2]> = BTreeMap::new();
            let mut add = |transaction: &str, currency: Currency, amount: Amount| {
                let slot =
                    &mut sums.entry(transaction.to_owned()).or_insert([Amount::ZERO; 2])[currency_slot(currency)];
                *slot = slot.checked_add(amount).unwrap();
            };
            let mut quotes: BTreeMap<String, Quote> = BTreeMap::new();
            let mut conversions: Vec<Conversion> = Vec::new();
            let mut withdrawals = Vec::new();
            let mut adjusted = BTreeMap::new();
            // The movements (transactions with a member's entries), their outbox events
            // and notifications.
            let mut movements: BTreeSet<String> = BTreeSet::new();
            let mut outbox: Vec<(String, OutboxEvent)> = Vec::new();
            let mut notifications: Vec<String> = Vec::new();
            for write in writes {
                match write {
                    Write::AppendLedger(entry) => match &entry.transaction {
                        Some(transaction) => {
                            movements.insert(transaction.clone());
                            add(transaction, entry.currency, entry.amount)
                        }
                        None => {
                            return Err(format!(
                                "ledger entry {} of {} belongs to no transaction",
                                entry.id, entry.reference
                            ))
                        }
                    },
                    Write::AppendPlatformEntry(entry) => {
                        add(&entry.transaction, entry.currency, entry.amount);
                        shards.insert(entry.shard());
                    }
                    Write::AdjustPlatform { shard, .. } => {
                        shards.insert(*shard);
                    }
                    // The balance item's moves (a conversion's); pending shards are
                    // checked through the books.
                    Write::AdjustBalance {
                        member_id,
                        currency,
                        part: BalancePart::Main,
                        deltas,
                    } => {
                        adjusted.insert((member_id.clone(), *currency), deltas.iter().collect::<Vec<_>>());
                    }
                    Write::PutDoc { doc, expect } => {
                        let partition = doc.key.partition.as_str();
                        if partition.starts_with("QUOTES#") && doc.key.sort != "BOOK" {
                            let quote: Quote = doc.parse().map_err(|e| e.to_string())?;
                            if *expect == Expect::Absent {
                                self.fx.counts.quotes += 1;
                            }
                            quotes.insert(quote.id.to_string(), quote);
                        } else if partition.starts_with("CONVERSIONS#") {
                            conversions.push(doc.parse().map_err(|e| e.to_string())?);
                        } else if partition.starts_with("FXRATE#") && doc.key.sort == "CURRENT" {
                            self.fx.counts.rates += 1;
                        } else if partition.starts_with("OUTBOX#") {
                            if *expect != Expect::Absent {
                                return Err(format!("outbox item {} is written over", doc.key.identity()));
                            }
                            outbox.push((doc.key.sort.clone(), doc.parse().map_err(|e| e.to_string())?));
                        } else if partition.starts_with("NOTIFY#") {
                            notifications.push(doc.key.sort.clone());
                        }
                    }
                    Write::PutWithdrawal { withdrawal, expect } if withdrawal.payout.is_some() => {
                        if *expect == Expect::Absent {
                            withdrawals.push(withdrawal.clone());
                        } else if withdrawal.status == WithdrawalStatus::Paid {
                            self.fx.counts.fx_paid += 1;
                        }
                    }
                    _ => {}
                }
            }
            // Each movement commits exactly one event, and each event its movement (a
            // fully refunded collection settles without moving money, but with its event);
            // a withdrawal's event comes with exactly one notification, no other with any.
            for movement in &movements {
                let events = outbox.iter().filter(|(sort, _)| sort == movement).count();
                if events != 1 {
                    return Err(format!("movement {movement} commits {events} outbox events"));
                }
            }
            for (sort, event) in &outbox {
                if !movements.contains(sort) && event.event_type != EventType::CollectionSettled {
                    return Err(format!("outbox event {} without its movement {sort}", event.id));
                }
                let notified = notifications.iter().filter(|n| *n == sort).count();
                if notified != usize::from(event.event_type.notifies()) {
                    return Err(format!(
                        "{} event {} commits {notified} notifications",
                        event.event_type.as_str(),
                        event.id
                    ));
                }
                if !self.event_ids.insert(event.id.clone()) {
                    return Err(format!("event {} is put in the outbox twice", event.id));
                }
            }
            if notifications.len() != outbox.iter().filter(|(_, e)| e.event_type.notifies()).count() {
                return Err(format!("a commit's notifications {notifications:?} have no event"));
            }
            for (transaction, sums) in &sums {
                for currency in Currency::ALL {
                    let sum = sums[currency_slot(currency)];
                    if !sum.is_zero() {
                        return Err(format!("transaction {transaction} sums to {sum} in {currency}"));
                    }
                }
            }
            // What the commit creates with a quote: (creator, quote, the terms it must have).
            let mut created: Vec<(String, String)> = Vec::new();
            for c in &conversions {
                self.fx.counts.conversions += 1;
                created.push((c.id.to_string(), c.quote_id.to_string()));
                let Some(quote) = quotes.get(c.quote_id.as_str()) else {
                    return Err(format!("conversion {} does not spend its quote {}", c.id, c.quote_id));
                };
                let terms = (
                    &c.member_id,
                    c.sell_currency,
                    c.sell_amount,
                    c.buy_currency,
                    c.buy_amount,
                    c.rate,
                );
                if quote.purpose != QuotePurpose::Conversion || terms_of(quote) != terms {
                    return Err(format!("conversion {c:?} is not on its quote's terms {quote:?}"));
                }
                let moved = |currency: Currency| adjusted.get(&(c.member_id.clone(), currency)).cloned();
                if moved(c.sell_currency) != Some(vec![(Bucket::Available, c.sell_amount.negated())])
                    || moved(c.buy_currency) != Some(vec![(Bucket::Available, c.buy_amount)])
                {
                    return Err(format!(
                        "conversion {} of {} {} for {} {} moved {:?} and {:?}",
                        c.id,
                        c.sell_amount,
                        c.sell_currency,
                        c.buy_amount,
                        c.buy_currency,
                        moved(c.sell_currency),
                        moved(c.buy_currency)
                    ));
                }
            }
            for w in &withdrawals {
                self.fx.counts.fx_withdrawals += 1;
                let payout = w.payout.as_ref().unwrap();
                created.push((w.id.to_string(), payout.quote_id.to_string()));
                let Some(quote) = quotes.get(payout.quote_id.as_str()) else {
                    return Err(format!(
                        "withdrawal {} does not spend its quote {}",
                        w.id, payout.quote_id
                    ));
                };
                let purpose = QuotePurpose::Withdrawal {
                    amount: w.amount,
                    fee: w.fee,
                };
                let terms = (
                    &w.member_id,
                    w.currency,
                    w.net_amount,
                    payout.currency,
                    payout.amount,
                    payout.rate,
                );
                if quote.purpose != purpose || terms_of(quote) != terms {
                    return Err(format!("withdrawal {w:?} is not on its quote's terms {quote:?}"));
                }
            }
            // A quote is marked used once, by what the same commit creates with it.
            for (id, quote) in &quotes {
                let Some(used_by) = &quote.used_by else { continue };
                if let Some(before) = self.fx.used_by.insert(id.clone(), used_by.clone()) {
                    return Err(format!("quote {id} was used by {before} and then by {used_by}"));
                }
                if !created.contains(&(used_by.clone(), id.clone())) {
                    return Err(format!(
                        "quote {id} was marked used by {used_by}, which the commit does not create"
                    ));
                }
            }
            for (creator, quote) in created {
                if quotes.get(&quote).and_then(|q| q.used_by.as_ref()) != Some(&creator) {
                    return Err(format!(
                        "{creator} was created with quote {quote} without marking it used"
                    ));
                }
                if let Some(before) = self.fx.created_with.insert(quote.clone(), creator.clone()) {
                    return Err(format!("quote {quote} served {before} and {creator}"));
                }
            }
        }
        let table = &self.sim.table;
        let balances = table.platform_balances().await.unwrap();
        for shard in shards {
            let balance = balances
                .iter()
                .find(|(s, _)| *s == shard)
                .map_or(Amount::ZERO, |(_, b)| *b);
            let sum = platform_entries_sum(table, shard).await;
            if balance != sum {
                return Err(format!(
                    "platform shard {} is {balance} but its entries sum to {sum}",
                    shard.name()
                ));
            }
        }
        Ok(())
    }

    /// The limits, from the commits that landed since the last step: a payment password
    /// is never found wrong more than five times without a lock, and a code never checked
    /// more than five times.
    /// Returns the members whose items the landed commits wrote (only their books can have
    /// changed).
    fn check_limits(&mut self, applied: Vec<(OpId, Vec<Write>)>) -> Result<BTreeSet<MemberId>, String> {
        let journal = self.journal.lock().unwrap();
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
                Request::Withdraw { key, quote, .. } => {
                    same_as_first_body(&mut self.first_bodies, key, &answer.body)?;
                    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
                    let id = WithdrawalId::parse(body["id"].as_str().unwrap()).unwrap();
                    let Some(stored) = table.withdrawal(&id).await.unwrap() else {
                        return Err(format!("withdrawal {id} answered success but is not stored"));
                    };
                    let payout = stored.payout.as_ref().map(|p| (p.currency, p.quote_id.to_string()));
                    let payout_amount = stored.payout.as_ref().map_or(stored.net_amount, |p| p.amount);
                    if payout != quote.clone().map(|q| (Currency::Cny, q))
                        || body["quote_id"].as_str() != quote.as_deref()
                        || body["payout_amount"].as_str() != Some(payout_amount.to_string().as_str())
                    {
                        return Err(format!("withdrawal {id} answered {body} but is stored as {stored:?}"));
                    }
                }
                Request::Convert { member, key, .. } => {
                    same_as_first_body(&mut self.first_bodies, key, &answer.body)?;
                    let answered: Conversion = serde_json::from_str(&answer.body).unwrap();
                    let key = exchange::keys::conversion(&self.active[*member].id, &answered.id);
                    let stored: Option<Conversion> = table
                        .docs(&[key])
                        .await
                        .unwrap()
                        .pop()
                        .flatten()
                        .map(|d| d.parse().unwrap());
                    if stored.as_ref() != Some(&answered) {
                        return Err(format!(
                            "conversion {answered:?} answered success but is stored as {stored:?}"
                        ));
                    }
                }
                Request::Quote {
                    member,
                    sell,
                    buy,
                    sell_fixed,
                    cents,
                } => {
                    let answered: Quote = serde_json::from_str(&answer.body).unwrap();
                    let stored = stored_quote(table, &self.active[*member].id, &answered.id).await;
                    let fixed = if *sell_fixed {
                        answered.sell_amount
                    } else {
                        answered.buy_amount
                    };
                    if stored.is_none_or(|q| Quote { used_by: None, ..q } != answered)
                        || (answered.sell_currency, answered.buy_currency, fixed)
                            != (*sell, *buy, cents_to_amount(*cents))
                    {
                        return Err(format!(
                            "{request:?} answered {answered:?}, not stored as such or not as asked"
                        ));
                    }
                    check_rounding(&answered, *sell_fixed)?;
                }
                Request::Preview { member, cents } => {
                    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
                    let id = QuoteId::parse(body["quote_id"].as_str().unwrap()).unwrap();
                    let quote = stored_quote(table, &self.active[*member].id, &id).await;
                    let shown = |field: &str| Amount::parse_stored(body[field].as_str().unwrap()).unwrap();
                    let purpose = QuotePurpose::Withdrawal {
                        amount: cents_to_amount(*cents),
                        fee: shown("fee"),
                    };
                    if quote.as_ref().is_none_or(|q| {
                        (&q.purpose, q.sell_amount, q.buy_amount)
                            != (&purpose, shown("net_amount"), shown("payout_amount"))
                    }) {
                        return Err(format!("preview {body} but its quote is {quote:?}"));
                    }
                    check_rounding(quote.as_ref().unwrap(), true)?;
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
            if let Request::Collect { id, .. }
            | Request::Refund { id, .. }
            | Request::Withdraw { key: id, .. }
            | Request::Convert { key: id, .. } = request
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
                Request::Withdraw { member, key, .. } | Request::Convert { member, key, .. } if refused_only(key) => {
                    table
                        .idempotency_record(&self.active[*member].id, key)
                        .await
                        .unwrap()
                        .is_some()
                }
                _ => false,
            };
            if left {
                return Err(format!("{request:?} was refused every time, yet it left a record"));
            }
        }
        Ok(())
    }

    /// Ambiguous answers (503, a crash) are retried by their clients, as the same request.
    /// And a client that got a quote mostly converts with it, one that got a preview
    /// mostly withdraws with its quote: those requests are queued the same way.
    fn queue_retries(&mut self, answered: &[(Request, Option<Answer>)]) {
        for (request, answer) in answered {
            let retry = answer.as_ref().is_none_or(Answer::ambiguous);
            if retry && self.rng.chance(700) {
                self.retries.push(request.clone());
            }
            // (A withdrawal's answer names the withdrawal.)
            let Some(quote) = answer.as_ref().filter(|a| a.succeeded()).and_then(quote_id_of) else {
                continue;
            };
            let next = match request {
                // The payout processor reports on a cross-currency withdrawal.
                Request::Withdraw { quote: Some(_), .. } if self.rng.chance(600) => {
                    let id = quote;
                    self.retries.push(if self.rng.chance(800) {
                        Request::Paid { id }
                    } else {
                        Request::Returned { id }
                    });
                    continue;
                }
                Request::Quote { member, .. } if self.rng.chance(700) => Request::Convert {
                    member: *member,
                    key: self.fresh_id("key"),
                    quote: quote.clone(),
                },
                Request::Preview { member, cents } if self.rng.chance(800) => Request::Withdraw {
                    member: *member,
                    key: self.fresh_id("key"),
                    currency: Currency::Usd,
                    cents: *cents,
                    right_password: self.rng.chance(900),
                    quote: Some(quote.clone()),
                },
                _ => continue,
            };
            self.drawn_quotes.insert(quote);
            self.retries.push(next);
        }
    }
}

/// Runs one seed to the end; `Err` says which invariant broke, after which step.
async fn simulate(seed: u64, tracing: bool, profile: Profile) -> Result<Outcome, (String, Vec<String>)> {
    let mut world = World::new(seed, tracing, profile).await;
    let budget = profile.budget + world.rng.below(profile.budget_spread) as usize;
    let mut started = 0;
    let mut answered_before = BTreeSet::new();
    loop {
        world.sim.quiescent().await;
        let step = world.sim.step();
        let fail =
            |world: &World, message: String| (format!("seed {seed}, step {step}: {message}"), world.trace.clone());
        let applied = world.sim.take_applied();
        if let Err(message) = world.check_commits(&applied).await {
            return Err(fail(&world, message));
        }
        match world.check_limits(applied) {
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
        // Time moves a little every step (ids stay in order), sometimes a lot; or, at
        // thousands of calls a second, a millisecond every few steps.
        let millis = match profile.tick_per_mille {
            Some(per_mille) => i64::from(world.rng.chance(per_mille)),
            None if world.rng.chance(2) => 31 * 60 * 1000,
            None => 1 + world.rng.below(2_000) as i64,
        };
        world.sim.clock.advance_millis(millis);
        // The treasury sends a reference rate every 20 s to 2 minutes (quotes refuse one
        // older than 5), and now and then misses one.
        let now = world.sim.clock.now();
        if can_start && now >= world.next_rate_at {
            world.next_rate_at = now.plus_seconds(20 + world.rng.below(100) as i64);
            if !world.rng.chance(50) {
                let rate = world.draw_rate();
                world.start(rate);
            }
        }
        let room = world.sim.live() < profile.max_live;
        if can_start && room && (parked.is_empty() || world.rng.chance(profile.start)) {
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
                            quote: None,
                        });
                    }
                }
                // A burst on one quote: up to 20 conversions in parallel with different
                // keys, some of them sent again with the same key.
                Request::Convert { member, key, quote } if world.rng.chance(150) => {
                    let mut keys = vec![key];
                    for _ in 0..1 + world.rng.below(19) {
                        let key = if world.rng.chance(200) {
                            world.rng.pick(&keys).clone()
                        } else {
                            keys.push(world.fresh_id("key"));
                            keys.last().unwrap().clone()
                        };
                        world.start(Request::Convert {
                            member,
                            key,
                            quote: quote.clone(),
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
    // Every member's balances and every platform account sum to zero in each currency.
    let mut total = [Amount::ZERO; 2];
    for member in world.members() {
        let balances = world.sim.table.balances(&member).await.unwrap();
        for currency in Currency::ALL {
            for bucket in Bucket::ALL {
                let slot = &mut total[currency_slot(currency)];
                *slot = slot.checked_add(balances.get(currency).get(bucket)).unwrap();
            }
        }
    }
    // The reconciliation of the final state, once the indexes have caught up and every
    // entry is old enough for its zero-sum check, finds nothing.
    world.sim.settle_indexes();
    world
        .sim
        .clock
        .advance_seconds(reconciliation::BOOKS_SETTLE_SECONDS + 60);
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
    for account in exchange::platform_balances(&app).await.unwrap() {
        let slot = &mut total[currency_slot(account.currency)];
        *slot = slot.checked_add(account.balance).unwrap();
    }
    if let Some(currency) = Currency::ALL.into_iter().find(|c| !total[currency_slot(*c)].is_zero()) {
        return Err((
            format!(
                "seed {seed}: members' and platform accounts sum to {} in {currency}",
                total[currency_slot(currency)]
            ),
            world.trace,
        ));
    }
    let report = reconciliation::run(&app, options).await.unwrap();
    // Nothing busy: the platform's side and the zero sum were checked too.
    if !report.discrepancies.is_empty() || report.accounts_busy != 0 {
        return Err((
            format!(
                "seed {seed}: the reconciliation found {:?} ({} accounts busy)",
                report.discrepancies, report.accounts_busy
            ),
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
    // Writes per item and simulated second: each platform shard, each member's balance
    // item, and each platform account's shards together (what one unsharded item takes).
    let mut accounts: BTreeMap<(String, i64), u32> = BTreeMap::new();
    for ((item, second), writes) in world.sim.writes_per_second("platform/") {
        let account = item
            .rsplit_once('#')
            .map_or(item.clone(), |(account, _)| account.to_owned());
        *accounts.entry((account, second)).or_insert(0) += writes;
    }
    let mut answers = BTreeMap::new();
    for (request, answer) in world.journal.lock().unwrap().entries.values() {
        let (Some(kind), Some(answer)) = (fx_kind(request), answer) else {
            continue;
        };
        let what = match answer {
            Some(a) if a.succeeded() => format!("{kind} ok"),
            // An HTTP answer's body is a problem document: its code.
            Some(a) => {
                let body: Option<serde_json::Value> = serde_json::from_str(&a.body).ok();
                let code = body.as_ref().and_then(|b| b["code"].as_str()).unwrap_or(&a.body);
                format!("{kind} {} {code}", a.status)
            }
            None => format!("{kind} crashed"),
        };
        *answers.entry(what).or_insert(0) += 1;
    }
    Ok(Outcome {
        refused: world.sim.refused(),
        granted: world.sim.granted(),
        steps: world.sim.step(),
        requests,
        throttled,
        conflicts,
        fx: world.fx.counts,
        answers,
        hottest_shard: world.sim.hottest("platform/"),
        hottest_balance: world.sim.hottest("balance/"),
        hottest_account: accounts
            .into_iter()
            .map(|((account, second), writes)| (writes, account, second))
            .max(),
    })
}

/// The FX side of many seeds' outcomes, and the busiest items: their sums and maxima.
#[derive(Default)]
struct FxTotals {
    counts: FxCounts,
    answers: BTreeMap<String, u64>,
    hottest_shard: Option<(u32, String, i64)>,
    hottest_balance: Option<(u32, String, i64)>,
    hottest_account: Option<(u32, String, i64)>,
}

impl FxTotals {
    fn add(&mut self, o: &Outcome) {
        let c = &mut self.counts;
        c.rates += o.fx.rates;
        c.quotes += o.fx.quotes;
        c.conversions += o.fx.conversions;
        c.fx_withdrawals += o.fx.fx_withdrawals;
        c.fx_paid += o.fx.fx_paid;
        for (answer, n) in &o.answers {
            *self.answers.entry(answer.clone()).or_insert(0) += n;
        }
        self.hottest_shard = self.hottest_shard.clone().max(o.hottest_shard.clone());
        self.hottest_balance = self.hottest_balance.clone().max(o.hottest_balance.clone());
        self.hottest_account = self.hottest_account.clone().max(o.hottest_account.clone());
    }
}

impl std::fmt::Display for FxTotals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counts;
        writeln!(
            f,
            "FX commits: {} rates, {} quotes, {} conversions, {} cross-currency withdrawals ({} paid)",
            c.rates, c.quotes, c.conversions, c.fx_withdrawals, c.fx_paid
        )?;
        writeln!(f, "FX answers: {:?}", self.answers)?;
        let show = |hot: &Option<(u32, String, i64)>| match hot {
            Some((writes, item, second)) => format!("{writes} ({item}, second {second})"),
            None => "none".to_owned(),
        };
        writeln!(
            f,
            "most writes to one item in one simulated second: platform shard {}; member balance {}; one platform account's shards together (a single unsharded item) {}",
            show(&self.hottest_shard),
            show(&self.hottest_balance),
            show(&self.hottest_account)
        )
    }
}

/// The FX requests' kind, for counting their answers.
fn fx_kind(request: &Request) -> Option<&'static str> {
    match request {
        Request::PutRate { .. } => Some("rate"),
        Request::Quote { .. } => Some("quote"),
        Request::Convert { .. } => Some("convert"),
        Request::Preview { .. } => Some("preview"),
        Request::Withdraw { quote: Some(_), .. } => Some("fx withdrawal"),
        _ => None,
    }
}

fn run_seed(seed: u64, tracing: bool) -> Result<Outcome, (String, Vec<String>)> {
    paused_runtime().block_on(simulate(seed, tracing, Profile::MIXED))
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

/// A seed replays the same schedule, though ids (and so the platform shard a transaction
/// writes) come from the OS's random source: the same steps, conflicts, refusals and
/// faults, run after run.
#[test]
fn a_seed_replays_the_same_schedule() {
    for seed in [1, 10, 19] {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let o = run_seed(seed, false).unwrap_or_else(|(message, _)| panic!("{message}"));
                (o.steps, o.requests, o.conflicts, o.refused, o.granted, o.answers)
            })
            .collect();
        assert_eq!(runs[0], runs[1], "seed {seed} ran two ways");
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
    let seeds = env_u64("SIM_SEEDS").unwrap_or(600);
    let first = env_u64("SIM_FIRST_SEED").unwrap_or(0);
    // One thread per core: each runs every other seed on its own runtime.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let started = Instant::now();
    let totals = Arc::new(Mutex::new((0u64, 0u64, 0u64, 0u64)));
    let refused = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let fx = Arc::new(Mutex::new(FxTotals::default()));
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let totals = Arc::clone(&totals);
                let refused = Arc::clone(&refused);
                let fx = Arc::clone(&fx);
                scope.spawn(move || {
                    for seed in (first + t..first + seeds).step_by(threads as usize) {
                        match run_seed(seed, false) {
                            Ok(o) => {
                                let mut totals = totals.lock().unwrap();
                                totals.0 += o.steps;
                                totals.1 += o.requests as u64;
                                totals.2 += o.conflicts;
                                totals.3 += o.throttled;
                                fx.lock().unwrap().add(&o);
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
    println!("{}", fx.lock().unwrap());
    assert!(
        failures.is_empty(),
        "{}\nreplay with SIM_SEED=<seed> cargo test -p fund-account-tests --test sim -- --nocapture",
        failures.join("\n")
    );
}

/// Issue 12, point 6: the platform's accounts are never a single hot item. 100 sellers,
/// three requests in four collections (each writes a clearing shard), with conversions
/// and cross-currency payouts (the FX position, fee revenue), at a few thousand store
/// calls a simulated second, every invariant checked after every step. Counted: the most
/// writes any one item took in one simulated second — a platform shard, a member's
/// balance, and all the shards of one platform account together (what a single
/// unsharded item would have had to take). `SIM_HEAVY_SEEDS=n` runs more seeds.
#[test]
fn platform_shards_stay_cool_under_a_collection_heavy_load() {
    let seeds = env_u64("SIM_HEAVY_SEEDS").unwrap_or(1);
    let mut totals = FxTotals::default();
    for seed in 0..seeds {
        let started = Instant::now();
        let outcome = paused_runtime()
            .block_on(simulate(seed, false, Profile::COLLECTION_HEAVY))
            .unwrap_or_else(|(message, _)| panic!("{message}"));
        let writes = |hot: &Option<(u32, String, i64)>| hot.as_ref().map_or(0, |(writes, _, _)| *writes);
        println!(
            "heavy seed {seed}: {} requests, {} steps, {} conflicts, {} throttled in {:.1} s; busiest second: {} writes to one account, {} to one of its shards",
            outcome.requests,
            outcome.steps,
            outcome.conflicts,
            outcome.throttled,
            started.elapsed().as_secs_f64(),
            writes(&outcome.hottest_account),
            writes(&outcome.hottest_shard),
        );
        totals.add(&outcome);
    }
    println!("{totals}");
    let (shard, _, _) = totals.hottest_shard.clone().unwrap();
    let (account, _, _) = totals.hottest_account.clone().unwrap();
    // A transactional write costs two units of an item's 1,000 a second: 500 writes.
    assert!(
        account > 500,
        "the busiest platform account took {account} writes in its busiest second, no more than one item takes: the load is too light to show anything, or its items are the bottleneck"
    );
    assert!(shard < 250, "a platform shard took {shard} writes in one second");
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
        let second = committer(&sim, vec![index_member("m-2"), index_member("m-4")], 1, &results);
        let apart = committer(&sim, vec![index_member("m-3"), index_member("m-5")], 1, &results);
        // One item alone is a plain `PutItem`: refused all the same while a transaction
        // holds its item, and never in flight itself.
        let plain = committer(&sim, vec![index_member("m-1")], 1, &results);
        let plain_apart = committer(&sim, vec![index_member("m-6")], 1, &results);
        sim.quiescent().await;
        assert_eq!(sim.advance(first), Step::Prepared(first));
        assert_eq!(sim.advance(second), Step::Conflict(second));
        assert_eq!(sim.advance(plain), Step::Conflict(plain));
        assert_eq!(sim.advance(plain_apart), Step::Granted(plain_apart, "applied"));
        assert_eq!(sim.advance(apart), Step::Prepared(apart));
        assert_eq!(sim.advance(apart), Step::Granted(apart, "applied"));
        assert_eq!(sim.advance(first), Step::Granted(first, "applied"));
        sim.quiescent().await;
        let results = results.lock().unwrap().clone();
        for refused in [second, plain] {
            assert_eq!(
                results.iter().find(|(op, _)| *op == refused).map(|(_, r)| r.clone()),
                Some(Err(StoreError::Contention))
            );
        }
        assert!(results
            .iter()
            .filter(|(op, _)| *op != second && *op != plain)
            .all(|(_, r)| r.is_ok()));
    });
}

#[test]
fn an_item_past_1000_write_units_in_a_second_is_throttled() {
    paused_runtime().block_on(async {
        let sim = Sim::new(1, Faults::NONE, Timestamp::from_unix_millis(T0));
        let results = Results::default();
        // A transactional write costs two units: 500 fit in one second, the 501st does not.
        let transaction = vec![index_member("hot"), index_member("hot-too")];
        committer(&sim, transaction.clone(), 501, &results);
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
        committer(&sim, transaction, 1, &results);
        loop {
            sim.quiescent().await;
            let Some(op) = sim.parked().first().copied() else { break };
            sim.advance(op);
        }
        assert!(results.lock().unwrap()[501].1.is_ok());
    });
}

#[test]
fn a_plain_write_costs_one_unit_so_1000_fit_in_a_second() {
    paused_runtime().block_on(async {
        let sim = Sim::new(1, Faults::NONE, Timestamp::from_unix_millis(T0));
        let results = Results::default();
        committer(&sim, vec![index_member("hot")], 1001, &results);
        loop {
            sim.quiescent().await;
            let Some(op) = sim.parked().first().copied() else { break };
            sim.advance(op);
        }
        let landed = results.lock().unwrap().clone();
        assert!(landed[..1000].iter().all(|(_, r)| r.is_ok()));
        assert!(matches!(&landed[1000].1, Err(StoreError::Unavailable(why)) if why.contains("Throttling")));
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
