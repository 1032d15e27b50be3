//! The store port: the reads each operation needs, and one atomic `commit` of typed writes.
//!
//! Domain code decides *what* to write; an adapter only makes a list of [`Write`]s happen
//! all together or not at all, checking each write's condition. Both adapters (DynamoDB
//! and the embedded SQLite store) pass the same conformance suite in `tests/`.

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::events::{self, Notification, NotificationState, OutboxEvent};
use crate::ids::{ExternalId, WithdrawalId};
use crate::ledger::{
    Balance, BalancePart, Balances, BucketDeltas, LedgerEntry, PlatformEntry, PlatformShard, Posting, Transaction,
};
use crate::member::{Member, MemberId, VerificationCode};
use crate::money::{Amount, Currency};
use crate::phone::PhoneNumber;
use crate::records::{Collection, IdempotencyRecord, Refund, RunRecord, Withdrawal};

/// Most writes one commit may carry (DynamoDB's `TransactWriteItems` limit).
pub const MAX_WRITES_PER_COMMIT: usize = 100;

/// What a write expects to find before it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is there (or nothing).
    Any,
    /// Nothing there yet.
    Absent,
    /// The stored record has this version.
    Version(u64),
}

/// Where a document lives: a partition and a sort key within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocKey {
    pub partition: String,
    pub sort: String,
}

impl DocKey {
    pub fn new(partition: impl Into<String>, sort: impl Into<String>) -> DocKey {
        DocKey {
            partition: partition.into(),
            sort: sort.into(),
        }
    }

    /// The item's identity, as [`Write::item_identity`] names the item a write touches.
    pub fn identity(&self) -> String {
        format!("doc/{}/{}", self.partition, self.sort)
    }
}

impl From<(String, String)> for DocKey {
    fn from((partition, sort): (String, String)) -> DocKey {
        DocKey { partition, sort }
    }
}

/// A record kept whole under its key, with a version for conditional writes: FX quotes
/// and the quote book, reference rates and their history, conversions, platform ledger
/// entries and migration markers. The domain (`fx`, `ledger`) owns the body's format;
/// the adapters store it as it is, so new records need no new adapter code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub key: DocKey,
    pub version: u64,
    /// When the store may delete it (DynamoDB TTL); reads still check it.
    pub expires_at: Option<Timestamp>,
    /// The record as JSON.
    pub body: String,
}

impl Doc {
    pub fn new<T: serde::Serialize>(key: DocKey, version: u64, record: &T) -> Result<Doc, StoreError> {
        Ok(Doc {
            key,
            version,
            expires_at: None,
            body: serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        })
    }

    pub fn expiring(mut self, at: Timestamp) -> Doc {
        self.expires_at = Some(at);
        self
    }

    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, StoreError> {
        serde_json::from_str(&self.body)
            .map_err(|e| StoreError::Corrupt(format!("{}/{}: {e}", self.key.partition, self.key.sort)))
    }
}

/// One change in a commit.
#[derive(Debug, Clone)]
pub enum Write {
    PutMember {
        member: Member,
        expect: Expect,
    },
    PutCode {
        code: VerificationCode,
        expect: Expect,
    },
    /// Lists the member in its shard of the member index (the reconciliation's walk). Kept
    /// apart from the profile so that the walk never reads password hashes.
    IndexMember {
        member_id: MemberId,
    },
    /// Writes nothing; fails unless the member exists (and, with `version`, is at it).
    CheckMember {
        member_id: MemberId,
        version: Option<u64>,
    },
    /// Removes the member's code: whatever is there with `Expect::Any`, or only the code
    /// exactly as it was read with `Expect::Version` (so that tries spent meanwhile count).
    DeleteCode {
        member_id: MemberId,
        expect: Expect,
    },
    /// Adds signed deltas to one item of a balance — the balance item or a pending shard
    /// (see `ledger::PENDING_SHARDS`) — creating it at zero; fails if any bucket of that
    /// item would end below zero. Always paired with ledger entries (`ledger::Posting`).
    AdjustBalance {
        member_id: MemberId,
        currency: Currency,
        part: BalancePart,
        deltas: BucketDeltas,
    },
    /// Adds a ledger entry; fails if its id exists.
    AppendLedger(LedgerEntry),
    PutWithdrawal {
        withdrawal: Withdrawal,
        expect: Expect,
    },
    PutCollection {
        collection: Collection,
        expect: Expect,
    },
    /// Adds a refund; fails if its id exists.
    PutRefund(Refund),
    /// Stores a reconciliation run's record; fails if its id exists.
    PutRun(RunRecord),
    /// Claims an idempotency key; fails if the key is held and not expired at `now`.
    PutIdempotency {
        record: IdempotencyRecord,
        now: Timestamp,
    },
    /// Writes a document, if the stored one is as expected.
    PutDoc {
        doc: Doc,
        expect: Expect,
    },
    /// Removes a document, if the stored one is as expected (`Expect::Version` fails when
    /// it is gone).
    DeleteDoc {
        key: DocKey,
        expect: Expect,
    },
    /// Adds a signed amount to one shard of a platform account (creating it at zero).
    /// Unconditional: platform accounts may go negative (clearing does), and an
    /// unconditional add never conflicts with another member's.
    AdjustPlatform {
        shard: PlatformShard,
        delta: Amount,
    },
    /// Adds a platform ledger entry; fails if its id exists.
    AppendPlatformEntry(PlatformEntry),
}

