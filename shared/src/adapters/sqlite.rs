//! The embedded store: SQLite through `rusqlite`, for the local gateway.
//!
//! A commit is one request's writes checked in order, all or nothing, so its semantics
//! match DynamoDB's `TransactWriteItems`. WAL with `synchronous=FULL` makes a committed
//! write survive a crash or restart.
//!
//! Group commit. With `synchronous=FULL` every SQLite COMMIT is an fsync of the WAL, and
//! the fsync, not the SQL, is what a durable write costs: one transaction per request
//! capped the gateway at one fsync's worth of requests per fsync time. So every write goes
//! to one writer thread, over a queue. The writer takes everything queued (a group: a
//! group of one when requests arrive one at a time, so a lone request waits for nothing),
//! opens one `BEGIN IMMEDIATE` transaction, runs each request inside its own SAVEPOINT —
//! a request whose condition fails is rolled back to its savepoint and answered
//! `ConditionFailed` alone, exactly as if it had its own transaction, while the others
//! keep their writes — then COMMITs once: one fsync makes the whole group durable. Only
//! after that COMMIT returns is any request of the group answered, so no caller ever
//! hears "done" for a write a crash could take back. Requests in a group run one after
//! another on one connection, so each sees the writes of those before it, as it would
//! had they committed one by one in that order.
//!
//! Reads go to a connection of their own: in WAL mode a reader sees the last committed
//! state, never the writer's open transaction, and since a commit is answered only after
//! COMMIT, a read made after an answered commit sees it (read-your-writes). The in-memory
//! database (tests) has one connection, shared by the writer and the readers.

