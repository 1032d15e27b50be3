//! A deterministic simulation of DynamoDB's behaviour behind the [`Store`] port, in the
//! manner of TigerBeetle's VOPR: many operations run concurrently, but only one store call
//! ever executes at a time, and *which* one — and what the service does to it — is chosen
//! by a seeded random source. So any interleaving the seed produces replays exactly.
//!
//! Items live in the embedded store (it passes the same conformance suite as DynamoDB's
//! adapter, so conditions and all-or-nothing commits are DynamoDB's); this layer adds what
//! that store and the emulator are too kind to do:
//!
//! - a `TransactWriteItems` is *in flight* between two scheduler steps (prepared, then
//!   applied); another transaction or a `TransactGetItems` touching one of its items
//!   meanwhile is cancelled with `TransactionConflict`;
//! - a commit of one put or delete is a plain conditional `PutItem` / `DeleteItem`, as
//!   the DynamoDB adapter sends it (`commits_as_plain_write`): applied in one step, so it
//!   holds nothing in flight, but refused with `TransactionConflict` when a transaction in
//!   flight holds its item, as DynamoDB refuses it;
//! - an item written more than 1,000 WCU in one simulated second is throttled (a
//!   transactional write costs 2 units per item, a plain one 1);
//! - a commit can be applied and its answer lost: the SDK gives up (the caller sees an
//!   outage), or its retry arrives as a fresh call (the `ClientRequestToken` no longer
//!   matches) and the caller sees what that second call finds;
//! - global secondary index reads (due collections, a member's collections) see the table
//!   as it was a random number of steps ago;
//! - the function crashes before or after any call, and never answers;
//! - TTL-expired items (codes, idempotency keys) are still returned, as DynamoDB does for
//!   up to two days: the domain must check expiry itself.
//!
//! Not modelled (said plainly): a `Query` seeing part of a transaction (DynamoDB's
//! read-committed isolation for queries) — every read here sees whole commits.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use fund_account::adapters::sqlite::SqliteStore;
use fund_account::clock::{Clock, ManualClock, Timestamp};
use fund_account::ids::{ExternalId, WithdrawalId};
use fund_account::ledger::{Balances, LedgerEntry, PlatformEntry, PlatformShard, PLATFORM_SHARDS};
use fund_account::member::{MemberId, PhcHash};
use fund_account::money::{Amount, Currency};
use fund_account::records::{Collection, CollectionStatus, IdempotencyRecord, Refund, RunRecord, Withdrawal};
use fund_account::store::{Doc, DocKey, MemberState, Page, PageRequest, Store, StoreError, WithdrawalContext, Write};
use tokio::sync::{oneshot, Notify};

/// An operation in the simulation: one request a client made.
pub type OpId = u64;

/// A small, fast, seeded generator (SplitMix64): the only source of the simulation's
/// choices, so a seed replays exactly.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// How often the service misbehaves, per mille of the calls it could happen to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// A call fails before it reaches the table (a 500 or a timeout the SDK gave up on).
    pub unavailable: u64,
    /// An applied commit whose answer is lost; the SDK gives up.
    pub lost_answer: u64,
    /// An applied commit whose answer is lost; the SDK's retry is a fresh call.
    pub fresh_retry: u64,
    /// The function crashes before a call.
    pub crash_before: u64,
    /// The function crashes after a call took effect.
    pub crash_after: u64,
    /// Most steps a global secondary index lags the table.
    pub index_lag_steps: u64,
    /// Write units one item takes per second before it is throttled (DynamoDB: 1,000).
    pub item_wcu_per_second: u32,
}

impl Faults {
    pub const NONE: Faults = Faults {
        unavailable: 0,
        lost_answer: 0,
        fresh_retry: 0,
        crash_before: 0,
        crash_after: 0,
        index_lag_steps: 0,
        item_wcu_per_second: 1_000,
    };

