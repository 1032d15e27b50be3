//! The scheduled run: settles what has matured, then proves the books — for every
//! account and currency, each bucket equals the sum of its ledger, none is negative,
//! `in_transit` equals the member's processing withdrawals, `pending` equals what is left
//! of the unsettled collections, and no refund total exceeds its collection. Then the
//! platform's side: each shard of each platform account equals the sum of its entries,
//! and all accounts of a currency — members' and platform's — sum to zero. It reports
//! (log, stored run record, alert) and never rewrites a balance.
//!
//! The zero-sum check adds up entries, not balances, and only entries stamped at least
//! [`BOOKS_SETTLE_SECONDS`] before the run started: entries never change, and every
//! movement commits all its legs at once within a function's timeout of its stamp, so
//! that set is complete on both sides whatever moves during the walk — no snapshot needed.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use crate::app::App;
use crate::clock::Timestamp;
use crate::collection::{settle_due, Settled};
use crate::error::ApiError;
use crate::ledger::{Balance, Balances, Bucket, EntryType, PlatformAccount, PlatformShard, Transaction};
use crate::member::{MemberId, MEMBER_SHARDS};
use crate::money::{Amount, Currency};
use crate::records::{CollectionStatus, RunRecord, WithdrawalStatus};
use crate::store::{Doc, DocKey, Expect, Page, PageRequest, StoreError, Write};

/// Items read per page: memory stays bounded whatever the size of an account.
pub const AUDIT_PAGE: usize = 100;
/// Reads of an account that keeps changing under live traffic before it is left for the
/// next run (reported as busy, not as a discrepancy).
pub const AUDIT_ATTEMPTS: usize = 3;
/// How old an entry must be for the zero-sum check: Lambda's longest timeout. A movement
/// stamped earlier has committed every leg, or never will.
pub const BOOKS_SETTLE_SECONDS: i64 = 15 * 60;

/// What a run does, and which part of the members it walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    pub settle: bool,
    pub verify: bool,
    /// This run checks the member shards `s` with `s % segments == segment`, so that
    /// several invocations can split one run between them.
    pub segment: u32,
    pub segments: u32,
    /// Before reporting a discrepancy the account is checked once more after this
    /// pause (DynamoDB's indexes are eventually consistent).
    pub recheck_after: Duration,
    /// The migration to double-entry: book, once per member and currency, the platform's
    /// side of ledger entries written before (see [`book_opening`]).
    pub book_openings: bool,
}

impl RunOptions {
    /// Settle and verify everything, in one invocation.
    pub fn full() -> RunOptions {
        RunOptions {
            settle: true,
            verify: true,
            segment: 0,
            segments: 1,
            recheck_after: Duration::ZERO,
            book_openings: false,
        }
    }

    /// The migration run: book openings, then verify (nothing is settled).
    pub fn book_openings() -> RunOptions {
        RunOptions {
            settle: false,
            book_openings: true,
            ..RunOptions::full()
        }
    }

    /// Settle matured collections only.
    pub fn settle_only() -> RunOptions {
        RunOptions {
            verify: false,
            ..RunOptions::full()
        }
    }
}

/// One thing found wrong with the books.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discrepancy {
    /// `None` for the platform's own accounts and the books as a whole.
    pub member_id: Option<String>,
    pub currency: Option<Currency>,
    pub kind: &'static str,
    pub detail: String,
}

/// A run's report: logged, stored and (when anything is off) alerted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub run_id: String,
    pub started_at: crate::clock::Timestamp,
    pub finished_at: crate::clock::Timestamp,
    pub accounts_checked: u64,
    /// Accounts that kept changing while read; the next run checks them.
    pub accounts_busy: u64,
    pub settled: Settled,
    /// Openings booked by a migration run.
    pub openings_booked: u64,
    pub discrepancies: Vec<Discrepancy>,
    pub duration_ms: u64,
    pub options: RunOptions,
}