use std::any::Any;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::Timestamp;
use crate::ids::{ExternalId, WithdrawalId};
use crate::ledger::{Balance, BalancePart, Balances, LedgerEntry, PlatformAccount, PlatformEntry, PlatformShard};
use crate::member::{Member, MemberId, VerificationCode};
use crate::money::{Amount, Currency};
use crate::records::{Collection, CollectionStatus, IdempotencyRecord, Refund, RunRecord, Withdrawal};
use crate::sms::{OutboxMessage, SmsError, SmsSender};
use crate::store::{
    validate_commit, Doc, DocKey, EntryRange, Expect, MemberState, Page, PageRequest, Store, StoreError,
    WithdrawalContext, Write,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS members (
    member_id TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS member_index (
    shard INTEGER NOT NULL, member_id TEXT NOT NULL, PRIMARY KEY (shard, member_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS codes (
    member_id TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS balances (
    member_id TEXT NOT NULL, currency TEXT NOT NULL,
    available TEXT NOT NULL, pending TEXT NOT NULL, in_transit TEXT NOT NULL,
    PRIMARY KEY (member_id, currency));
CREATE TABLE IF NOT EXISTS pending_shards (
    member_id TEXT NOT NULL, currency TEXT NOT NULL, shard INTEGER NOT NULL, pending TEXT NOT NULL,
    PRIMARY KEY (member_id, currency, shard)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger (
    member_id TEXT NOT NULL, currency TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (member_id, currency, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ledger_by_member ON ledger (member_id, id);
CREATE TABLE IF NOT EXISTS withdrawals (
    id TEXT PRIMARY KEY, member_id TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS withdrawals_by_member ON withdrawals (member_id, id);
CREATE TABLE IF NOT EXISTS collections (
    collection_id TEXT PRIMARY KEY, member_id TEXT NOT NULL, version INTEGER NOT NULL,
    due_at INTEGER, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS collections_by_member ON collections (member_id, collection_id);
CREATE INDEX IF NOT EXISTS collections_due ON collections (due_at) WHERE due_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS refunds (refund_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    member_id TEXT NOT NULL, key TEXT NOT NULL, expires_at INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (member_id, key));
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    partition TEXT NOT NULL, sort TEXT NOT NULL, version INTEGER NOT NULL, expires_at INTEGER,
    body TEXT NOT NULL, PRIMARY KEY (partition, sort)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS platform (
    account TEXT NOT NULL, currency TEXT NOT NULL, shard INTEGER NOT NULL, balance TEXT NOT NULL,
    PRIMARY KEY (account, currency, shard)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS platform_entries (
    shard TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (shard, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, subject TEXT NOT NULL, message TEXT NOT NULL, sent_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox_stream (
    position INTEGER PRIMARY KEY AUTOINCREMENT, partition TEXT NOT NULL, sort TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox_stream_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS event_bus (
    id TEXT PRIMARY KEY, member_id TEXT NOT NULL, sequence INTEGER NOT NULL, body TEXT NOT NULL,
    put_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS event_bus_by_member ON event_bus (member_id, sequence);
CREATE TABLE IF NOT EXISTS sms_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, phone TEXT NOT NULL, message TEXT NOT NULL,
    sent_at INTEGER NOT NULL);
";

/// Whether concurrent commits share one SQLite transaction (and one fsync).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupCommit {
    /// Everything queued when the writer is free goes into one transaction (the default).
    #[default]
    On,
    /// One transaction, and one fsync, per commit: the same writer thread taking one
    /// request at a time. Kept to measure what grouping buys.
    Off,
}

/// The most requests one group takes: bounds the transaction (and the WAL it appends)
/// while still amortising an fsync over hundreds of requests.
const MAX_GROUP: usize = 256;

/// What a job's work produced: its value (boxed, so that one queue carries jobs of every
/// result type), or why it failed.
type Outcome = Result<Box<dyn Any + Send>, StoreError>;

/// Work for the writer: run inside a savepoint of the group's transaction; its outcome
/// goes back on `reply` once the group's COMMIT has (or has not) happened.
struct Job {
    work: Box<dyn FnOnce(&Connection) -> Outcome + Send>,
    reply: tokio::sync::oneshot::Sender<Outcome>,
}

/// Transactions the writer committed and the requests they carried: their ratio is the
/// mean group size (the load tool prints it).
#[derive(Debug, Default)]
struct WriterCounts {
    /// Jobs sent to the writer.
    queued: AtomicU64,
    transactions: AtomicU64,
    requests: AtomicU64,
}

/// The embedded store. Cheap to clone: clones share the connections and the writer.
#[derive(Clone)]
pub struct SqliteStore {
    /// The readers' connection (over the in-memory database, also the writer's).
    conn: Arc<Mutex<Connection>>,
    /// The writer thread's queue. The thread stops when the last clone is dropped.
    jobs: mpsc::Sender<Job>,
    counts: Arc<WriterCounts>,
    /// Whether a commit waits for its answer on a blocking thread (the in-memory
    /// store, see [`SqliteStore::with_writer`]) rather than on the async task.
    wait_on_blocking_pool: bool,
}

const WRITER_STOPPED: &str = "the SQLite writer has stopped";
const WRITER_GONE: &str = "the SQLite writer stopped before answering";

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(corrupt)
}

fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(corrupt)
}

/// A file connection as both kinds use it: WAL, an fsync at every COMMIT, and a wait
/// (rather than an error) while another connection holds a lock.
fn open_file(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(unavailable)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(unavailable)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(unavailable)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(unavailable)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, with group commit.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, GroupCommit::On)
    }

    /// Opens the database file at `path`: a writer connection (on its own thread) and a
    /// reader connection.
    pub fn open_with(path: &Path, group_commit: GroupCommit) -> Result<SqliteStore, StoreError> {
        let writer = open_file(path)?;
        writer.execute_batch(SCHEMA).map_err(unavailable)?;
        let reader = open_file(path)?;
        // Every write goes through the writer: a write on this connection would be a
        // second writer, waiting on the first's lock and bypassing the group.
        reader.pragma_update(None, "query_only", true).map_err(unavailable)?;
        SqliteStore::start(
            Arc::new(Mutex::new(reader)),
            Arc::new(Mutex::new(writer)),
            group_commit,
            false,
        )
    }

    /// A private in-memory database, for tests: one connection, which the writer thread
    /// and the readers take turns on (another connection would be another database).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory().map_err(unavailable)?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        let conn = Arc::new(Mutex::new(conn));
        SqliteStore::start(Arc::clone(&conn), conn, GroupCommit::On, true)
    }

    fn start(
        reader: Arc<Mutex<Connection>>,
        writer: Arc<Mutex<Connection>>,
        group_commit: GroupCommit,
        wait_on_blocking_pool: bool,
    ) -> Result<SqliteStore, StoreError> {
        let (jobs, queue) = mpsc::channel();
        let counts = Arc::new(WriterCounts::default());
        let max_group = match group_commit {
            GroupCommit::On => MAX_GROUP,
            GroupCommit::Off => 1,
        };
        let thread_counts = Arc::clone(&counts);
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || write_groups(&writer, &queue, max_group, &thread_counts))
            .map_err(unavailable)?;
        Ok(SqliteStore {
            conn: reader,
            jobs,
            counts,
            wait_on_blocking_pool,
        })
    }

    /// `(transactions, requests)` the writer has committed so far.
    pub fn writer_counts(&self) -> (u64, u64) {
        (
            self.counts.transactions.load(Ordering::Relaxed),
            self.counts.requests.load(Ordering::Relaxed),
        )
    }

    /// Runs `f` with the readers' connection on a blocking thread. Reads only: a write
    /// goes through [`SqliteStore::with_writer`].
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| unavailable("connection lock poisoned"))?;
            f(&mut guard)
        })
        .await
        .map_err(unavailable)?
    }

    /// Runs `f` on the writer, inside a savepoint of its group's transaction: an `Err`
    /// undoes what `f` wrote and nothing else. Answers only once the group's COMMIT has
    /// returned (with `f`'s error, or the COMMIT's, if either failed).
    async fn with_writer<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let work: Box<dyn FnOnce(&Connection) -> Outcome + Send> =
            Box::new(move |conn| f(conn).map(|value| Box::new(value) as Box<dyn Any + Send>));
        let job = Job { work, reply };
        let outcome = if self.wait_on_blocking_pool {
            // Tokio does not advance paused time while a blocking task runs, but does while
            // every task waits on a channel: the simulator runs on paused time over the
            // in-memory store, and its timers must not jump while a commit is in the
            // writer. So there the wait is a blocking task, as every store call was.
            let (jobs, counts) = (self.jobs.clone(), Arc::clone(&self.counts));
            tokio::task::spawn_blocking(move || {
                jobs.send(job).map_err(|_| unavailable(WRITER_STOPPED))?;
                counts.queued.fetch_add(1, Ordering::Relaxed);
                answer.blocking_recv().map_err(|_| unavailable(WRITER_GONE))
            })
            .await
            .map_err(unavailable)??
        } else {
            self.jobs.send(job).map_err(|_| unavailable(WRITER_STOPPED))?;
            self.counts.queued.fetch_add(1, Ordering::Relaxed);
            answer.await.map_err(|_| unavailable(WRITER_GONE))?
        };
        let value = outcome?;
        // The job was built above with this very `T`.
        value
            .downcast::<T>()
            .map(|value| *value)
            .map_err(|_| corrupt("the SQLite writer answered another type"))
    }

    /// The SMS outbox that shares this database (so sent messages survive restarts).
    pub fn outbox(&self) -> SqliteOutbox {
        SqliteOutbox { store: self.clone() }
    }
}

type Reply = tokio::sync::oneshot::Sender<Outcome>;

/// The writer thread: one group per turn, until every clone of the store is gone.
fn write_groups(conn: &Mutex<Connection>, queue: &mpsc::Receiver<Job>, max_group: usize, counts: &WriterCounts) {
    while let Ok(first) = queue.recv() {
        // The lock before the rest of the group (over the in-memory database a reader may
        // hold it): whatever queues while the writer waits, for a reader or for the last
        // group's fsync, joins this group.
        let Ok(conn) = conn.lock() else {
            let _ = first.reply.send(Err(unavailable("connection lock poisoned")));
            continue;
        };
        let mut group = vec![first];
        while group.len() < max_group {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(&conn, group, counts);
    }
}

/// Runs `group` in one transaction, each job in a savepoint of its own, COMMITs once (one
/// fsync), counts it, and only then answers every job (so a caller that has its answer
/// sees its transaction counted).
fn commit_group(conn: &Connection, group: Vec<Job>, counts: &WriterCounts) {
    if group.is_empty() {
        return;
    }
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let error = unavailable(e);
        for job in group {
            let _ = job.reply.send(Err(error.clone()));
        }
        return;
    }
    let mut done: Vec<(Outcome, Reply)> = Vec::with_capacity(group.len());
    let mut jobs = group.into_iter();
    while let Some(job) = jobs.next() {
        let outcome = run_in_savepoint(conn, job.work);
        if conn.is_autocommit() {
            // SQLite ended the whole transaction (it does so on some I/O and out-of-memory
            // errors): what the jobs before this one wrote went with it. They are told
            // (their writes did not happen), and the rest start a transaction of their own.
            let lost = StoreError::Unavailable(format!(
                "the group's transaction was rolled back: {}",
                outcome
                    .as_ref()
                    .err()
                    .map_or_else(|| "by SQLite".to_owned(), ToString::to_string)
            ));
            for (_, reply) in done {
                let _ = reply.send(Err(lost.clone()));
            }
            let _ = job.reply.send(Err(lost));
            return commit_group(conn, jobs.collect(), counts);
        }
        done.push((outcome, job.reply));
    }
    let committed = conn.execute_batch("COMMIT").map_err(unavailable);
    if committed.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    if committed.is_ok() {
        counts.transactions.fetch_add(1, Ordering::Relaxed);
        counts.requests.fetch_add(done.len() as u64, Ordering::Relaxed);
    }
    // Durable (or not) now: the answers go out.
    for (outcome, reply) in done {
        let answer = match (outcome, &committed) {
            (Err(error), _) => Err(error),
            (Ok(_), Err(error)) => Err(error.clone()),
            (Ok(value), Ok(())) => Ok(value),
        };
        let _ = reply.send(answer);
    }
}

/// Runs one job inside `SAVEPOINT request`: kept when it succeeds, rolled back to the
/// savepoint when it fails (or panics), so a failed request leaves nothing behind while
/// the group's other requests keep theirs.
fn run_in_savepoint(conn: &Connection, work: Box<dyn FnOnce(&Connection) -> Outcome + Send>) -> Outcome {
    conn.execute_batch("SAVEPOINT request").map_err(unavailable)?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)))
        .unwrap_or_else(|_| Err(unavailable("a write panicked")));
    const UNDO: &str = "ROLLBACK TO request; RELEASE request";
    match outcome {
        Ok(value) => match conn.execute_batch("RELEASE request") {
            Ok(()) => Ok(value),
            Err(e) => {
                let _ = conn.execute_batch(UNDO);
                Err(unavailable(e))
            }
        },
        Err(error) => {
            let _ = conn.execute_batch(UNDO);
            Err(error)
        }
    }
}