/// Why a commit or read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The condition of the write at this index did not hold; nothing was written.
    #[error("condition of write {write_index} failed")]
    ConditionFailed { write_index: usize },
    /// Another transaction touched the same items at the same moment; nothing was
    /// written and the same commit may be retried.
    #[error("transaction conflict")]
    Contention,
    /// The store could not be reached or refused the call.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data did not parse: a bug or tampering, never a client mistake.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The commit itself is malformed (too many writes, an item written twice).
    #[error("invalid commit: {0}")]
    InvalidCommit(String),
}

/// How a store failure reaches a caller: a conflict is retried (see `retry`), an outage is
/// 503, anything else a fault of ours.
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Contention => ApiError::Contention,
            StoreError::Unavailable(_) => {
                tracing::error!(error = %error, "store unavailable");
                ApiError::ServiceUnavailable
            }
            StoreError::ConditionFailed { .. } | StoreError::Corrupt(_) | StoreError::InvalidCommit(_) => {
                tracing::error!(error = %error, "store fault");
                ApiError::Internal
            }
        }
    }
}

/// A member with everything activation and the account view need, read at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberState {
    pub member: Member,
    /// The stored code, possibly expired: callers check `is_expired`.
    pub code: Option<VerificationCode>,
    pub balances: Balances,
}

/// What a withdrawal reads before it commits: one round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalContext {
    pub member: Option<Member>,
    /// The balance item alone: `available` and `in_transit` exactly (all a withdrawal or
    /// conversion spends from); its `pending` leaves out the pending shards.
    pub balance: Balance,
    /// The key's record, possibly expired: callers check `expires_at`.
    pub idempotency: Option<IdempotencyRecord>,
    /// The documents asked for, in order (a quote and the quote book).
    pub docs: Vec<Option<Doc>>,
}

/// A page request: newest first, strictly older than `before` (an item id) when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub before: Option<String>,
}

/// Ledger entries stamped in `[start, end)`, after the entry `after` when given, at most
/// `limit` of them, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRange {
    pub start: Timestamp,
    pub end: Timestamp,
    pub after: Option<String>,
    pub limit: usize,
}

impl EntryRange {
    /// The lowest and highest entry ids the range can hold, both inclusive: an entry id is
    /// `le_` + a ULID, whose first 48 bits are its millisecond, so `[start, end)` in time
    /// is a closed range of ids. After `after`, the lowest is `after` + `0`: above it and
    /// below every later id (ids have one length).
    pub fn id_bounds(&self) -> (String, String) {
        let millis = |t: Timestamp| u64::try_from(t.unix_millis()).unwrap_or(0);
        let lowest = match &self.after {
            Some(after) => format!("{after}0"),
            None => format!("le_{}", ulid::Ulid::from_parts(millis(self.start), 0)),
        };
        let last_millis = millis(self.end).saturating_sub(1);
        let highest = format!("le_{}", ulid::Ulid::from_parts(last_millis, u128::MAX));
        (lowest, highest)
    }

    /// True when nothing can be in the range.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start || self.end.unix_millis() <= 0
    }
}

/// A page of items, newest first; `more` says whether older items exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub more: bool,
}

/// Persistence for the fund account.
#[async_trait]
pub trait Store: Send + Sync {
    /// Profile, code and balances of a member, consistently.
    async fn member_state(&self, member_id: &MemberId) -> Result<Option<MemberState>, StoreError>;