impl Report {
    pub fn to_json(&self) -> Value {
        json!({
            "run_id": self.run_id,
            "started_at": self.started_at.to_rfc3339(),
            "finished_at": self.finished_at.to_rfc3339(),
            "accounts_checked": self.accounts_checked,
            "accounts_busy": self.accounts_busy,
            "settled": {
                "count": self.settled.count,
                "amounts": { "USD": self.settled.usd.to_string(), "CNY": self.settled.cny.to_string() },
            },
            "openings_booked": self.openings_booked,
            "discrepancies": self.discrepancies,
            "duration_ms": self.duration_ms,
            "segment": self.options.segment,
            "segments": self.options.segments,
        })
    }
}

/// What the ledger, the withdrawals and the collections say one account should hold.
#[derive(Debug, Default)]
struct Expected {
    ledger: Balances,
    processing: Balances,
    unsettled: Balances,
    over_refunded: Vec<(String, Currency, Amount, Amount)>,
    /// Per currency: the sum of the entries old enough for the zero-sum check.
    settled_sum: Sums,
    /// Per currency: entries written before double-entry (no transaction), their sum and
    /// the newest one's time.
    legacy: [(Amount, Option<Timestamp>); 2],
}

/// An amount per currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sums([Amount; 2]);

impl Sums {
    fn add(&mut self, currency: Currency, amount: Amount) -> Result<(), ApiError> {
        let slot = &mut self.0[currency_index(currency)];
        *slot = slot.checked_add(amount).ok_or(ApiError::Internal)?;
        Ok(())
    }

    fn get(&self, currency: Currency) -> Amount {
        self.0[currency_index(currency)]
    }
}

fn currency_index(currency: Currency) -> usize {
    match currency {
        Currency::Usd => 0,
        Currency::Cny => 1,
    }
}

fn add(balances: &mut Balances, currency: Currency, bucket: Bucket, amount: Amount) -> Result<(), ApiError> {
    let balance: &mut Balance = balances.get_mut(currency);
    let slot = match bucket {
        Bucket::Available => &mut balance.available,
        Bucket::Pending => &mut balance.pending,
        Bucket::InTransit => &mut balance.in_transit,
    };
    *slot = slot.checked_add(amount).ok_or(ApiError::Internal)?;
    Ok(())
}

/// Visits every item of a newest-first listing, a page of [`AUDIT_PAGE`] at a time.
async fn each_item<T, Fut>(
    fetch: impl Fn(PageRequest) -> Fut,
    id: impl Fn(&T) -> &str,
    mut visit: impl FnMut(&T) -> Result<(), ApiError>,
) -> Result<(), ApiError>
where
    Fut: std::future::Future<Output = Result<Page<T>, StoreError>>,
{
    let mut page = PageRequest {
        limit: AUDIT_PAGE,
        before: None,
    };
    loop {
        let items = fetch(page.clone()).await?;
        for item in &items.items {
            visit(item)?;
        }
        match (items.more, items.items.last()) {
            (true, Some(last)) => page.before = Some(id(last).to_owned()),
            _ => return Ok(()),
        }
    }
}

async fn expected(app: &App, member_id: &MemberId, cutoff: Timestamp) -> Result<Expected, ApiError> {
    let mut expected = Expected::default();
    for currency in Currency::ALL {
        each_item(
            |page| async move { app.store.ledger(member_id, Some(currency), &page).await },
            |entry| entry.id.as_str(),
            |entry| {
                if entry.created_at < cutoff {
                    expected.settled_sum.add(currency, entry.amount)?;
                }
                if entry.transaction.is_none() {
                    let (sum, newest) = &mut expected.legacy[currency_index(currency)];
                    *sum = sum.checked_add(entry.amount).ok_or(ApiError::Internal)?;
                    *newest = (*newest).max(Some(entry.created_at));
                }
                add(&mut expected.ledger, currency, entry.bucket, entry.amount)
            },
        )
        .await?;
    }
    each_item(
        |page| async move { app.store.withdrawals(member_id, &page).await },
        |w| w.id.as_str(),
        |w| match w.status {
            WithdrawalStatus::Processing => add(&mut expected.processing, w.currency, Bucket::InTransit, w.amount),
            _ => Ok(()),
        },
    )
    .await?;
    each_item(
        |page| async move { app.store.member_collections(member_id, &page).await },
        |c| c.collection_id.as_str(),
        |c| {
            if c.refunded > c.amount || c.refunded.is_negative() {
                expected
                    .over_refunded
                    .push((c.collection_id.to_string(), c.currency, c.amount, c.refunded));
            }
            if c.status == CollectionStatus::Pending {
                let remaining = c.amount.checked_sub(c.refunded).ok_or(ApiError::Internal)?;
                add(&mut expected.unsettled, c.currency, Bucket::Pending, remaining)?;
            }
            Ok(())
        },
    )
    .await?;
    Ok(expected)
}