    /// A profile drawn from the seed: calm, flaky, or hostile.
    pub fn drawn(rng: &mut SimRng) -> Faults {
        match rng.below(3) {
            0 => Faults {
                index_lag_steps: 3,
                ..Faults::NONE
            },
            1 => Faults {
                unavailable: 20,
                lost_answer: 30,
                fresh_retry: 30,
                crash_before: 10,
                crash_after: 10,
                index_lag_steps: 8,
                item_wcu_per_second: 1_000,
            },
            _ => Faults {
                unavailable: 60,
                lost_answer: 80,
                fresh_retry: 80,
                crash_before: 30,
                crash_after: 30,
                index_lag_steps: 20,
                item_wcu_per_second: 1_000,
            },
        }
    }
}

/// What a store call is, as the scheduler sees it.
#[derive(Debug, Clone)]
enum CallKind {
    /// A consistent `GetItem` or `Query` of the table: serialized with transactions.
    Read,
    /// A `TransactGetItems` of these items: cancelled by a transaction in flight on any.
    TransactRead(Vec<String>),
    /// A read of a global secondary index: eventually consistent.
    IndexRead,
    /// A `TransactWriteItems` writing the items `written`, held in flight as `held` (see
    /// [`Sim::held_items`]); or, when `plain`, a `PutItem` / `DeleteItem` of one item,
    /// which is never in flight.
    Commit {
        held: Vec<String>,
        written: Vec<String>,
        plain: bool,
    },
}

/// What the service does to a call.
#[derive(Debug)]
enum Grant {
    Proceed,
    FailBefore(StoreError),
    /// Applied; the answer is lost and the SDK gives up with this error.
    LostAnswer(StoreError),
    /// Applied; the answer is lost and the SDK's retry arrives as a fresh call.
    FreshRetry,
    CrashBefore,
    CrashAfter,
}

struct Parked {
    kind: CallKind,
    /// A commit whose items are held: the next step applies it.
    prepared: bool,
    grant: oneshot::Sender<Grant>,
}

/// One version of a collection as a global secondary index will show it from `visible_at`.
struct IndexedVersion {
    visible_at: u64,
    collection: Collection,
}

#[derive(Default)]
struct Core {
    parked: BTreeMap<OpId, Parked>,
    live: BTreeSet<OpId>,
    next_op: OpId,
    /// Items held by prepared transactions.
    locks: HashMap<String, OpId>,
    step: u64,
    /// Write units per (item, simulated second).
    wcu: HashMap<(String, i64), u32>,
    /// Every collection version written, for the lagging indexes.
    indexed: BTreeMap<String, Vec<IndexedVersion>>,
    /// The lag the next applied commit's index updates get.
    next_index_lag: u64,
    /// Commits applied, by operation, in order (the invariants' view of every write).
    applied: Vec<(OpId, Vec<Write>)>,
    throttled: u64,
    conflicts: u64,
    /// Commits refused by a condition, by the kind of item that refused.
    refused: BTreeMap<String, u64>,
    /// What the service did, by kind (`Step::Granted`'s label): proof each fault struck.
    granted: BTreeMap<&'static str, u64>,
    /// Operations that crashed since the last `take_crashed`.
    crashed: Vec<OpId>,
    /// Commits each operation has made (see `Sim::held_items`).
    commits_by_op: HashMap<OpId, u64>,
}

/// The simulated service: the table, the scheduler's view of every parked call, and the
/// faults it injects.
pub struct Sim {
    core: Mutex<Core>,
    changed: Notify,
    pub table: SqliteStore,
    pub clock: Arc<ManualClock>,
    pub faults: Faults,
    rng: Mutex<SimRng>,
    seed: u64,
}

/// What one scheduler step did, for the trace a failing seed prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Prepared(OpId),
    Conflict(OpId),
    Throttled(OpId),
    Granted(OpId, &'static str),
}

