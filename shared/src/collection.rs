//! Money in: collections credit `pending`, settlement moves them to `available`, and
//! refunds take money back — never more than what is left of the collection.

use std::collections::BTreeMap;

use serde_json::json;

use crate::app::App;
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::events::EventType;
use crate::ids::ExternalId;
use crate::ledger::{pending_shard_of, Bucket, EntryType, PlatformAccount, Posting, Transaction};
use crate::member::MemberId;
use crate::money::{Amount, Currency};
use crate::records::{Collection, CollectionStatus, Refund};
use crate::retry::{commit, retrying, Attempt, Backoff, Commit};
use crate::store::{Expect, Write, WriteTarget};

/// A collection as the trade system reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCollection {
    pub collection_id: ExternalId,
    pub member_id: MemberId,
    pub currency: Currency,
    pub amount: Amount,
    /// `None`: available as soon as the next settlement run.
    pub available_at: Option<Timestamp>,
}

/// The outcome of an idempotent create: the record, and whether this call made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created<T> {
    pub record: T,
    pub created: bool,
}

fn same_collection(stored: &Collection, request: &NewCollection) -> bool {
    let same_time = match request.available_at {
        None => stored.available_at_defaulted,
        Some(at) => !stored.available_at_defaulted && stored.available_at == at,
    };
    stored.member_id == request.member_id
        && stored.currency == request.currency
        && stored.amount == request.amount
        && same_time
}

/// `POST /internal/collections`: on the fast path one `TransactWriteItems` (the
/// collection, a pending shard and its ledger entry, the clearing account's side, the
/// event), after one read of the member's existence per process; a repeat costs one more
/// read to compare. Nothing in it is an item the seller's other collections write, apart
/// from one of the pending shards: a seller can take thousands a second.
pub async fn collect(app: &App, request: NewCollection) -> Result<Created<Collection>, ApiError> {
    retrying(|| attempt_collect(app, &request)).await
}

async fn attempt_collect(app: &App, request: &NewCollection) -> Result<Attempt<Created<Collection>>, ApiError> {
    let now = app.now();
    let collection = Collection {
        collection_id: request.collection_id.clone(),
        member_id: request.member_id.clone(),
        currency: request.currency,
        amount: request.amount,
        refunded: Amount::ZERO,
        available_at: request.available_at.unwrap_or(now),
        available_at_defaulted: request.available_at.is_none(),
        status: CollectionStatus::Pending,
        created_at: now,
        settled_at: None,
        version: 1,
        pending_shard: Some(pending_shard_of(request.collection_id.as_str())),
    };
    require_member(app, &request.member_id).await?;
    let mut writes = vec![Write::PutCollection {
        collection: collection.clone(),
        expect: Expect::Absent,
    }];
    // The money came in from the order: the platform's clearing account holds the
    // other side until it leaves to a bank or back to the buyer.
    let reference = request.collection_id.as_str();
    let transaction = Transaction::new(&request.member_id, reference, now)
        .member(
            Posting::new(&request.member_id, request.currency, EntryType::Collection, reference)
                .change(Bucket::Pending, request.amount)
                .pending_in(collection.pending_shard),
        )
        .platform(
            PlatformAccount::Clearing,
            request.currency,
            request.amount.negated(),
            EntryType::Collection,
        )
        .event(
            EventType::CollectionCreated,
            json!({
                "collection_id": collection.collection_id.as_str(),
                "currency": collection.currency,
                "amount": collection.amount,
                "status": collection.status.as_str(),
                "available_at": collection.available_at.to_rfc3339(),
            }),
        );
    writes.extend(Write::transaction(transaction, now)?);
    match commit(&*app.store, writes).await? {
        Commit::Applied => Ok(Attempt::Done(Created {
            record: collection,
            created: true,
        })),
        // The id is taken: a repeat (answered with what is stored) or a conflict.
        Commit::Refused(WriteTarget::Collection) => {
            let Some(stored) = app.store.collection(&request.collection_id).await? else {
                return Ok(Attempt::Retry);
            };
            if same_collection(&stored, request) {
                Ok(Attempt::Done(Created {
                    record: stored,
                    created: false,
                }))
            } else {
                Err(ApiError::CollectionConflict)
            }
        }
        // Another transaction held the pending shard: the same commit goes again. (A
        // balance or ledger condition cannot fail here: the posting only adds to `pending`.)
        Commit::Contended | Commit::Refused(_) => Ok(Attempt::Retry),
    }
}