fn compare(member_id: &MemberId, balances: &Balances, expected: &Expected) -> Vec<Discrepancy> {
    let mut found = Vec::new();
    let mut report = |currency: Option<Currency>, kind: &'static str, detail: String| {
        found.push(Discrepancy {
            member_id: Some(member_id.as_str().to_owned()),
            currency,
            kind,
            detail,
        });
    };
    for currency in Currency::ALL {
        let balance = balances.get(currency);
        for bucket in Bucket::ALL {
            let held = balance.get(bucket);
            let summed = expected.ledger.get(currency).get(bucket);
            if held != summed {
                let detail = format!("{} is {held} but its ledger entries sum to {summed}", bucket.as_str());
                report(Some(currency), "balance_mismatch", detail);
            }
            if held.is_negative() {
                report(
                    Some(currency),
                    "negative_balance",
                    format!("{} is {held}", bucket.as_str()),
                );
            }
        }
        let processing = expected.processing.get(currency).in_transit;
        if balance.in_transit != processing {
            let detail = format!(
                "in_transit is {} but processing withdrawals total {processing}",
                balance.in_transit
            );
            report(Some(currency), "in_transit_mismatch", detail);
        }
        let unsettled = expected.unsettled.get(currency).pending;
        if balance.pending != unsettled {
            let detail = format!(
                "pending is {} but unsettled collections hold {unsettled}",
                balance.pending
            );
            report(Some(currency), "pending_mismatch", detail);
        }
    }
    for (collection_id, currency, amount, refunded) in &expected.over_refunded {
        let detail = format!("collection {collection_id} of {amount} has {refunded} refunded");
        report(Some(*currency), "refunds_exceed_collection", detail);
    }
    found
}

/// Checks one account against a stable read: the balances are read before and after the
/// rest, and only a read during which they did not move counts (every balance change
/// writes its ledger entries in the same transaction, so an unmoved balance means the
/// ledger read in between is consistent with it). `None`: it kept moving.
async fn audit_member(
    app: &App,
    member_id: &MemberId,
    cutoff: Timestamp,
) -> Result<Option<(Vec<Discrepancy>, Expected)>, ApiError> {
    for _ in 0..AUDIT_ATTEMPTS {
        let before = app.store.balances(member_id).await?;
        let expected = expected(app, member_id, cutoff).await?;
        let after = app.store.balances(member_id).await?;
        if before == after {
            return Ok(Some((compare(member_id, &after, &expected), expected)));
        }
    }
    Ok(None)
}

/// Where a member's migration marker lives: what its openings have booked so far.
fn opening_key(member_id: &MemberId, currency: Currency) -> DocKey {
    DocKey::new(format!("OPENING#{member_id}"), currency.code())
}

/// What the openings of one member and currency have booked.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct OpeningMarker {
    booked: Amount,
}