/// The record stored in the `body` column of the row `sql` selects, if any.
fn one<T: DeserializeOwned>(conn: &Connection, sql: &str, args: &[SqlValue]) -> Result<Option<T>, StoreError> {
    let body: Option<String> = conn
        .query_row(sql, params_from_iter(args.iter()), |r| r.get(0))
        .optional()
        .map_err(unavailable)?;
    body.as_deref().map(from_json).transpose()
}

/// The records stored in the `body` column of every row `sql` selects.
fn all<T: DeserializeOwned>(conn: &Connection, sql: &str, args: &[SqlValue]) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(0))
        .map_err(unavailable)?;
    let mut items = Vec::new();
    for row in rows {
        items.push(from_json(&row.map_err(unavailable)?)?);
    }
    Ok(items)
}

fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_owned())
}

fn integer(value: usize) -> SqlValue {
    SqlValue::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}

/// Every id sorts below this: the upper bound of a first page.
const NEWEST: &str = "\u{10FFFF}";

fn read_balance(conn: &Connection, member_id: &str, currency: Currency) -> Result<Balance, StoreError> {
    let row = conn
        .query_row(
            "SELECT available, pending, in_transit FROM balances WHERE member_id = ?1 AND currency = ?2",
            params![member_id, currency.code()],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
        )
        .optional()
        .map_err(unavailable)?;
    match row {
        None => Ok(Balance::default()),
        Some((a, p, t)) => Ok(Balance {
            available: Amount::parse_stored(&a).map_err(corrupt)?,
            pending: Amount::parse_stored(&p).map_err(corrupt)?,
            in_transit: Amount::parse_stored(&t).map_err(corrupt)?,
        }),
    }
}

/// A member's balance in one currency as the member sees it: the balance item plus its
/// pending shards (see `ledger::PENDING_SHARDS`).
fn read_member_balance(conn: &Connection, member_id: &str, currency: Currency) -> Result<Balance, StoreError> {
    let mut balance = read_balance(conn, member_id, currency)?;
    let mut statement = conn
        .prepare_cached("SELECT pending FROM pending_shards WHERE member_id = ?1 AND currency = ?2")
        .map_err(unavailable)?;
    let rows = statement
        .query_map(params![member_id, currency.code()], |r| r.get::<_, String>(0))
        .map_err(unavailable)?;
    for row in rows {
        let pending = Amount::parse_stored(&row.map_err(unavailable)?).map_err(corrupt)?;
        balance.pending = balance
            .pending
            .checked_add(pending)
            .ok_or_else(|| corrupt("pending overflow"))?;
    }
    Ok(balance)
}