impl Sim {
    pub fn new(seed: u64, faults: Faults, start: Timestamp) -> Arc<Sim> {
        Arc::new(Sim {
            core: Mutex::new(Core::default()),
            changed: Notify::new(),
            table: SqliteStore::in_memory().expect("in-memory table"),
            clock: Arc::new(ManualClock::starting_at(start)),
            faults,
            // The service's own stream of choices, apart from the workload's.
            rng: Mutex::new(SimRng::new(seed ^ 0x5EED_0FD1_5A57_E5E5)),
            seed,
        })
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn rng(&self) -> MutexGuard<'_, SimRng> {
        self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The items a commit holds while it is in flight, for the conflicts it causes: its
    /// items, except that a platform shard is named by a shard the seed draws. The
    /// domain picks a transaction's shard from a hash of its id, whose random part comes
    /// from the OS: were that the item held, which transactions conflict — and so the
    /// schedule — would change from run to run, and a seed would not replay. The draw is
    /// as uniform as the hash, and keeps the commit's shape (platform items of one shard
    /// stay together, of two shards apart). Write units are counted on the items really
    /// written (see [`Sim::writes_per_second`]), so a domain that crowded its shards would
    /// still show, and be throttled.
    fn held_items(&self, op: OpId, written: &[String]) -> Vec<String> {
        let nth = {
            let mut core = self.core();
            let count = core.commits_by_op.entry(op).or_insert(0);
            *count += 1;
            *count
        };
        let mut rng = SimRng::new(self.seed ^ op.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ nth.rotate_left(32));
        let base = rng.below(u64::from(PLATFORM_SHARDS));
        let mut shards: Vec<&str> = Vec::new();
        written
            .iter()
            .map(
                |item| match item.strip_prefix("platform/").and_then(|name| name.rsplit_once('#')) {
                    Some((account, shard)) => {
                        let k = shards.iter().position(|s| *s == shard).unwrap_or_else(|| {
                            shards.push(shard);
                            shards.len() - 1
                        });
                        format!(
                            "platform/{account}#{:02}",
                            (base + k as u64) % u64::from(PLATFORM_SHARDS)
                        )
                    }
                    None => item.clone(),
                },
            )
            .collect()
    }

    /// Puts `member` in the table (and in the member index the reconciliation walks)
    /// before the clock starts: straight to the table, no scheduler.
    pub async fn add_member(&self, member: fund_account::member::Member) {
        let member_id = member.member_id.clone();
        self.table
            .commit(vec![
                Write::PutMember {
                    member,
                    expect: fund_account::store::Expect::Absent,
                },
                Write::IndexMember { member_id },
            ])
            .await
            .expect("a member of the simulation");
    }

    /// The store an operation uses: every call it makes waits for the scheduler.
    pub fn store_for(self: &Arc<Sim>, op: OpId) -> Arc<dyn Store> {
        Arc::new(SimStore {
            sim: Arc::clone(self),
            op,
        })
    }

    /// Starts an operation: `body` gets its id and runs as a task; it counts as live (and
    /// the scheduler waits for it to park or finish) until it returns or crashes.
    pub fn spawn<F, Fut>(self: &Arc<Sim>, body: F) -> OpId
    where
        F: FnOnce(OpId) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let op = {
            let mut core = self.core();
            core.next_op += 1;
            let op = core.next_op;
            core.live.insert(op);
            op
        };
        let future = body(op);
        let sim = Arc::clone(self);
        tokio::spawn(async move {
            future.await;
            sim.finished(op);
        });
        op
    }

    fn finished(&self, op: OpId) {
        self.core().live.remove(&op);
        self.changed.notify_one();
    }

    /// Waits until every live operation is parked at a store call (or none is live): the
    /// only moment the scheduler decides, so its choices never race the operations.
    pub async fn quiescent(&self) {
        loop {
            {
                let core = self.core();
                if core.live.iter().all(|op| core.parked.contains_key(op)) {
                    return;
                }
            }
            self.changed.notified().await;
        }
    }

    pub fn live(&self) -> usize {
        self.core().live.len()
    }

    /// The parked operations, in id order.
    pub fn parked(&self) -> Vec<OpId> {
        self.core().parked.keys().copied().collect()
    }

    pub fn step(&self) -> u64 {
        self.core().step
    }

