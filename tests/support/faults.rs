//! AWS behaviour the emulator lacks, injected through the store port: a hook before
//! every store call (`HookedStore`) that can fail it before or after it lands, hold it at a
//! gate, or answer it with a transaction conflict.

use std::sync::Arc;
use std::time::Duration;

use fund_account::clock::Timestamp;
use fund_account::store::Store;

use crate::apps::{app_with, sqlite_store, store_of, Adapter, TestApp};

/// Which store call a [`StoreHook`] sees.
#[derive(Debug)]
pub enum StoreCall<'a> {
    /// A read, by the name of its `Store` method (`"member_state"`, `"withdrawal_context"`, …).
    Read(&'static str),
    Commit(&'a [fund_account::store::Write]),
}

/// What a [`StoreHook`] does to a call.
#[derive(Debug)]
pub enum Injection {
    /// The call goes through.
    Pass,
    /// The call fails before it reaches the store: nothing happens.
    FailBefore(fund_account::store::StoreError),
    /// The call reaches the store and takes effect, then the caller sees this failure (a
    /// crash or a lost response right after the write).
    FailAfter(fund_account::store::StoreError),
    /// A commit takes effect, its answer is lost, and the SDK's retry arrives as a fresh
    /// call: the caller sees what the second call finds (a plain write carries no
    /// `ClientRequestToken` to make it a no-op).
    AppliedThenRetried,
}

/// Decides, before each store call, what happens to it: the way tests give the store
/// DynamoDB's behaviour that the emulator lacks (transaction conflicts), crash an
/// operation between two calls, or hold a call at a gate while other requests land.
#[async_trait::async_trait]
pub trait StoreHook: Send + Sync {
    async fn before(&self, call: StoreCall<'_>) -> Injection;
}

/// A store wrapper that runs a [`StoreHook`] before every call.
pub struct HookedStore {
    inner: Arc<dyn Store>,
    hook: Arc<dyn StoreHook>,
}

impl HookedStore {
    pub fn new(inner: Arc<dyn Store>, hook: Arc<dyn StoreHook>) -> HookedStore {
        HookedStore { inner, hook }
    }
}

/// A test app over a fresh store of `adapter` behind `hook`.
pub async fn hooked_app(adapter: Adapter, hook: Arc<dyn StoreHook>) -> TestApp {
    let store = Arc::new(HookedStore::new(store_of(adapter).await, hook));
    let outbox = sqlite_store().outbox();
    let (app, clock) = app_with(store, Arc::new(outbox.clone()));
    TestApp { app, clock, outbox }
}

macro_rules! hooked_read {
    ($self:ident, $name:literal, $call:expr) => {{
        let injection = $self.hook.before(StoreCall::Read($name)).await;
        $self.apply(injection, $call).await
    }};
}

impl HookedStore {
    async fn apply<T: Send>(
        &self,
        injection: Injection,
        call: impl std::future::Future<Output = Result<T, fund_account::store::StoreError>> + Send,
    ) -> Result<T, fund_account::store::StoreError> {
        match injection {
            Injection::Pass => call.await,
            Injection::FailBefore(error) => Err(error),
            Injection::FailAfter(error) => {
                let _ = call.await;
                Err(error)
            }
            Injection::AppliedThenRetried => panic!("only a commit can be retried"),
        }
    }
}

#[async_trait::async_trait]
impl Store for HookedStore {
    async fn member_state(
        &self,
        member_id: &fund_account::member::MemberId,
    ) -> Result<Option<fund_account::store::MemberState>, fund_account::store::StoreError> {
        hooked_read!(self, "member_state", self.inner.member_state(member_id))
    }
    async fn balances(
        &self,
        member_id: &fund_account::member::MemberId,
    ) -> Result<fund_account::ledger::Balances, fund_account::store::StoreError> {
        hooked_read!(self, "balances", self.inner.balances(member_id))
    }
    async fn member_exists(
        &self,
        member_id: &fund_account::member::MemberId,
    ) -> Result<bool, fund_account::store::StoreError> {
        hooked_read!(self, "member_exists", self.inner.member_exists(member_id))
    }
    async fn member_phone(
        &self,
        member_id: &fund_account::member::MemberId,
    ) -> Result<Option<fund_account::phone::PhoneNumber>, fund_account::store::StoreError> {
        hooked_read!(self, "member_phone", self.inner.member_phone(member_id))
    }
    async fn withdrawal_context(
        &self,
        member_id: &fund_account::member::MemberId,
        currency: fund_account::money::Currency,
        key: &str,
        docs: &[fund_account::store::DocKey],
    ) -> Result<fund_account::store::WithdrawalContext, fund_account::store::StoreError> {
        hooked_read!(
            self,
            "withdrawal_context",
            self.inner.withdrawal_context(member_id, currency, key, docs)
        )
    }
    async fn docs(
        &self,
        keys: &[fund_account::store::DocKey],
    ) -> Result<Vec<Option<fund_account::store::Doc>>, fund_account::store::StoreError> {
        hooked_read!(self, "docs", self.inner.docs(keys))
    }
    async fn doc_page(
        &self,
        partition: &str,
        page: &fund_account::store::PageRequest,
    ) -> Result<fund_account::store::Page<fund_account::store::Doc>, fund_account::store::StoreError> {
        hooked_read!(self, "doc_page", self.inner.doc_page(partition, page))
    }
    async fn platform_balances(
        &self,
    ) -> Result<Vec<(fund_account::ledger::PlatformShard, fund_account::money::Amount)>, fund_account::store::StoreError>
    {
        hooked_read!(self, "platform_balances", self.inner.platform_balances())
    }
    async fn platform_entries(
        &self,
        shard: fund_account::ledger::PlatformShard,
        page: &fund_account::store::PageRequest,
    ) -> Result<fund_account::store::Page<fund_account::ledger::PlatformEntry>, fund_account::store::StoreError> {
        hooked_read!(self, "platform_entries", self.inner.platform_entries(shard, page))
    }
    async fn idempotency_record(
        &self,
        member_id: &fund_account::member::MemberId,
        key: &str,
    ) -> Result<Option<fund_account::records::IdempotencyRecord>, fund_account::store::StoreError> {
        hooked_read!(
            self,
            "idempotency_record",
            self.inner.idempotency_record(member_id, key)
        )
    }
    async fn withdrawal(
        &self,
        id: &fund_account::ids::WithdrawalId,
    ) -> Result<Option<fund_account::records::Withdrawal>, fund_account::store::StoreError> {
        hooked_read!(self, "withdrawal", self.inner.withdrawal(id))
    }
    async fn withdrawals(
        &self,
        member_id: &fund_account::member::MemberId,
        page: &fund_account::store::PageRequest,
    ) -> Result<fund_account::store::Page<fund_account::records::Withdrawal>, fund_account::store::StoreError> {
        hooked_read!(self, "withdrawals", self.inner.withdrawals(member_id, page))
    }
    async fn ledger(
        &self,
        member_id: &fund_account::member::MemberId,
        currency: Option<fund_account::money::Currency>,
        page: &fund_account::store::PageRequest,
    ) -> Result<fund_account::store::Page<fund_account::ledger::LedgerEntry>, fund_account::store::StoreError> {
        hooked_read!(self, "ledger", self.inner.ledger(member_id, currency, page))
    }
    async fn ledger_range(
        &self,
        member_id: &fund_account::member::MemberId,
        currency: fund_account::money::Currency,
        range: &fund_account::store::EntryRange,
    ) -> Result<fund_account::store::Page<fund_account::ledger::LedgerEntry>, fund_account::store::StoreError> {
        hooked_read!(
            self,
            "ledger_range",
            self.inner.ledger_range(member_id, currency, range)
        )
    }
    async fn collection(
        &self,
        id: &fund_account::ids::ExternalId,
    ) -> Result<Option<fund_account::records::Collection>, fund_account::store::StoreError> {
        hooked_read!(self, "collection", self.inner.collection(id))
    }
    async fn refund(
        &self,
        id: &fund_account::ids::ExternalId,
    ) -> Result<Option<fund_account::records::Refund>, fund_account::store::StoreError> {
        hooked_read!(self, "refund", self.inner.refund(id))
    }
    async fn due_collections(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<fund_account::records::Collection>, fund_account::store::StoreError> {
        hooked_read!(self, "due_collections", self.inner.due_collections(now, limit))
    }
    async fn member_ids(
        &self,
        shard: u32,
        after: Option<&fund_account::member::MemberId>,
        limit: usize,
    ) -> Result<fund_account::store::Page<fund_account::member::MemberId>, fund_account::store::StoreError> {
        hooked_read!(self, "member_ids", self.inner.member_ids(shard, after, limit))
    }
    async fn member_collections(
        &self,
        member_id: &fund_account::member::MemberId,
        page: &fund_account::store::PageRequest,
    ) -> Result<fund_account::store::Page<fund_account::records::Collection>, fund_account::store::StoreError> {
        hooked_read!(
            self,
            "member_collections",
            self.inner.member_collections(member_id, page)
        )
    }
    async fn run_record(
        &self,
        run_id: &str,
    ) -> Result<Option<fund_account::records::RunRecord>, fund_account::store::StoreError> {
        hooked_read!(self, "run_record", self.inner.run_record(run_id))
    }
    async fn commit(&self, writes: Vec<fund_account::store::Write>) -> Result<(), fund_account::store::StoreError> {
        let injection = self.hook.before(StoreCall::Commit(&writes)).await;
        if let Injection::AppliedThenRetried = injection {
            let _ = self.inner.commit(writes.clone()).await;
            return self.inner.commit(writes).await;
        }
        self.apply(injection, self.inner.commit(writes)).await
    }
}

/// Which commits a [`Gate`] holds.
type CommitFilter = Box<dyn Fn(&[fund_account::store::Write]) -> bool + Send + Sync>;

/// A hook that holds the first commit matching a predicate until the test releases it.
pub struct Gate {
    matches: CommitFilter,
    armed: std::sync::atomic::AtomicBool,
    held: tokio::sync::Notify,
    release: tokio::sync::Semaphore,
}

impl Gate {
    pub fn new(matches: impl Fn(&[fund_account::store::Write]) -> bool + Send + Sync + 'static) -> Arc<Gate> {
        Arc::new(Gate {
            matches: Box::new(matches),
            armed: std::sync::atomic::AtomicBool::new(true),
            held: tokio::sync::Notify::new(),
            release: tokio::sync::Semaphore::new(0),
        })
    }

    /// Waits until a matching commit is held at the gate.
    pub async fn wait_until_held(&self) {
        tokio::time::timeout(Duration::from_secs(30), self.held.notified())
            .await
            .expect("a matching commit reached the gate");
    }

    /// Lets the held commit go on to the store.
    pub fn release(&self) {
        self.release.add_permits(1);
    }
}

#[async_trait::async_trait]
impl StoreHook for Gate {
    async fn before(&self, call: StoreCall<'_>) -> Injection {
        let StoreCall::Commit(writes) = call else {
            return Injection::Pass;
        };
        if (self.matches)(writes) && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.held.notify_one();
            let _permit = self.release.acquire().await.expect("gate open");
        }
        Injection::Pass
    }
}

/// A hook that cancels the first `times` calls of one kind with DynamoDB's
/// `TransactionConflict` (as [`fund_account::store::StoreError::Contention`]): what real
/// DynamoDB does to overlapping transactions and the emulator never does.
pub struct Conflicts {
    /// `Some(name)`: that read; `None`: commits.
    target: Option<&'static str>,
    times: usize,
    left: std::sync::atomic::AtomicUsize,
}

impl Conflicts {
    pub fn on_commits(times: usize) -> Arc<Conflicts> {
        Conflicts::new(None, times)
    }

    pub fn on_read(name: &'static str, times: usize) -> Arc<Conflicts> {
        Conflicts::new(Some(name), times)
    }

    fn new(target: Option<&'static str>, times: usize) -> Arc<Conflicts> {
        Arc::new(Conflicts {
            target,
            times,
            left: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Starts injecting: the set-up before this runs clean.
    pub fn arm(&self) {
        self.left.store(self.times, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether every conflict armed was injected.
    pub fn all_injected(&self) -> bool {
        self.left.load(std::sync::atomic::Ordering::SeqCst) == 0
    }
}

#[async_trait::async_trait]
impl StoreHook for Conflicts {
    async fn before(&self, call: StoreCall<'_>) -> Injection {
        let hit = match (&call, self.target) {
            (StoreCall::Commit(_), None) => true,
            (StoreCall::Read(name), Some(target)) => *name == target,
            _ => false,
        };
        let take = |left: usize| left.checked_sub(1);
        if hit
            && self
                .left
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    take,
                )
                .is_ok()
        {
            return Injection::FailBefore(fund_account::store::StoreError::Contention);
        }
        Injection::Pass
    }
}

/// Where an injected fault strikes a store call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails before reaching the store: nothing happens.
    Before,
    /// The call reaches the store and takes effect, then the caller sees a failure.
    After,
}

/// A hook that fails the n-th store call from when it is armed: the crash-safety tests'
/// fault injection.
pub struct FaultyStore {
    armed: std::sync::Mutex<Option<(usize, Fault)>>,
    calls: std::sync::atomic::AtomicUsize,
}

impl FaultyStore {
    /// Fails the `call`-th store call from now (0 = the next one).
    pub fn arm(&self, call: usize, fault: Fault) {
        self.calls.store(0, std::sync::atomic::Ordering::SeqCst);
        *self.armed.lock().expect("lock") = Some((call, fault));
    }

    pub fn disarm(&self) {
        *self.armed.lock().expect("lock") = None;
    }

    /// Whether the armed fault has struck.
    pub fn struck(&self) -> bool {
        let armed = *self.armed.lock().expect("lock");
        armed.is_some_and(|(call, _)| self.calls.load(std::sync::atomic::Ordering::SeqCst) > call)
    }
}

#[async_trait::async_trait]
impl StoreHook for FaultyStore {
    async fn before(&self, _call: StoreCall<'_>) -> Injection {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let armed = *self.armed.lock().expect("lock");
        let injected = || fund_account::store::StoreError::Unavailable("injected fault".to_owned());
        match armed {
            Some((call, Fault::Before)) if call == n => Injection::FailBefore(injected()),
            Some((call, Fault::After)) if call == n => Injection::FailAfter(injected()),
            _ => Injection::Pass,
        }
    }
}

/// A test app whose store can be made to fail at a chosen call.
pub async fn faulty_app(adapter: Adapter) -> (TestApp, Arc<FaultyStore>) {
    let faults = Arc::new(FaultyStore {
        armed: std::sync::Mutex::new(None),
        calls: std::sync::atomic::AtomicUsize::new(0),
    });
    let t = hooked_app(adapter, faults.clone()).await;
    (t, faults)
}