fn read_pending_shard(
    conn: &Connection,
    member_id: &str,
    currency: Currency,
    shard: u8,
) -> Result<Balance, StoreError> {
    let pending = conn
        .query_row(
            "SELECT pending FROM pending_shards WHERE member_id = ?1 AND currency = ?2 AND shard = ?3",
            params![member_id, currency.code(), shard],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(unavailable)?;
    Ok(Balance {
        pending: match pending {
            Some(text) => Amount::parse_stored(&text).map_err(corrupt)?,
            None => Amount::ZERO,
        },
        ..Balance::default()
    })
}

fn write_balance(conn: &Connection, member_id: &str, currency: Currency, b: &Balance) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO balances (member_id, currency, available, pending, in_transit) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (member_id, currency) DO UPDATE SET
           available = excluded.available, pending = excluded.pending, in_transit = excluded.in_transit",
        params![
            member_id,
            currency.code(),
            b.available.to_string(),
            b.pending.to_string(),
            b.in_transit.to_string()
        ],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// Inserts a row unless its key exists: `false` when it did (the write's condition failed).
fn insert_new(conn: &Connection, sql: &str, args: &[SqlValue]) -> Result<bool, StoreError> {
    let inserted = conn.execute(sql, params_from_iter(args.iter())).map_err(unavailable)?;
    Ok(inserted == 1)
}

fn stored_version(conn: &Connection, sql: &str, key: &str) -> Result<Option<u64>, StoreError> {
    conn.query_row(sql, params![key], |r| r.get::<_, i64>(0))
        .optional()
        .map_err(unavailable)
        .map(|v| v.map(|v| u64::try_from(v).unwrap_or(0)))
}

fn expectation_holds(expect: Expect, stored: Option<u64>) -> bool {
    match expect {
        Expect::Any => true,
        Expect::Absent => stored.is_none(),
        Expect::Version(v) => stored == Some(v),
    }
}

fn version_param(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

/// Applies one write inside the open transaction; `Ok(false)` when its condition fails.
fn apply(conn: &Connection, write: &Write) -> Result<bool, StoreError> {
    match write {
        Write::PutMember { member, expect } => {
            let key = member.member_id.as_str();
            let stored = stored_version(conn, "SELECT version FROM members WHERE member_id = ?1", key)?;
            if !expectation_holds(*expect, stored) {
                return Ok(false);
            }
            conn.execute(
                "INSERT OR REPLACE INTO members (member_id, version, body) VALUES (?1, ?2, ?3)",
                params![key, version_param(member.version), to_json(member)?],
            )
            .map_err(unavailable)?;
        }
        Write::PutCode { code, expect } => {
            let key = code.member_id.as_str();
            let stored = stored_version(conn, "SELECT version FROM codes WHERE member_id = ?1", key)?;
            if !expectation_holds(*expect, stored) {
                return Ok(false);
            }
            conn.execute(
                "INSERT OR REPLACE INTO codes (member_id, version, body) VALUES (?1, ?2, ?3)",
                params![key, version_param(code.version), to_json(code)?],
            )
            .map_err(unavailable)?;
        }
        Write::IndexMember { member_id } => {
            conn.execute(
                "INSERT OR IGNORE INTO member_index (shard, member_id) VALUES (?1, ?2)",
                params![member_id.shard(), member_id.as_str()],
            )
            .map_err(unavailable)?;
        }
        Write::CheckMember { member_id, version } => {
            let stored = stored_version(
                conn,
                "SELECT version FROM members WHERE member_id = ?1",
                member_id.as_str(),
            )?;
            let holds = match version {
                None => stored.is_some(),
                Some(v) => stored == Some(*v),
            };
            if !holds {
                return Ok(false);
            }
        }
        Write::DeleteCode { member_id, expect } => {
            let key = member_id.as_str();
            let stored = stored_version(conn, "SELECT version FROM codes WHERE member_id = ?1", key)?;
            if !expectation_holds(*expect, stored) {
                return Ok(false);
            }
            conn.execute("DELETE FROM codes WHERE member_id = ?1", params![key])
                .map_err(unavailable)?;
        }
        Write::AdjustBalance {
            member_id,
            currency,
            part: BalancePart::Main,
            deltas,
        } => {
            let current = read_balance(conn, member_id.as_str(), *currency)?;
            let Some(next) = current.apply(deltas) else {
                return Ok(false);
            };
            write_balance(conn, member_id.as_str(), *currency, &next)?;
        }
        Write::AdjustBalance {
            member_id,
            currency,
            part: BalancePart::Pending(shard),
            deltas,
        } => {
            // A shard holds only `pending`: any other bucket's delta is refused (as a
            // negative one is by `apply`), since `Posting::parts` never sends one here.
            let current = read_pending_shard(conn, member_id.as_str(), *currency, *shard)?;
            let Some(next) = current.apply(deltas) else {
                return Ok(false);
            };
            if !next.available.is_zero() || !next.in_transit.is_zero() {
                return Err(StoreError::InvalidCommit(
                    "a pending shard moves only pending".to_owned(),
                ));
            }
            conn.execute(
                "INSERT INTO pending_shards (member_id, currency, shard, pending) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (member_id, currency, shard) DO UPDATE SET pending = excluded.pending",
                params![member_id.as_str(), currency.code(), shard, next.pending.to_string()],
            )
            .map_err(unavailable)?;
        }
        Write::AppendLedger(entry) => {
            let args = [
                text(entry.member_id.as_str()),
                text(entry.currency.code()),
                text(&entry.id),
                SqlValue::Text(to_json(entry)?),
            ];
            return insert_new(
                conn,
                "INSERT OR IGNORE INTO ledger (member_id, currency, id, body) VALUES (?1, ?2, ?3, ?4)",
                &args,
            );
        }
        Write::PutWithdrawal { withdrawal, expect } => {
            let stored = stored_version(
                conn,
                "SELECT version FROM withdrawals WHERE id = ?1",
                withdrawal.id.as_str(),
            )?;
            if !expectation_holds(*expect, stored) {
                return Ok(false);
            }
            conn.execute(
                "INSERT OR REPLACE INTO withdrawals (id, member_id, version, body) VALUES (?1, ?2, ?3, ?4)",
                params![
                    withdrawal.id.as_str(),
                    withdrawal.member_id.as_str(),
                    version_param(withdrawal.version),
                    to_json(withdrawal)?
                ],
            )
            .map_err(unavailable)?;
        }
        Write::PutCollection { collection, expect } => {
            let key = collection.collection_id.as_str();
            let stored = stored_version(conn, "SELECT version FROM collections WHERE collection_id = ?1", key)?;
            if !expectation_holds(*expect, stored) {
                return Ok(false);
            }
            // Only unsettled collections are in the due index, like DynamoDB's sparse GSI.
            let due_at =
                (collection.status == CollectionStatus::Pending).then(|| collection.available_at.unix_millis());
            conn.execute(
                "INSERT OR REPLACE INTO collections (collection_id, member_id, version, due_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    key,
                    collection.member_id.as_str(),
                    version_param(collection.version),
                    due_at,
                    to_json(collection)?
                ],
            )
            .map_err(unavailable)?;
        }
        Write::PutRefund(refund) => {
            let args = [text(refund.refund_id.as_str()), SqlValue::Text(to_json(refund)?)];
            return insert_new(
                conn,
                "INSERT OR IGNORE INTO refunds (refund_id, body) VALUES (?1, ?2)",
                &args,
            );
        }
        Write::PutRun(run) => {
            let args = [text(&run.run_id), SqlValue::Text(to_json(run)?)];
            return insert_new(conn, "INSERT OR IGNORE INTO runs (run_id, body) VALUES (?1, ?2)", &args);
        }
        Write::PutIdempotency { record, now } => {
            let held: Option<i64> = conn
                .query_row(
                    "SELECT expires_at FROM idempotency WHERE member_id = ?1 AND key = ?2",
                    params![record.member_id.as_str(), record.key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            if held.is_some_and(|expires_at| expires_at > now.unix_millis()) {
                return Ok(false);
            }
            conn.execute(
                "INSERT OR REPLACE INTO idempotency (member_id, key, expires_at, body) VALUES (?1, ?2, ?3, ?4)",
                params![
                    record.member_id.as_str(),
                    record.key,
                    record.expires_at.unix_millis(),
                    to_json(record)?
                ],
            )
            .map_err(unavailable)?;
        }
        Write::PutDoc { doc, expect } => {
            let stored = read_doc(conn, &doc.key)?.map(|d| d.version);
            if !expectation_holds(*expect, stored) {
                return Ok(false);
            }
            // The embedded store's stand-in for the DynamoDB Stream: each new outbox item
            // is appended, in commit order, in the same SQLite transaction.
            if stored.is_none() && doc.key.partition.starts_with(crate::events::keys::OUTBOX_PREFIX) {
                conn.execute(
                    "INSERT INTO outbox_stream (partition, sort) VALUES (?1, ?2)",
                    params![doc.key.partition, doc.key.sort],
                )
                .map_err(unavailable)?;
            }
            conn.execute(
                "INSERT OR REPLACE INTO docs (partition, sort, version, expires_at, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    doc.key.partition,
                    doc.key.sort,
                    version_param(doc.version),
                    doc.expires_at.map(Timestamp::unix_millis),
                    doc.body
                ],
            )
            .map_err(unavailable)?;
        }
        Write::DeleteDoc { key, expect } => {
            let stored = read_doc(conn, key)?.map(|d| d.version);
            if !expectation_holds(*expect, stored) {
                return Ok(false);
            }
            conn.execute(
                "DELETE FROM docs WHERE partition = ?1 AND sort = ?2",
                params![key.partition, key.sort],
            )
            .map_err(unavailable)?;
        }
        Write::AdjustPlatform { shard, delta } => {
            let account = shard.account.as_str();
            let current: Option<String> = conn
                .query_row(
                    "SELECT balance FROM platform WHERE account = ?1 AND currency = ?2 AND shard = ?3",
                    params![account, shard.currency.code(), shard.shard],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            let current = current
                .as_deref()
                .map_or(Ok(Amount::ZERO), Amount::parse_stored)
                .map_err(corrupt)?;
            let next = current
                .checked_add(*delta)
                .ok_or_else(|| corrupt("platform balance overflow"))?;
            conn.execute(
                "INSERT OR REPLACE INTO platform (account, currency, shard, balance) VALUES (?1, ?2, ?3, ?4)",
                params![account, shard.currency.code(), shard.shard, next.to_string()],
            )
            .map_err(unavailable)?;
        }
        Write::AppendPlatformEntry(entry) => {
            let args = [
                text(&entry.shard().name()),
                text(&entry.id),
                SqlValue::Text(to_json(entry)?),
            ];
            return insert_new(
                conn,
                "INSERT OR IGNORE INTO platform_entries (shard, id, body) VALUES (?1, ?2, ?3)",
                &args,
            );
        }
    }
    Ok(true)
}

fn read_doc(conn: &Connection, key: &DocKey) -> Result<Option<Doc>, StoreError> {
    conn.query_row(
        "SELECT version, expires_at, body FROM docs WHERE partition = ?1 AND sort = ?2",
        params![key.partition, key.sort],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, String>(2)?)),
    )
    .optional()
    .map_err(unavailable)
    .map(|row| {
        row.map(|(version, expires_at, body)| Doc {
            key: key.clone(),
            version: u64::try_from(version).unwrap_or(0),
            expires_at: expires_at.map(Timestamp::from_unix_millis),
            body,
        })
    })
}

fn page_of<T>(mut items: Vec<T>, limit: usize) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    Page { items, more }
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for SqliteStore {
    async fn member_state(&self, member_id: &MemberId) -> Result<Option<MemberState>, StoreError> {
        let key = member_id.as_str().to_owned();
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            let args = [text(&key)];
            let Some(member) = one::<Member>(&tx, "SELECT body FROM members WHERE member_id = ?1", &args)? else {
                return Ok(None);
            };
            let code = one::<VerificationCode>(&tx, "SELECT body FROM codes WHERE member_id = ?1", &args)?;
            let balances = Balances {
                usd: read_member_balance(&tx, &key, Currency::Usd)?,
                cny: read_member_balance(&tx, &key, Currency::Cny)?,
            };
            Ok(Some(MemberState { member, code, balances }))
        })
        .await
    }

    async fn member_exists(&self, member_id: &MemberId) -> Result<bool, StoreError> {
        let key = member_id.as_str().to_owned();
        self.with_conn(move |conn| {
            conn.query_row("SELECT 1 FROM members WHERE member_id = ?1", params![key], |_| Ok(()))
                .optional()
                .map(|row| row.is_some())
                .map_err(unavailable)
        })
        .await
    }

    async fn member_phone(&self, member_id: &MemberId) -> Result<Option<crate::phone::PhoneNumber>, StoreError> {
        let args = [text(member_id.as_str())];
        let member: Option<Member> = self
            .with_conn(move |conn| one(conn, "SELECT body FROM members WHERE member_id = ?1", &args))
            .await?;
        Ok(member.and_then(|m| m.phone))
    }

    async fn balances(&self, member_id: &MemberId) -> Result<Balances, StoreError> {
        let key = member_id.as_str().to_owned();
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            Ok(Balances {
                usd: read_member_balance(&tx, &key, Currency::Usd)?,
                cny: read_member_balance(&tx, &key, Currency::Cny)?,
            })
        })
        .await
    }

    async fn withdrawal_context(
        &self,
        member_id: &MemberId,
        currency: Currency,
        idempotency_key: &str,
        docs: &[DocKey],
    ) -> Result<WithdrawalContext, StoreError> {
        let (member_key, idempotency_key) = (member_id.as_str().to_owned(), idempotency_key.to_owned());
        let doc_keys = docs.to_vec();
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            let member = one(
                &tx,
                "SELECT body FROM members WHERE member_id = ?1",
                &[text(&member_key)],
            )?;
            let idempotency = one(
                &tx,
                "SELECT body FROM idempotency WHERE member_id = ?1 AND key = ?2",
                &[text(&member_key), text(&idempotency_key)],
            )?;
            Ok(WithdrawalContext {
                member,
                balance: read_balance(&tx, &member_key, currency)?,
                idempotency,
                docs: doc_keys.iter().map(|k| read_doc(&tx, k)).collect::<Result<_, _>>()?,
            })
        })
        .await
    }

    async fn docs(&self, keys: &[DocKey]) -> Result<Vec<Option<Doc>>, StoreError> {
        let keys = keys.to_vec();
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            keys.iter().map(|k| read_doc(&tx, k)).collect()
        })
        .await
    }

    async fn doc_page(&self, partition: &str, page: &PageRequest) -> Result<Page<Doc>, StoreError> {
        let before = page.before.clone().unwrap_or_else(|| NEWEST.to_owned());
        let (partition, limit) = (partition.to_owned(), page.limit);
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT sort, version, expires_at, body FROM docs WHERE partition = ?1 AND sort < ?2
                     ORDER BY sort DESC LIMIT ?3",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![partition, before, limit_param(limit)], |r| {
                    Ok(Doc {
                        key: DocKey::new(partition.clone(), r.get::<_, String>(0)?),
                        version: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                        expires_at: r.get::<_, Option<i64>>(2)?.map(Timestamp::from_unix_millis),
                        body: r.get(3)?,
                    })
                })
                .map_err(unavailable)?;
            let docs = rows.collect::<Result<Vec<Doc>, _>>().map_err(unavailable)?;
            Ok(page_of(docs, limit))
        })
        .await
    }

    async fn platform_entries(
        &self,
        shard: PlatformShard,
        page: &PageRequest,
    ) -> Result<Page<PlatformEntry>, StoreError> {
        let before = page.before.clone().unwrap_or_else(|| NEWEST.to_owned());
        let limit = page.limit;
        let args = vec![text(&shard.name()), SqlValue::Text(before), integer(limit + 1)];
        let sql = "SELECT body FROM platform_entries WHERE shard = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3";
        self.with_conn(move |conn| Ok(page_of(all(conn, sql, &args)?, limit)))
            .await
    }

    async fn platform_balances(&self) -> Result<Vec<(PlatformShard, Amount)>, StoreError> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT account, currency, shard, balance FROM platform ORDER BY account, currency, shard",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, u32>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(unavailable)?;
            let mut shards = Vec::new();
            for row in rows {
                let (account, currency, shard, balance) = row.map_err(unavailable)?;
                let account = PlatformAccount::parse(&account)
                    .ok_or_else(|| corrupt(format!("unknown platform account {account}")))?;
                let currency = Currency::parse(&currency).map_err(corrupt)?;
                shards.push((
                    PlatformShard {
                        account,
                        currency,
                        shard,
                    },
                    Amount::parse_stored(&balance).map_err(corrupt)?,
                ));
            }
            Ok(shards)
        })
        .await
    }

    async fn idempotency_record(
        &self,
        member_id: &MemberId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let args = vec![text(member_id.as_str()), text(key)];
        self.with_conn(move |conn| {
            one(
                conn,
                "SELECT body FROM idempotency WHERE member_id = ?1 AND key = ?2",
                &args,
            )
        })
        .await
    }

    async fn withdrawal(&self, id: &WithdrawalId) -> Result<Option<Withdrawal>, StoreError> {
        let args = vec![text(id.as_str())];
        self.with_conn(move |conn| one(conn, "SELECT body FROM withdrawals WHERE id = ?1", &args))
            .await
    }

    async fn withdrawals(&self, member_id: &MemberId, page: &PageRequest) -> Result<Page<Withdrawal>, StoreError> {
        let before = page.before.clone().unwrap_or_else(|| NEWEST.to_owned());
        let (limit, args) = (
            page.limit,
            vec![
                text(member_id.as_str()),
                SqlValue::Text(before),
                integer(page.limit + 1),
            ],
        );
        let sql = "SELECT body FROM withdrawals WHERE member_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3";
        self.with_conn(move |conn| Ok(page_of(all(conn, sql, &args)?, limit)))
            .await
    }

    async fn ledger(
        &self,
        member_id: &MemberId,
        currency: Option<Currency>,
        page: &PageRequest,
    ) -> Result<Page<LedgerEntry>, StoreError> {
        let before = page.before.clone().unwrap_or_else(|| NEWEST.to_owned());
        let limit = page.limit;
        let mut args = vec![text(member_id.as_str()), SqlValue::Text(before), integer(limit + 1)];
        // Two statements, each walking an index from `before` and stopping after a page:
        // one `(?2 IS NULL OR currency = ?2)` would make SQLite sort all of a member's
        // entries for every page, which a busy seller's listing pays for quadratically.
        let sql = match currency {
            Some(currency) => {
                args.push(text(currency.code()));
                "SELECT body FROM ledger WHERE member_id = ?1 AND currency = ?4 AND id < ?2
                 ORDER BY id DESC LIMIT ?3"
            }
            None => "SELECT body FROM ledger WHERE member_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        };
        self.with_conn(move |conn| Ok(page_of(all(conn, sql, &args)?, limit)))
            .await
    }

    async fn ledger_range(
        &self,
        member_id: &MemberId,
        currency: Currency,
        range: &EntryRange,
    ) -> Result<Page<LedgerEntry>, StoreError> {
        if range.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                more: false,
            });
        }
        let (lowest, highest) = range.id_bounds();
        let limit = range.limit;
        let args = vec![
            text(member_id.as_str()),
            text(currency.code()),
            SqlValue::Text(lowest),
            SqlValue::Text(highest),
            integer(limit + 1),
        ];
        let sql = "SELECT body FROM ledger WHERE member_id = ?1 AND currency = ?2 AND id >= ?3 AND id <= ?4
                   ORDER BY id LIMIT ?5";
        self.with_conn(move |conn| Ok(page_of(all(conn, sql, &args)?, limit)))
            .await
    }

    async fn collection(&self, collection_id: &ExternalId) -> Result<Option<Collection>, StoreError> {
        let args = vec![text(collection_id.as_str())];
        self.with_conn(move |conn| one(conn, "SELECT body FROM collections WHERE collection_id = ?1", &args))
            .await
    }

    async fn refund(&self, refund_id: &ExternalId) -> Result<Option<Refund>, StoreError> {
        let args = vec![text(refund_id.as_str())];
        self.with_conn(move |conn| one(conn, "SELECT body FROM refunds WHERE refund_id = ?1", &args))
            .await
    }

    async fn due_collections(&self, now: Timestamp, limit: usize) -> Result<Vec<Collection>, StoreError> {
        let args = vec![SqlValue::Integer(now.unix_millis()), integer(limit)];
        let sql = "SELECT body FROM collections WHERE due_at IS NOT NULL AND due_at <= ?1
                   ORDER BY due_at, collection_id LIMIT ?2";
        self.with_conn(move |conn| all(conn, sql, &args)).await
    }

    async fn member_ids(
        &self,
        shard: u32,
        after: Option<&MemberId>,
        limit: usize,
    ) -> Result<Page<MemberId>, StoreError> {
        let after = after.map_or_else(String::new, |m| m.as_str().to_owned());
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT member_id FROM member_index WHERE shard = ?1 AND member_id > ?2 ORDER BY member_id LIMIT ?3",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![shard, after, limit_param(limit)], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            let mut ids = Vec::new();
            for row in rows {
                ids.push(MemberId::parse(&row.map_err(unavailable)?).map_err(corrupt)?);
            }
            Ok(page_of(ids, limit))
        })
        .await
    }

    async fn member_collections(
        &self,
        member_id: &MemberId,
        page: &PageRequest,
    ) -> Result<Page<Collection>, StoreError> {
        let before = page.before.clone().unwrap_or_else(|| NEWEST.to_owned());
        let (limit, args) = (
            page.limit,
            vec![
                text(member_id.as_str()),
                SqlValue::Text(before),
                integer(page.limit + 1),
            ],
        );
        let sql = "SELECT body FROM collections WHERE member_id = ?1 AND collection_id < ?2
                   ORDER BY collection_id DESC LIMIT ?3";
        self.with_conn(move |conn| Ok(page_of(all(conn, sql, &args)?, limit)))
            .await
    }

    async fn run_record(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let args = vec![text(run_id)];
        self.with_conn(move |conn| one(conn, "SELECT body FROM runs WHERE run_id = ?1", &args))
            .await
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        validate_commit(&writes)?;
        // Inside the writer's savepoint: a failed condition returns an error, which rolls
        // back every earlier write of this commit (and of no other).
        self.with_writer(move |conn| {
            for (write_index, write) in writes.iter().enumerate() {
                if !apply(conn, write)? {
                    return Err(StoreError::ConditionFailed { write_index });
                }
            }
            Ok(())
        })
        .await
    }
}