/// Refuses a member that does not exist (`404 member_not_found`). Read, not checked in
/// the commit: a condition on the profile would make it the one item every collection of
/// a seller writes. Members are never deleted, so what was read still holds at the
/// commit, and a process remembers the members it has seen.
async fn require_member(app: &App, member_id: &MemberId) -> Result<(), ApiError> {
    if app.known_members.contains(member_id) {
        return Ok(());
    }
    if !app.store.member_exists(member_id).await? {
        return Err(ApiError::MemberNotFound);
    }
    app.known_members.insert(member_id);
    Ok(())
}

/// A refund as the trade system reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    pub refund_id: ExternalId,
    pub collection_id: ExternalId,
    pub amount: Amount,
}

/// A repeat of a stored refund (same collection and amount) or a conflict.
fn replay_refund(stored: Refund, request: &NewRefund) -> Result<Created<Refund>, ApiError> {
    if stored.collection_id == request.collection_id && stored.amount == request.amount {
        Ok(Created {
            record: stored,
            created: false,
        })
    } else {
        Err(ApiError::RefundConflict)
    }
}

/// A refused amount may still be a repeat of a refund that already landed: that one
/// answers as a repeat, not with the refusal.
async fn refuse_unless_repeat(
    app: &App,
    request: &NewRefund,
    refusal: ApiError,
) -> Result<Attempt<Created<Refund>>, ApiError> {
    match app.store.refund(&request.refund_id).await? {
        Some(stored) => replay_refund(stored, request).map(Attempt::Done),
        None => Err(refusal),
    }
}

/// `POST /internal/refunds`: from `pending` while the collection is unsettled, else from
/// `available`; the collection's `refunded` total moves in the same commit (with its
/// version as condition), so racing refunds can never exceed it.
pub async fn refund(app: &App, request: NewRefund) -> Result<Created<Refund>, ApiError> {
    retrying(|| {
        let request = request.clone();
        async move {
            let Some(collection) = app.store.collection(&request.collection_id).await? else {
                return match app.store.refund(&request.refund_id).await? {
                    Some(stored) => replay_refund(stored, &request).map(Attempt::Done),
                    None => Err(ApiError::CollectionNotFound),
                };
            };
            let refundable = collection
                .amount
                .checked_sub(collection.refunded)
                .unwrap_or(Amount::ZERO);
            let refunded = collection
                .refunded
                .checked_add(request.amount)
                .ok_or(ApiError::Internal)?;
            let taken_from = match collection.status {
                CollectionStatus::Pending => Bucket::Pending,
                CollectionStatus::Settled => Bucket::Available,
            };
            if request.amount > refundable {
                return refuse_unless_repeat(app, &request, ApiError::RefundExceedsCollection { refundable }).await;
            }
            let now = app.now();
            let record = Refund {
                refund_id: request.refund_id.clone(),
                collection_id: collection.collection_id.clone(),
                member_id: collection.member_id.clone(),
                currency: collection.currency,
                amount: request.amount,
                taken_from,
                created_at: now,
            };
            let mut next = collection.clone();
            next.refunded = refunded;
            next.version += 1;
            let mut writes = vec![
                Write::PutRefund(record.clone()),
                Write::PutCollection {
                    collection: next,
                    expect: Expect::Version(collection.version),
                },
            ];
            let reference = request.refund_id.as_str();
            let transaction = Transaction::new(&collection.member_id, reference, now)
                .member(
                    Posting::new(&collection.member_id, collection.currency, EntryType::Refund, reference)
                        .change(taken_from, request.amount.negated())
                        .pending_in(collection.pending_shard),
                )
                .platform(
                    PlatformAccount::Clearing,
                    collection.currency,
                    request.amount,
                    EntryType::Refund,
                )
                .event(
                    EventType::RefundCreated,
                    json!({
                        "refund_id": record.refund_id.as_str(),
                        "collection_id": record.collection_id.as_str(),
                        "currency": record.currency,
                        "amount": record.amount,
                        "taken_from": record.taken_from.as_str(),
                    }),
                );
            writes.extend(Write::transaction(transaction, now)?);
            match commit(&*app.store, writes).await? {
                Commit::Applied => Ok(Attempt::Done(Created { record, created: true })),
                // The refund id is taken: a repeat, or a conflict.
                Commit::Refused(WriteTarget::Refund) => match app.store.refund(&request.refund_id).await? {
                    Some(stored) => replay_refund(stored, &request).map(Attempt::Done),
                    None => Ok(Attempt::Retry),
                },
                // The collection moved on (another refund, or settlement): read and decide again.
                Commit::Refused(WriteTarget::Balance) => {
                    // Only `available` can run short: until settlement the collection's
                    // own money is still in `pending`.
                    let available = match app.store.member_state(&collection.member_id).await? {
                        Some(state) => state.balances.get(collection.currency).get(taken_from),
                        None => Amount::ZERO,
                    };
                    refuse_unless_repeat(app, &request, ApiError::InsufficientFunds { available }).await
                }
                Commit::Contended | Commit::Refused(_) => Ok(Attempt::Retry),
            }
        }
    })
    .await
}