    /// Operations that crashed since the last call: their clients get no answer.
    pub fn take_crashed(&self) -> Vec<OpId> {
        std::mem::take(&mut self.core().crashed)
    }

    /// Commits applied since the last call, in order.
    pub fn take_applied(&self) -> Vec<(OpId, Vec<Write>)> {
        std::mem::take(&mut self.core().applied)
    }

    /// Commits refused by a condition so far, by the kind of item that refused.
    pub fn refused(&self) -> BTreeMap<String, u64> {
        self.core().refused.clone()
    }

    /// What the service did to the calls so far, by kind.
    pub fn granted(&self) -> BTreeMap<&'static str, u64> {
        self.core().granted.clone()
    }

    /// (throttled calls, transaction conflicts) so far.
    pub fn pressure(&self) -> (u64, u64) {
        let core = self.core();
        (core.throttled, core.conflicts)
    }

    /// Writes each item took per simulated second, as `(item, second) → writes`, for the
    /// items whose identity (`Write::item_identity`) starts with `prefix`. Every write
    /// counted is a transactional one that landed (two write units each; a throttled or
    /// cancelled call writes nothing).
    pub fn writes_per_second(&self, prefix: &str) -> Vec<((String, i64), u32)> {
        let core = self.core();
        core.wcu
            .iter()
            .filter(|((item, _), _)| item.starts_with(prefix))
            .map(|(key, units)| (key.clone(), units / 2))
            .collect()
    }

    /// The busiest (item, second) of [`Sim::writes_per_second`]: `(writes, item, second)`.
    pub fn hottest(&self, prefix: &str) -> Option<(u32, String, i64)> {
        self.writes_per_second(prefix)
            .into_iter()
            .map(|((item, second), writes)| (writes, item, second))
            .max()
    }

    /// Lets every index catch up with the table (the final check's view).
    pub fn settle_indexes(&self) {
        let mut core = self.core();
        for versions in core.indexed.values_mut() {
            for version in versions.iter_mut() {
                version.visible_at = 0;
            }
        }
    }

    /// Moves `op`'s parked call one step: a commit is first prepared (its items held),
    /// then applied; anything else is answered at once. What the service does to the
    /// call is drawn from the fault profile.
    pub fn advance(&self, op: OpId) -> Step {
        let mut core = self.core();
        core.step += 1;
        let Some(parked) = core.parked.remove(&op) else {
            return Step::Granted(op, "gone");
        };
        let mut rng = self.rng();
        let faults = self.faults;
        let held_by_other = |core: &Core, items: &[String]| {
            items
                .iter()
                .any(|item| core.locks.get(item).is_some_and(|holder| *holder != op))
        };
        let (grant, step) = match &parked.kind {
            CallKind::Commit { held, written, plain } if !parked.prepared => {
                if held_by_other(&core, held) {
                    core.conflicts += 1;
                    (Grant::FailBefore(StoreError::Contention), Step::Conflict(op))
                } else if rng.chance(faults.crash_before) {
                    (Grant::CrashBefore, Step::Granted(op, "crash before"))
                } else if rng.chance(faults.unavailable) {
                    (
                        Grant::FailBefore(StoreError::Unavailable("InternalServerError".into())),
                        Step::Granted(op, "unavailable"),
                    )
                } else if *plain {
                    self.apply(&mut core, &mut rng, op, written, 1)
                } else {
                    for item in held {
                        core.locks.insert(item.clone(), op);
                    }
                    let kind = CallKind::Commit {
                        held: held.clone(),
                        written: written.clone(),
                        plain: false,
                    };
                    core.parked.insert(
                        op,
                        Parked {
                            kind,
                            prepared: true,
                            grant: parked.grant,
                        },
                    );
                    return Step::Prepared(op);
                }
            }
            CallKind::Commit {
                held, written: items, ..
            } => {
                for item in held {
                    if core.locks.get(item) == Some(&op) {
                        core.locks.remove(item);
                    }
                }
                // A transactional write costs two units per item (up to 1 KB).
                self.apply(&mut core, &mut rng, op, items, 2)
            }
            CallKind::TransactRead(items) if held_by_other(&core, items) => {
                core.conflicts += 1;
                (Grant::FailBefore(StoreError::Contention), Step::Conflict(op))
            }
            CallKind::Read | CallKind::TransactRead(_) | CallKind::IndexRead => {
                if rng.chance(faults.crash_before) {
                    (Grant::CrashBefore, Step::Granted(op, "crash before read"))
                } else if rng.chance(faults.unavailable) {
                    (
                        Grant::FailBefore(StoreError::Unavailable("InternalServerError".into())),
                        Step::Granted(op, "read unavailable"),
                    )
                } else {
                    (Grant::Proceed, Step::Granted(op, "read"))
                }
            }
        };
        if let Step::Granted(_, label) = step {
            *core.granted.entry(label).or_insert(0) += 1;
        }
        // The operation is gone if its task was dropped: nothing to tell it.
        let _ = parked.grant.send(grant);
        step
    }

    /// Applies a commit of `items` at `units` write units each: throttled if an item is
    /// hot this second, else written, with what the fault profile does to its answer.
    fn apply(&self, core: &mut Core, rng: &mut SimRng, op: OpId, items: &[String], units: u32) -> (Grant, Step) {
        let faults = self.faults;
        let second = self.clock.now().unix_seconds();
        let hot = items.iter().any(|item| {
            core.wcu.get(&(item.clone(), second)).copied().unwrap_or(0) + units > faults.item_wcu_per_second
        });
        if hot {
            core.throttled += 1;
            return (
                Grant::FailBefore(StoreError::Unavailable("ThrottlingException".into())),
                Step::Throttled(op),
            );
        }
        for item in items {
            *core.wcu.entry((item.clone(), second)).or_insert(0) += units;
        }
        core.next_index_lag = if faults.index_lag_steps == 0 {
            0
        } else {
            rng.below(faults.index_lag_steps + 1)
        };
        if rng.chance(faults.lost_answer) {
            (
                Grant::LostAnswer(StoreError::Unavailable("timeout after the write".into())),
                Step::Granted(op, "applied, answer lost"),
            )
        } else if rng.chance(faults.fresh_retry) {
            (Grant::FreshRetry, Step::Granted(op, "applied, retried fresh"))
        } else if rng.chance(faults.crash_after) {
            (Grant::CrashAfter, Step::Granted(op, "applied, crashed"))
        } else {
            (Grant::Proceed, Step::Granted(op, "applied"))
        }
    }

    async fn park(&self, op: OpId, kind: CallKind) -> Grant {
        let (sender, receiver) = oneshot::channel();
        self.core().parked.insert(
            op,
            Parked {
                kind,
                prepared: false,
                grant: sender,
            },
        );
        self.changed.notify_one();
        receiver.await.unwrap_or(Grant::CrashBefore)
    }

    /// The operation crashed: it is no longer live, and never answers.
    async fn crash(&self, op: OpId) -> ! {
        self.core().crashed.push(op);
        self.finished(op);
        match std::future::pending::<std::convert::Infallible>().await {}
    }

    fn record_applied(&self, op: OpId, writes: &[Write]) {
        let mut core = self.core();
        let visible_at = core.step + core.next_index_lag;
        for write in writes {
            if let Write::PutCollection { collection, .. } = write {
                let versions = core.indexed.entry(collection.collection_id.to_string()).or_default();
                // An index applies one item's updates in order.
                let visible_at = versions.last().map_or(visible_at, |v| v.visible_at.max(visible_at));
                versions.push(IndexedVersion {
                    visible_at,
                    collection: collection.clone(),
                });
            }
        }
        core.applied.push((op, writes.to_vec()));
    }

    /// Collections as a lagging index shows them now (per item, the newest version it
    /// has caught up with), those `keep` wants: filtered before they are copied, since a
    /// long run's index holds a hundred thousand.
    fn indexed_collections(&self, keep: impl Fn(&Collection) -> bool) -> Vec<Collection> {
        let core = self.core();
        core.indexed
            .values()
            .filter_map(|versions| versions.iter().rev().find(|v| v.visible_at <= core.step))
            .filter(|v| keep(&v.collection))
            .map(|v| v.collection.clone())
            .collect()
    }
}