/// The local SMS outbox: messages are stored, logged (masked) and listed by `/dev/sms`.
#[derive(Clone, Debug)]
pub struct SqliteOutbox {
    store: SqliteStore,
}

impl SqliteOutbox {
    /// Messages sent to `phone` (or to anyone), newest first.
    pub async fn messages(&self, phone: Option<String>, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
        self.store
            .with_conn(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT phone, message, sent_at FROM sms_outbox WHERE (?1 IS NULL OR phone = ?1)
                         ORDER BY id DESC LIMIT ?2",
                    )
                    .map_err(unavailable)?;
                let rows = stmt
                    .query_map(params![phone, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                        Ok(OutboxMessage {
                            phone: r.get(0)?,
                            message: r.get(1)?,
                            sent_at: Timestamp::from_unix_millis(r.get(2)?),
                        })
                    })
                    .map_err(unavailable)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
            })
            .await
    }
}

#[async_trait]
impl SmsSender for SqliteOutbox {
    async fn send(&self, phone: &crate::phone::PhoneNumber, message: &str, now: Timestamp) -> Result<(), SmsError> {
        let (to, text) = (phone.e164().to_owned(), message.to_owned());
        tracing::info!(phone = %phone.masked(), "sms stored in the local outbox");
        self.store
            .with_writer(move |conn| {
                conn.execute(
                    "INSERT INTO sms_outbox (phone, message, sent_at) VALUES (?1, ?2, ?3)",
                    params![to, text, now.unix_millis()],
                )
                .map_err(unavailable)?;
                Ok(())
            })
            .await
            .map_err(|e| SmsError(e.to_string()))
    }
}