/// The migration to double-entry, for one member and currency: the entries written
/// before it have no platform side; this books it once, into clearing, as what they sum
/// to. The marker records what was booked, and is written in the same commit on the
/// version read, so a repeated or concurrent run books each cent once — and a late
/// entry from a function still on the old code is booked by the next run. The opening
/// entry carries the newest legacy entry's time, so the zero-sum check sees both sides
/// at once. Returns whether it booked anything.
async fn book_opening(
    app: &App,
    member_id: &MemberId,
    currency: Currency,
    legacy: Amount,
    newest: Timestamp,
) -> Result<bool, ApiError> {
    crate::retry::retrying(|| async move {
        let key = opening_key(member_id, currency);
        let stored = app.store.docs(std::slice::from_ref(&key)).await?.pop().flatten();
        let (marker, expect, version) = match &stored {
            Some(doc) => (
                doc.parse::<OpeningMarker>()?,
                Expect::Version(doc.version),
                doc.version + 1,
            ),
            None => (OpeningMarker::default(), Expect::Absent, 1),
        };
        let delta = legacy.checked_sub(marker.booked).ok_or(ApiError::Internal)?;
        if delta.is_zero() {
            return Ok(crate::retry::Attempt::Done(false));
        }
        // The platform's side only: the member's side is the old entries themselves, so
        // this leg balances them, not itself (hence not `Write::transaction`).
        let reference = format!("opening/{member_id}/{currency}");
        let opening = Transaction::new(member_id, &reference, newest).platform(
            PlatformAccount::Clearing,
            currency,
            delta.negated(),
            EntryType::Opening,
        );
        let mut writes = vec![Write::PutDoc {
            doc: Doc::new(key, version, &OpeningMarker { booked: legacy })?,
            expect,
        }];
        writes.extend(Write::platform_legs(opening.platform_entries(newest))?);
        Ok(crate::retry::commit(&*app.store, writes).await?.done_or_reread(true))
    })
    .await
}