/// What one settlement pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    pub count: u64,
    pub usd: Amount,
    pub cny: Amount,
}

impl Settled {
    #[expect(clippy::expect_used, reason = "a run's total is bounded by the money in the system")]
    fn add(&mut self, currency: Currency, amount: Amount) {
        self.count += 1;
        let slot = match currency {
            Currency::Usd => &mut self.usd,
            Currency::Cny => &mut self.cny,
        };
        // A run's total is bounded by the money in the system, far below 10^28.
        *slot = slot.checked_add(amount).expect("settled totals stay far below 10^28");
    }
}

/// Collections settled per page of the due index: enough that a hot seller's page holds
/// full batches for each of its pending shards (500 over 16 shards: about 31 each).
pub const SETTLEMENT_PAGE: usize = 500;

/// Collections of one pending shard settled in one commit. Each brings four writes
/// (itself, two ledger entries, its event) and the batch two more (the balance item and
/// the shard): 24 × 4 + 2 = 98, inside a commit's 100.
pub const SETTLEMENT_BATCH: usize = 24;

/// Attempts at a settlement batch that keeps meeting conflicts before its collections are
/// settled one by one.
const BATCH_ATTEMPTS: usize = 8;

/// One collection's settlement: its next version and its ledger transaction, with what
/// it moves. `None` if it is not due at `now`.
fn settlement(collection: &Collection, now: Timestamp) -> Option<(Write, Transaction, Amount)> {
    if collection.status != CollectionStatus::Pending || collection.available_at > now {
        return None;
    }
    let remaining = collection
        .amount
        .checked_sub(collection.refunded)
        .unwrap_or(Amount::ZERO);
    let mut next = collection.clone();
    next.status = CollectionStatus::Settled;
    next.settled_at = Some(now);
    next.version += 1;
    let put = Write::PutCollection {
        collection: next,
        expect: Expect::Version(collection.version),
    };
    // A fully refunded collection moves no money when it settles, but still emits its
    // event (with amount zero): consumers see every collection settle.
    let reference = collection.collection_id.as_str();
    let mut transaction = Transaction::new(&collection.member_id, reference, now).event(
        EventType::CollectionSettled,
        json!({
            "collection_id": reference,
            "currency": collection.currency,
            "amount": remaining,
            "status": CollectionStatus::Settled.as_str(),
        }),
    );
    if !remaining.is_zero() {
        transaction = transaction.member(
            Posting::new(
                &collection.member_id,
                collection.currency,
                EntryType::CollectionSettled,
                reference,
            )
            .change(Bucket::Pending, remaining.negated())
            .change(Bucket::Available, remaining)
            .pending_in(collection.pending_shard),
        );
    }
    Some((put, transaction, remaining))
}

/// Settles one collection if it is still due: `pending` → `available` for what refunds
/// left of it, with the collection's version as condition so that two runs (or a run
/// and a refund) can never move it twice. Returns what moved, if anything.
pub async fn settle_one(app: &App, collection: &Collection, now: Timestamp) -> Result<Option<Amount>, ApiError> {
    let Some((put, transaction, remaining)) = settlement(collection, now) else {
        return Ok(None);
    };
    let mut writes = vec![put];
    writes.extend(Write::transaction(transaction, now)?);
    match commit(&*app.store, writes).await? {
        Commit::Applied => Ok(Some(remaining)),
        // Someone else changed it first: re-read and try once more on the next pass.
        Commit::Contended | Commit::Refused(_) => Ok(None),
    }
}