    /// A member's balances only (zero where none is stored), consistently: for readers
    /// that must never see the profile's password hashes (the reconciliation).
    async fn balances(&self, member_id: &MemberId) -> Result<Balances, StoreError>;

    /// Whether the member exists, reading nothing of its profile (the collection
    /// functions never see password hashes). Members are never deleted, so a `true` stays
    /// true: a caller may remember it.
    async fn member_exists(&self, member_id: &MemberId) -> Result<bool, StoreError>;

    /// A member's bound phone only (`None` without a member or a phone): for the readers
    /// that must never see the profile's password hashes (the event publisher).
    async fn member_phone(&self, member_id: &MemberId) -> Result<Option<PhoneNumber>, StoreError>;

    /// Profile, one balance, one idempotency record and the documents `docs`,
    /// consistently (one `TransactGetItems` in DynamoDB).
    async fn withdrawal_context(
        &self,
        member_id: &MemberId,
        currency: Currency,
        idempotency_key: &str,
        docs: &[DocKey],
    ) -> Result<WithdrawalContext, StoreError>;

    /// Documents by key, consistently, in the order asked (at most 100).
    async fn docs(&self, keys: &[DocKey]) -> Result<Vec<Option<Doc>>, StoreError>;

    /// The documents of one partition, highest sort key first.
    async fn doc_page(&self, partition: &str, page: &PageRequest) -> Result<Page<Doc>, StoreError>;

    /// The balance of every platform shard that has been written (absent ones are zero).
    async fn platform_balances(&self) -> Result<Vec<(PlatformShard, Amount)>, StoreError>;

    /// One platform shard's entries, newest first.
    async fn platform_entries(
        &self,
        shard: PlatformShard,
        page: &PageRequest,
    ) -> Result<Page<PlatformEntry>, StoreError>;

    async fn idempotency_record(
        &self,
        member_id: &MemberId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    async fn withdrawal(&self, id: &WithdrawalId) -> Result<Option<Withdrawal>, StoreError>;

    /// A member's withdrawals, newest first.
    async fn withdrawals(&self, member_id: &MemberId, page: &PageRequest) -> Result<Page<Withdrawal>, StoreError>;

    /// A member's ledger entries, newest first, in one currency or both.
    async fn ledger(
        &self,
        member_id: &MemberId,
        currency: Option<Currency>,
        page: &PageRequest,
    ) -> Result<Page<LedgerEntry>, StoreError>;

    /// A member's ledger entries in one currency stamped within `range`, oldest first
    /// (by id, which sorts by time): statements and exports read forward through time.
    async fn ledger_range(
        &self,
        member_id: &MemberId,
        currency: Currency,
        range: &EntryRange,
    ) -> Result<Page<LedgerEntry>, StoreError>;

    async fn collection(&self, collection_id: &ExternalId) -> Result<Option<Collection>, StoreError>;

    async fn refund(&self, refund_id: &ExternalId) -> Result<Option<Refund>, StoreError>;

    /// Unsettled collections whose `available_at` is at or before `now`, oldest first.
    async fn due_collections(&self, now: Timestamp, limit: usize) -> Result<Vec<Collection>, StoreError>;

    /// Member ids of one shard (`0..MEMBER_SHARDS`) in id order, after `after`.
    async fn member_ids(
        &self,
        shard: u32,
        after: Option<&MemberId>,
        limit: usize,
    ) -> Result<Page<MemberId>, StoreError>;

    /// A member's collections, newest id first (the same paging as `withdrawals`).
    async fn member_collections(
        &self,
        member_id: &MemberId,
        page: &PageRequest,
    ) -> Result<Page<Collection>, StoreError>;

    async fn run_record(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Applies every write or none.
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError>;
}

/// The kind of item a write touches: how a failed condition is named (see
/// `retry::commit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteTarget {
    Member,
    Code,
    MemberIndex,
    Balance,
    Ledger,
    Withdrawal,
    Collection,
    Refund,
    Run,
    Idempotency,
    Doc,
    Platform,
}

impl Write {
    /// The writes of a posting: one balance adjustment (its moves merged per bucket, since
    /// a commit may touch an item once) and one ledger entry per non-zero move — so the
    /// entries of a bucket always sum to its balance.
    pub fn posting(posting: Posting, now: Timestamp) -> Vec<Write> {
        let mut writes = Write::adjustments(&posting);
        writes.extend(posting.entries(now).into_iter().map(Write::AppendLedger));
        writes
    }