/// One operation's view of the simulated service.
struct SimStore {
    sim: Arc<Sim>,
    op: OpId,
}

impl SimStore {
    /// Runs one call as the scheduler grants it. `call` may run twice (a fresh retry).
    async fn call<T, F, Fut>(&self, kind: CallKind, call: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        match self.sim.park(self.op, kind).await {
            Grant::Proceed => call().await,
            Grant::FailBefore(error) => Err(error),
            Grant::LostAnswer(error) => {
                let _ = call().await;
                Err(error)
            }
            Grant::FreshRetry => {
                let _ = call().await;
                call().await
            }
            Grant::CrashBefore => self.sim.crash(self.op).await,
            Grant::CrashAfter => {
                let _ = call().await;
                self.sim.crash(self.op).await
            }
        }
    }
}

fn member_item(member_id: &MemberId) -> String {
    format!("member/{member_id}")
}

#[async_trait]
impl Store for SimStore {
    async fn member_state(&self, member_id: &MemberId) -> Result<Option<MemberState>, StoreError> {
        self.call(CallKind::Read, || self.sim.table.member_state(member_id))
            .await
    }

    async fn balances(&self, member_id: &MemberId) -> Result<Balances, StoreError> {
        self.call(CallKind::Read, || self.sim.table.balances(member_id)).await
    }