/// Checks every platform shard against its entries (with a stable read, like a
/// member's: the shard balances are read before and after its entries, and a shard that
/// moved meanwhile is read again), and adds the entries old enough for the zero-sum
/// check to `settled`. `false` when some shard kept moving.
async fn audit_platform(
    app: &App,
    cutoff: Timestamp,
    settled: &mut Sums,
    found: &mut Vec<Discrepancy>,
) -> Result<bool, ApiError> {
    let balance_of = |all: &[(PlatformShard, Amount)], shard: PlatformShard| {
        all.iter().find(|(s, _)| *s == shard).map_or(Amount::ZERO, |(_, b)| *b)
    };
    let mut unread: Vec<PlatformShard> = PlatformShard::all().collect();
    for _ in 0..AUDIT_ATTEMPTS {
        let before = app.store.platform_balances().await?;
        let mut sums = Vec::with_capacity(unread.len());
        for shard in &unread {
            let shard = *shard;
            let (mut total, mut old) = (Amount::ZERO, Amount::ZERO);
            each_item(
                |page| async move { app.store.platform_entries(shard, &page).await },
                |entry| entry.id.as_str(),
                |entry| {
                    total = total.checked_add(entry.amount).ok_or(ApiError::Internal)?;
                    if entry.created_at < cutoff {
                        old = old.checked_add(entry.amount).ok_or(ApiError::Internal)?;
                    }
                    Ok(())
                },
            )
            .await?;
            sums.push((shard, total, old));
        }
        let after = app.store.platform_balances().await?;
        unread.clear();
        for (shard, total, old) in sums {
            let balance = balance_of(&after, shard);
            if balance_of(&before, shard) != balance {
                unread.push(shard);
                continue;
            }
            settled.add(shard.currency, old)?;
            if balance != total {
                found.push(Discrepancy {
                    member_id: None,
                    currency: Some(shard.currency),
                    kind: "platform_balance_mismatch",
                    detail: format!("{} is {balance} but its entries sum to {total}", shard.name()),
                });
            }
        }
        if unread.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One run: settle (segment 0 only, since the due index is global), verify the
/// segment's members, then store, log and alert.
pub async fn run(app: &App, options: RunOptions) -> Result<Report, ApiError> {
    let clock_started = Instant::now();
    let started_at = app.now();
    let run_id = format!("run_{}", crate::ids::ulid_at(started_at));
    let settled = if options.settle && options.segment == 0 {
        settle_due(app, started_at).await?
    } else {
        Settled::default()
    };

    let (mut accounts_checked, mut accounts_busy, mut discrepancies) = (0u64, 0u64, Vec::new());
    let cutoff = started_at.plus_seconds(-BOOKS_SETTLE_SECONDS);
    let mut settled_sum = Sums::default();
    let mut openings_booked = 0u64;
    if options.verify {
        let segments = options.segments.max(1);
        for shard in (0..MEMBER_SHARDS).filter(|s| s % segments == options.segment % segments) {
            let mut after: Option<MemberId> = None;
            loop {
                let page = app.store.member_ids(shard, after.as_ref(), AUDIT_PAGE).await?;
                for member_id in &page.items {
                    accounts_checked += 1;
                    let mut found = audit_member(app, member_id, cutoff).await?;
                    if options.book_openings {
                        if let Some((_, expected)) = &found {
                            for currency in Currency::ALL {
                                if let (legacy, Some(newest)) = expected.legacy[currency_index(currency)] {
                                    if book_opening(app, member_id, currency, legacy, newest).await? {
                                        openings_booked += 1;
                                    }
                                }
                            }
                        }
                    }
                    if found.as_ref().is_some_and(|(f, _)| !f.is_empty()) && !options.recheck_after.is_zero() {
                        tokio::time::sleep(options.recheck_after).await;
                        found = audit_member(app, member_id, cutoff).await?;
                    }
                    match found {
                        Some((found, expected)) => {
                            discrepancies.extend(found);
                            for currency in Currency::ALL {
                                settled_sum.add(currency, expected.settled_sum.get(currency))?;
                            }
                        }
                        None => accounts_busy += 1,
                    }
                }
                match (page.more, page.items.last()) {
                    (true, Some(last)) => after = Some(last.clone()),
                    _ => break,
                }
            }
        }
        // The platform's accounts and the zero sum are checked by the run that walks
        // every member (segment 0 of 1), and only when no account was left busy: the sum
        // needs every account.
        if options.segments.max(1) == 1 {
            let complete = audit_platform(app, cutoff, &mut settled_sum, &mut discrepancies).await?;
            if complete && accounts_busy == 0 {
                for currency in Currency::ALL {
                    let sum = settled_sum.get(currency);
                    if !sum.is_zero() {
                        discrepancies.push(Discrepancy {
                            member_id: None,
                            currency: Some(currency),
                            kind: "books_unbalanced",
                            detail: format!(
                                "all accounts in {currency} sum to {sum} over entries before {}",
                                cutoff.to_rfc3339()
                            ),
                        });
                    }
                }
            } else {
                accounts_busy += 1;
            }
        }
    }

    let report = Report {
        run_id,
        started_at,
        finished_at: app.now(),
        accounts_checked,
        accounts_busy,
        settled,
        openings_booked,
        discrepancies,
        duration_ms: u64::try_from(clock_started.elapsed().as_millis()).unwrap_or(u64::MAX),
        options,
    };
    publish(app, &report).await?;
    Ok(report)
}

/// Stores the run record, logs the report, and alerts when anything is off.
async fn publish(app: &App, report: &Report) -> Result<(), ApiError> {
    let body = report.to_json().to_string();
    let record = RunRecord {
        run_id: report.run_id.clone(),
        started_at: report.started_at,
        finished_at: report.finished_at,
        report: body.clone(),
        discrepancies: u64::try_from(report.discrepancies.len()).unwrap_or(u64::MAX),
    };
    match app.store.commit(vec![Write::PutRun(record.clone())]).await {
        Ok(()) => {}
        // One write goes out as a plain `PutItem`, which has no `ClientRequestToken`: the
        // SDK's retry of a call whose answer was lost meets the record it wrote. The id
        // is this run's own ULID, so finding it as written is the run stored.
        Err(crate::store::StoreError::ConditionFailed { .. })
            if app.store.run_record(&record.run_id).await?.as_ref() == Some(&record) => {}
        Err(other) => return Err(other.into()),
    }
    if report.discrepancies.is_empty() {
        tracing::info!(report = %body, "reconciliation run: books balance");
    } else {
        tracing::error!(report = %body, "reconciliation run: discrepancies found");
        let subject = format!(
            "Fund account reconciliation: {} discrepancies",
            report.discrepancies.len()
        );
        if let Err(error) = app.alerts.alert(&subject, &body).await {
            // The run record and the error log still carry the report.
            tracing::error!(error = %error, "reconciliation alert could not be published");
        }
    }
    Ok(())
}