    /// The writes of a ledger transaction: each member posting (its entries marked with
    /// the transaction's id), one add per platform account touched and its entries.
    /// Refuses (as an invalid commit, a bug) a transaction that does not sum to zero.
    pub fn transaction(transaction: Transaction, now: Timestamp) -> Result<Vec<Write>, StoreError> {
        transaction
            .check_balanced()
            .map_err(|e| StoreError::InvalidCommit(e.to_string()))?;
        let mut writes = Vec::new();
        for posting in &transaction.postings {
            writes.extend(Write::adjustments(posting));
            writes.extend(posting.entries(now).into_iter().map(|mut entry| {
                entry.transaction = Some(transaction.id.clone());
                Write::AppendLedger(entry)
            }));
        }
        writes.extend(Write::platform_legs(transaction.platform_entries(now))?);
        writes.extend(Write::outbox(&transaction, now)?);
        Ok(writes)
    }

    /// A posting's balance adjustments: one per item it moves (see `Posting::parts`).
    fn adjustments(posting: &Posting) -> Vec<Write> {
        posting
            .parts()
            .into_iter()
            .map(|(part, deltas)| Write::AdjustBalance {
                member_id: posting.member_id.clone(),
                currency: posting.currency,
                part,
                deltas,
            })
            .collect()
    }

    /// The writes of several ledger transactions in one commit (a settlement batch): each
    /// transaction's writes, with the adjustments of one balance item merged into one
    /// write (a commit touches an item once). Everything else stays apart: every
    /// transaction keeps its own entries, id and event.
    pub fn transactions(transactions: Vec<Transaction>, now: Timestamp) -> Result<Vec<Write>, StoreError> {
        let mut writes: Vec<Write> = Vec::new();
        for transaction in transactions {
            for write in Write::transaction(transaction, now)? {
                let Write::AdjustBalance {
                    member_id,
                    currency,
                    part,
                    deltas,
                } = write
                else {
                    writes.push(write);
                    continue;
                };
                let same_item = writes.iter_mut().find_map(|w| match w {
                    Write::AdjustBalance {
                        member_id: m,
                        currency: c,
                        part: p,
                        deltas: d,
                    } if *m == member_id && *c == currency && *p == part => Some(d),
                    _ => None,
                });
                match same_item {
                    Some(existing) => {
                        *existing = existing
                            .merged(&deltas)
                            .ok_or_else(|| StoreError::InvalidCommit("a batch's deltas overflow".to_owned()))?;
                    }
                    None => writes.push(Write::AdjustBalance {
                        member_id,
                        currency,
                        part,
                        deltas,
                    }),
                }
            }
        }
        Ok(writes)
    }

    /// The outbox writes of a movement: its event (to be published) and, for a withdrawal
    /// created, paid or returned, its SMS notification (to be sent), both new. They commit
    /// with the money, so an event exists exactly when its movement does.
    pub fn outbox(transaction: &Transaction, now: Timestamp) -> Result<Vec<Write>, StoreError> {
        let Some(event) = &transaction.event else {
            return Ok(Vec::new());
        };
        let record = OutboxEvent::new(&transaction.id, &transaction.member_id, event, now);
        let mut writes = vec![Write::PutDoc {
            doc: Doc::new(
                events::keys::outbox(&transaction.member_id, &transaction.id).into(),
                1,
                &record,
            )?
            .expiring(now.plus_seconds(events::OUTBOX_TTL_SECONDS)),
            expect: Expect::Absent,
        }];
        if event.event_type.notifies() {
            let notification = Notification {
                event: record,
                state: NotificationState::Pending,
                attempts: 0,
                due_at: now,
            };
            writes.push(Write::PutDoc {
                doc: Doc::new(
                    events::keys::notification(&transaction.member_id, &transaction.id).into(),
                    1,
                    &notification,
                )?,
                expect: Expect::Absent,
            });
        }
        Ok(writes)
    }