    async fn member_exists(&self, member_id: &MemberId) -> Result<bool, StoreError> {
        self.call(CallKind::Read, || self.sim.table.member_exists(member_id))
            .await
    }

    async fn member_phone(&self, member_id: &MemberId) -> Result<Option<fund_account::phone::PhoneNumber>, StoreError> {
        self.call(CallKind::Read, || self.sim.table.member_phone(member_id))
            .await
    }

    async fn withdrawal_context(
        &self,
        member_id: &MemberId,
        currency: Currency,
        idempotency_key: &str,
        docs: &[DocKey],
    ) -> Result<WithdrawalContext, StoreError> {
        let mut items = vec![
            member_item(member_id),
            format!("balance/{member_id}/{currency}"),
            format!("idempotency/{member_id}/{idempotency_key}"),
        ];
        items.extend(docs.iter().map(DocKey::identity));
        self.call(CallKind::TransactRead(items), || {
            self.sim
                .table
                .withdrawal_context(member_id, currency, idempotency_key, docs)
        })
        .await
    }

    async fn docs(&self, keys: &[DocKey]) -> Result<Vec<Option<Doc>>, StoreError> {
        let items = keys.iter().map(DocKey::identity).collect();
        self.call(CallKind::TransactRead(items), || self.sim.table.docs(keys))
            .await
    }

    async fn doc_page(&self, partition: &str, page: &PageRequest) -> Result<Page<Doc>, StoreError> {
        self.call(CallKind::Read, || self.sim.table.doc_page(partition, page))
            .await
    }

    async fn platform_balances(&self) -> Result<Vec<(PlatformShard, Amount)>, StoreError> {
        self.call(CallKind::Read, || self.sim.table.platform_balances()).await
    }

    async fn platform_entries(
        &self,
        shard: PlatformShard,
        page: &PageRequest,
    ) -> Result<Page<PlatformEntry>, StoreError> {
        self.call(CallKind::Read, || self.sim.table.platform_entries(shard, page))
            .await
    }

    async fn idempotency_record(
        &self,
        member_id: &MemberId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.call(CallKind::Read, || self.sim.table.idempotency_record(member_id, key))
            .await
    }

    async fn withdrawal(&self, id: &WithdrawalId) -> Result<Option<Withdrawal>, StoreError> {
        self.call(CallKind::Read, || self.sim.table.withdrawal(id)).await
    }

