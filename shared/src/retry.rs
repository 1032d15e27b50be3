//! Optimistic operations: read, decide, commit with conditions — and when another writer
//! got there first, read again. This module owns the two questions every operation asks:
//! "what did my commit come to?" ([`commit`]) and "may I try again?" ([`Backoff`]).
//!
//! Concurrency is never the client's problem: a conflict is retried here, with jittered
//! backoff, and reaches a client (as 503) only when it outlasts [`MAX_ATTEMPTS`].

use std::future::Future;
use std::time::Duration;

use crate::error::ApiError;
use crate::store::{Store, StoreError, Write, WriteTarget};

/// What one optimistic attempt at an operation came to.
pub enum Attempt<T> {
    Done(T),
    /// Another writer got there first: read again and retry.
    Retry,
}

/// Most attempts an operation makes against write conflicts before answering 503.
pub const MAX_ATTEMPTS: u32 = 30;

/// The pause between attempts: jittered, growing to at most 100 ms, and a limit on their
/// number so that a run of conflicts can never spin forever.
#[derive(Debug, Default)]
pub struct Backoff {
    attempts: u32,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff::default()
    }

    /// Waits before the next attempt; `Err(Contention)` once every attempt is spent.
    pub async fn wait(&mut self) -> Result<(), ApiError> {
        self.attempts += 1;
        if self.attempts >= MAX_ATTEMPTS {
            tracing::error!("operation gave up after {MAX_ATTEMPTS} conflicting attempts");
            return Err(ApiError::Contention);
        }
        let cap_ms = 2u64.saturating_pow(self.attempts.min(7)).min(100);
        let jitter_ms = rand::random::<u64>() % (cap_ms + 1);
        tokio::time::sleep(Duration::from_millis(jitter_ms)).await;
        Ok(())
    }
}

/// Runs `attempt` until it is done, retrying conflicts with [`Backoff`].
pub async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, ApiError>>,
{
    let mut backoff = Backoff::new();
    loop {
        // A read cancelled by a transaction in flight (`TransactGetItems`) comes back as
        // `Contention` through `?`: it is retried like a lost write.
        match attempt().await {
            Ok(Attempt::Done(value)) => return Ok(value),
            Err(error) if error != ApiError::Contention => return Err(error),
            Ok(Attempt::Retry) | Err(_) => backoff.wait().await?,
        }
    }
}

/// What a commit came to, in the terms an operation decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Every write applied.
    Applied,
    /// Another transaction held one of the items; nothing was written, and the same
    /// decision may be made again from a fresh read.
    Contended,
    /// The condition of the write on this item did not hold; nothing was written.
    Refused(WriteTarget),
}

impl Commit {
    /// For an operation whose every condition is "what I read is unchanged": applied is
    /// done, anything else reads again and decides again.
    pub fn done_or_reread<T>(self, value: T) -> Attempt<T> {
        match self {
            Commit::Applied => Attempt::Done(value),
            Commit::Contended | Commit::Refused(_) => Attempt::Retry,
        }
    }
}

/// Commits `writes` and says what came of it: the one place a store's answer is read, so
/// a failed condition is named by the item it guarded, not by an index into a list.
pub async fn commit(store: &dyn Store, writes: Vec<Write>) -> Result<Commit, ApiError> {
    let targets: Vec<WriteTarget> = writes.iter().map(Write::target).collect();
    match store.commit(writes).await {
        Ok(()) => Ok(Commit::Applied),
        Err(StoreError::Contention) => Ok(Commit::Contended),
        Err(StoreError::ConditionFailed { write_index }) => match targets.get(write_index) {
            Some(target) => Ok(Commit::Refused(*target)),
            None => {
                tracing::error!(
                    write_index,
                    writes = targets.len(),
                    "a store named a write the commit did not have"
                );
                Err(ApiError::Internal)
            }
        },
        Err(other) => Err(other.into()),
    }
}