/// Local alerts: logged, and kept in the embedded database for inspection.
#[derive(Clone, Debug)]
pub struct SqliteAlerts {
    store: SqliteStore,
}

impl SqliteStore {
    pub fn alerts(&self) -> SqliteAlerts {
        SqliteAlerts { store: self.clone() }
    }
}

impl SqliteAlerts {
    /// `(subject, message)` of every alert, newest first.
    pub async fn sent(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.store
            .with_conn(|conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT subject, message FROM alerts ORDER BY id DESC")
                    .map_err(unavailable)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(unavailable)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
            })
            .await
    }
}

#[async_trait]
impl crate::alerts::AlertSink for SqliteAlerts {
    async fn alert(&self, subject: &str, message: &str) -> Result<(), crate::alerts::AlertError> {
        tracing::error!(subject, "ALERT (kept in the local alerts table)");
        let (subject, message) = (subject.to_owned(), message.to_owned());
        let now = crate::clock::Clock::now(&crate::clock::SystemClock).unix_millis();
        self.store
            .with_writer(move |conn| {
                conn.execute(
                    "INSERT INTO alerts (subject, message, sent_at) VALUES (?1, ?2, ?3)",
                    params![subject, message, now],
                )
                .map_err(unavailable)?;
                Ok(())
            })
            .await
            .map_err(|e| crate::alerts::AlertError(e.to_string()))
    }
}