/// Settles due collections of one member, currency and pending shard in one commit: each
/// collection keeps its own version condition, ledger transaction and event, and the
/// balance item and the shard take one merged write each. A hot seller's thousands of
/// collections a second then cost its balance item a few writes a second. If any one
/// collection moved meanwhile (a refund) nothing is written, and each is settled on its
/// own instead, so one busy collection never holds up the others.
async fn settle_batch(app: &App, batch: &[&Collection], now: Timestamp) -> Result<Vec<(Currency, Amount)>, ApiError> {
    let mut puts = Vec::new();
    let mut transactions = Vec::new();
    let mut moved = Vec::new();
    for collection in batch {
        if let Some((put, transaction, remaining)) = settlement(collection, now) {
            puts.push(put);
            transactions.push(transaction);
            moved.push((collection.currency, remaining));
        }
    }
    if moved.len() > 1 {
        let mut writes = puts;
        writes.extend(Write::transactions(transactions, now)?);
        // A conflict (a collection landing on the shard at that moment) is retried as a
        // batch: falling back to one commit per collection would write the balance item
        // once per collection, the very load the batch exists to spare it.
        let mut backoff = Backoff::new();
        for _ in 0..BATCH_ATTEMPTS {
            match commit(&*app.store, writes.clone()).await? {
                Commit::Applied => return Ok(moved),
                Commit::Contended => backoff.wait().await?,
                Commit::Refused(_) => break,
            }
        }
    }
    let mut settled = Vec::new();
    for collection in batch {
        if let Some(amount) = settle_one(app, collection, now).await? {
            settled.push((collection.currency, amount));
        }
    }
    Ok(settled)
}

/// Settles every collection due at `now`, a page at a time (bounded memory), in batches
/// of one member, currency and pending shard. A collection that lost a race is re-read and retried, so
/// none is skipped.
pub async fn settle_due(app: &App, now: Timestamp) -> Result<Settled, ApiError> {
    settle_due_in_pages(app, now, SETTLEMENT_PAGE).await
}

/// [`settle_due`] with pages of `page` collections.
pub async fn settle_due_in_pages(app: &App, now: Timestamp, page: usize) -> Result<Settled, ApiError> {
    let mut settled = Settled::default();
    let mut stalled_pages = 0;
    loop {
        let due = app.store.due_collections(now, page).await?;
        if due.is_empty() {
            return Ok(settled);
        }
        let before = settled.count;
        // A batch writes the balance item and one pending shard: a batch that wrote every
        // shard would hold them all while in flight, and cancel the collections landing
        // on any of them meanwhile.
        let mut groups: BTreeMap<(&MemberId, Currency, Option<u8>), Vec<&Collection>> = BTreeMap::new();
        for collection in &due {
            groups
                .entry((&collection.member_id, collection.currency, collection.pending_shard))
                .or_default()
                .push(collection);
        }
        for group in groups.values() {
            for batch in group.chunks(SETTLEMENT_BATCH) {
                for (currency, amount) in settle_batch(app, batch, now).await? {
                    settled.add(currency, amount);
                }
            }
        }
        let all_settled = settled.count - before == due.len() as u64;
        if all_settled && due.len() < page {
            // A short page, all of it settled: the index has nothing more that was due.
            return Ok(settled);
        }
        if settled.count == before {
            // Every one lost a race; a few more passes re-read them, then give up so a
            // run can never spin. The next run picks up whatever is left.
            stalled_pages += 1;
            if stalled_pages >= 5 {
                return Ok(settled);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_is_the_same_collection_only_with_the_same_values_and_time() {
        let at = |s: i64| Timestamp::from_unix_millis(s * 1_000);
        let member = MemberId::parse("seller-1").unwrap();
        let amount = Amount::parse_request("10.00").unwrap();
        let request = |available_at: Option<Timestamp>| NewCollection {
            collection_id: ExternalId::parse("c-1").unwrap(),
            member_id: member.clone(),
            currency: Currency::Usd,
            amount,
            available_at,
        };
        let stored = |available_at: Timestamp, defaulted: bool| Collection {
            collection_id: ExternalId::parse("c-1").unwrap(),
            member_id: member.clone(),
            currency: Currency::Usd,
            amount,
            refunded: Amount::ZERO,
            available_at,
            available_at_defaulted: defaulted,
            status: CollectionStatus::Pending,
            created_at: at(0),
            settled_at: None,
            version: 1,
            pending_shard: None,
        };
        let explicit = stored(at(100), false);
        assert!(same_collection(&explicit, &request(Some(at(100)))));
        assert!(!same_collection(&explicit, &request(Some(at(101)))), "another time");
        assert!(!same_collection(&explicit, &request(None)), "a time, then none");
        let defaulted = stored(at(0), true);
        assert!(same_collection(&defaulted, &request(None)));
        assert!(
            !same_collection(&defaulted, &request(Some(at(0)))),
            "none, then the very time it defaulted to"
        );
        let mut other = request(None);
        other.amount = Amount::parse_request("10.01").unwrap();
        assert!(!same_collection(&defaulted, &other), "another amount");
        other = request(None);
        other.currency = Currency::Cny;
        assert!(!same_collection(&defaulted, &other), "another currency");
        other = request(None);
        other.member_id = MemberId::parse("seller-2").unwrap();
        assert!(!same_collection(&defaulted, &other), "another member");
    }
}