    /// The writes of the platform's side of a movement: one add per shard touched (its
    /// entries merged, since a commit may touch an item once) and every entry.
    pub fn platform_legs(entries: Vec<PlatformEntry>) -> Result<Vec<Write>, StoreError> {
        let mut adds: Vec<(PlatformShard, Amount)> = Vec::new();
        for entry in &entries {
            match adds.iter_mut().find(|(shard, _)| *shard == entry.shard()) {
                Some((_, total)) => {
                    *total = total
                        .checked_add(entry.amount)
                        .ok_or_else(|| StoreError::InvalidCommit("platform leg overflow".to_owned()))?;
                }
                None => adds.push((entry.shard(), entry.amount)),
            }
        }
        let mut writes: Vec<Write> = adds
            .into_iter()
            .filter(|(_, delta)| !delta.is_zero())
            .map(|(shard, delta)| Write::AdjustPlatform { shard, delta })
            .collect();
        writes.extend(entries.into_iter().map(Write::AppendPlatformEntry));
        Ok(writes)
    }

    /// The kind of item this write touches.
    pub fn target(&self) -> WriteTarget {
        match self {
            Write::PutMember { .. } | Write::CheckMember { .. } => WriteTarget::Member,
            Write::PutCode { .. } | Write::DeleteCode { .. } => WriteTarget::Code,
            Write::IndexMember { .. } => WriteTarget::MemberIndex,
            Write::AdjustBalance { .. } => WriteTarget::Balance,
            Write::AppendLedger(_) => WriteTarget::Ledger,
            Write::PutWithdrawal { .. } => WriteTarget::Withdrawal,
            Write::PutCollection { .. } => WriteTarget::Collection,
            Write::PutRefund(_) => WriteTarget::Refund,
            Write::PutRun(_) => WriteTarget::Run,
            Write::PutIdempotency { .. } => WriteTarget::Idempotency,
            Write::PutDoc { .. } | Write::DeleteDoc { .. } => WriteTarget::Doc,
            Write::AdjustPlatform { .. } | Write::AppendPlatformEntry(_) => WriteTarget::Platform,
        }
    }

    /// The identity of the item this write touches, as `kind/key`: a commit may touch
    /// each item once (DynamoDB's rule, enforced alike in every adapter).
    pub fn item_identity(&self) -> String {
        match self {
            Write::PutMember { member, .. } => format!("member/{}", member.member_id),
            Write::PutCode { code, .. } => format!("code/{}", code.member_id),
            Write::CheckMember { member_id, .. } => format!("member/{member_id}"),
            Write::IndexMember { member_id } => format!("member-index/{member_id}"),
            Write::DeleteCode { member_id, .. } => format!("code/{member_id}"),
            Write::AdjustBalance {
                member_id,
                currency,
                part: BalancePart::Main,
                ..
            } => format!("balance/{member_id}/{currency}"),
            Write::AdjustBalance {
                member_id,
                currency,
                part: BalancePart::Pending(shard),
                ..
            } => format!("balance/{member_id}/{currency}#p{shard}"),
            Write::AppendLedger(entry) => {
                format!("ledger/{}/{}/{}", entry.member_id, entry.currency, entry.id)
            }
            Write::PutWithdrawal { withdrawal, .. } => format!("withdrawal/{}", withdrawal.id),
            Write::PutRun(run) => format!("run/{}", run.run_id),
            Write::PutCollection { collection, .. } => {
                format!("collection/{}", collection.collection_id)
            }
            Write::PutRefund(refund) => format!("refund/{}", refund.refund_id),
            Write::PutIdempotency { record, .. } => {
                format!("idempotency/{}/{}", record.member_id, record.key)
            }
            Write::PutDoc { doc, .. } => doc.key.identity(),
            Write::DeleteDoc { key, .. } => key.identity(),
            Write::AdjustPlatform { shard, .. } => format!("platform/{}", shard.name()),
            Write::AppendPlatformEntry(entry) => format!("platform-entry/{}/{}", entry.shard().name(), entry.id),
        }
    }
}

/// Checks the shape of a commit before any adapter runs it: not empty, within the
/// size limit, each item touched once.
pub fn validate_commit(writes: &[Write]) -> Result<(), StoreError> {
    if writes.is_empty() || writes.len() > MAX_WRITES_PER_COMMIT {
        return Err(StoreError::InvalidCommit(format!(
            "a commit carries 1 to {MAX_WRITES_PER_COMMIT} writes, not {}",
            writes.len()
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(writes.len());
    for write in writes {
        let identity = write.item_identity();
        if !seen.insert(identity.clone()) {
            return Err(StoreError::InvalidCommit(format!("{identity} is written twice")));
        }
    }
    Ok(())
}