/// The embedded store's stream of new outbox items (the stand-in for the DynamoDB
/// Stream), read in commit order from a persisted cursor.
impl SqliteStore {
    /// Up to `limit` outbox items inserted after the cursor, as (position, key), in order.
    pub async fn outbox_stream(&self, limit: usize) -> Result<Vec<(i64, DocKey)>, StoreError> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT position, partition, sort FROM outbox_stream
                     WHERE position > COALESCE((SELECT position FROM outbox_stream_cursor WHERE id = 1), 0)
                     ORDER BY position LIMIT ?1",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![limit_param(limit)], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        DocKey::new(r.get::<_, String>(1)?, r.get::<_, String>(2)?),
                    ))
                })
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    /// Moves the cursor past `position` (everything up to it was published).
    pub async fn advance_outbox_stream(&self, position: i64) -> Result<(), StoreError> {
        self.with_writer(move |conn| {
            conn.execute(
                "INSERT INTO outbox_stream_cursor (id, position) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET position = MAX(position, excluded.position)",
                params![position],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    /// The local event bus that shares this database (`GET /dev/events`).
    pub fn event_bus(&self) -> SqliteEventBus {
        SqliteEventBus { store: self.clone() }
    }
}

/// The local event bus: events kept in the embedded database, one per `id` (it keeps the
/// first delivery, as a de-duplicating consumer would), listed by `GET /dev/events`.
#[derive(Clone, Debug)]
pub struct SqliteEventBus {
    store: SqliteStore,
}

impl SqliteEventBus {
    /// A member's events (or everyone's, member by member), oldest first by `sequence`,
    /// as published (see `OutboxEvent::published`).
    pub async fn events(&self, member_id: Option<String>, limit: usize) -> Result<Vec<serde_json::Value>, StoreError> {
        self.store
            .with_conn(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT body FROM event_bus WHERE (?1 IS NULL OR member_id = ?1)
                         ORDER BY member_id, sequence LIMIT ?2",
                    )
                    .map_err(unavailable)?;
                let rows = stmt
                    .query_map(params![member_id, limit_param(limit)], |r| r.get::<_, String>(0))
                    .map_err(unavailable)?;
                rows.map(|row| row.map_err(unavailable).and_then(|text| from_json(&text)))
                    .collect()
            })
            .await
    }
}

#[async_trait]
impl crate::event_bus::EventBus for SqliteEventBus {
    async fn put(&self, event: &crate::events::OutboxEvent) -> Result<(), crate::event_bus::EventBusError> {
        let sequence = event
            .sequence
            .and_then(|s| i64::try_from(s).ok())
            .ok_or_else(|| crate::event_bus::EventBusError("an event is put with its sequence".to_owned()))?;
        let (id, member_id, body) = (
            event.id.clone(),
            event.member_id.as_str().to_owned(),
            event.published().to_string(),
        );
        let now = crate::clock::Clock::now(&crate::clock::SystemClock).unix_millis();
        self.store
            .with_writer(move |conn| {
                conn.execute(
                    "INSERT OR IGNORE INTO event_bus (id, member_id, sequence, body, put_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, member_id, sequence, body, now],
                )
                .map_err(unavailable)?;
                Ok(())
            })
            .await
            .map_err(|e| crate::event_bus::EventBusError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str) -> Write {
        Write::PutDoc {
            doc: Doc {
                key: DocKey::new("GROUP", key),
                version: 1,
                expires_at: None,
                body: "{}".to_owned(),
            },
            expect: Expect::Absent,
        }
    }

    async fn stored(store: &SqliteStore, key: &str) -> bool {
        let docs = store.docs(&[DocKey::new("GROUP", key)]).await.unwrap();
        docs[0].is_some()
    }

    /// Commits queued together share one transaction, and each keeps its own
    /// all-or-nothing: the two whose second write meets an item an earlier request of the
    /// same group wrote fail alone, their first writes undone, the rest committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(
        clippy::await_holding_lock,
        reason = "holding the connection while the commits queue is the point"
    )]
    async fn a_group_commits_once_and_a_failed_request_fails_alone() {
        let store = SqliteStore::in_memory().unwrap();
        // Holding the in-memory connection holds the writer: every commit queues behind it.
        let held = store.conn.lock().unwrap();
        let mut commits = Vec::new();
        for i in 0..8 {
            let writes = match i {
                0 => vec![put("shared")],
                3 | 5 => vec![put(&format!("own-{i}")), put("shared")],
                _ => vec![put(&format!("own-{i}"))],
            };
            let queuing = store.clone();
            commits.push(tokio::spawn(async move { queuing.commit(writes).await }));
            // One at a time into the queue, so that they queue in this order.
            while store.counts.queued.load(Ordering::Relaxed) <= i {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        drop(held);
        let mut answers = Vec::new();
        for commit in commits {
            answers.push(commit.await.unwrap());
        }
        // One transaction (one fsync on a file) for the eight.
        assert_eq!(store.writer_counts(), (1, 8), "{answers:?}");
        for (i, answer) in answers.iter().enumerate() {
            if i == 3 || i == 5 {
                assert_eq!(answer, &Err(StoreError::ConditionFailed { write_index: 1 }));
                assert!(!stored(&store, &format!("own-{i}")).await, "request {i} left a write");
            } else {
                assert_eq!(answer, &Ok(()), "request {i}");
            }
        }
        for i in [1, 2, 4, 6, 7] {
            assert!(stored(&store, &format!("own-{i}")).await, "request {i} lost its write");
        }
    }
}