    async fn withdrawals(&self, member_id: &MemberId, page: &PageRequest) -> Result<Page<Withdrawal>, StoreError> {
        self.call(CallKind::Read, || self.sim.table.withdrawals(member_id, page))
            .await
    }

    async fn ledger(
        &self,
        member_id: &MemberId,
        currency: Option<Currency>,
        page: &PageRequest,
    ) -> Result<Page<LedgerEntry>, StoreError> {
        self.call(CallKind::Read, || self.sim.table.ledger(member_id, currency, page))
            .await
    }

    async fn ledger_range(
        &self,
        member_id: &MemberId,
        currency: Currency,
        range: &fund_account::store::EntryRange,
    ) -> Result<Page<LedgerEntry>, StoreError> {
        self.call(CallKind::Read, || {
            self.sim.table.ledger_range(member_id, currency, range)
        })
        .await
    }

    async fn collection(&self, collection_id: &ExternalId) -> Result<Option<Collection>, StoreError> {
        self.call(CallKind::Read, || self.sim.table.collection(collection_id))
            .await
    }

    async fn refund(&self, refund_id: &ExternalId) -> Result<Option<Refund>, StoreError> {
        self.call(CallKind::Read, || self.sim.table.refund(refund_id)).await
    }

    async fn due_collections(&self, now: Timestamp, limit: usize) -> Result<Vec<Collection>, StoreError> {
        self.call(CallKind::IndexRead, || async {
            let mut due: Vec<Collection> = self
                .sim
                .indexed_collections(|c| c.status == CollectionStatus::Pending && c.available_at <= now);
            due.sort_by(|a, b| (a.available_at, &a.collection_id).cmp(&(b.available_at, &b.collection_id)));
            due.truncate(limit);
            Ok(due)
        })
        .await
    }

    async fn member_ids(
        &self,
        shard: u32,
        after: Option<&MemberId>,
        limit: usize,
    ) -> Result<Page<MemberId>, StoreError> {
        self.call(CallKind::Read, || self.sim.table.member_ids(shard, after, limit))
            .await
    }

    async fn member_collections(
        &self,
        member_id: &MemberId,
        page: &PageRequest,
    ) -> Result<Page<Collection>, StoreError> {
        self.call(CallKind::IndexRead, || async {
            let mut items: Vec<Collection> = self.sim.indexed_collections(|c| {
                &c.member_id == member_id
                    && page
                        .before
                        .as_deref()
                        .is_none_or(|before| c.collection_id.as_str() < before)
            });
            items.sort_by(|a, b| b.collection_id.cmp(&a.collection_id));
            let more = items.len() > page.limit;
            items.truncate(page.limit);
            Ok(Page { items, more })
        })
        .await
    }

    async fn run_record(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.call(CallKind::Read, || self.sim.table.run_record(run_id)).await
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        fund_account::store::validate_commit(&writes)?;
        let written: Vec<String> = writes.iter().map(Write::item_identity).collect();
        let held = self.sim.held_items(self.op, &written);
        let plain = fund_account::adapters::dynamodb::commits_as_plain_write(&writes);
        self.call(CallKind::Commit { held, written, plain }, || async {
            let result = self.sim.table.commit(writes.clone()).await;
            match &result {
                Ok(()) => self.sim.record_applied(self.op, &writes),
                Err(StoreError::ConditionFailed { write_index }) => {
                    let target = format!("{:?}", writes[*write_index].target());
                    *self.sim.core().refused.entry(target).or_insert(0) += 1;
                }
                Err(_) => {}
            }
            result
        })
        .await
    }
}

/// An argon2id hash at the lowest parameters: withdrawals verify it in microseconds, so
/// thousands of seeds fit in the test command (the cost parameters are not under test here).
pub fn cheap_hash(password: &str) -> PhcHash {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(8, 1, 1, None).unwrap();
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"simulation-salt!").unwrap();
    PhcHash::new(hasher.hash_password(password.as_bytes(), &salt).unwrap().to_string())
}
