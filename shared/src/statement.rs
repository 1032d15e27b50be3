//! Statements: a member's movements in one currency over a range of time, with exact
//! running balances, the balances at both ends and the range's totals.
//!
//! A statement's cost must not grow with the account's history before `from`. A balance at
//! any instant is a **daily snapshot** (the balance and running totals at a day's first
//! millisecond, UTC) plus the entries of at most one day and fifteen minutes after it. A
//! snapshot is only ever made of a day that started [`BOOKS_SETTLE_SECONDS`] ago: by then
//! every entry stamped before it has committed (a commit lands within a Lambda's longest
//! run of its stamp), so a snapshot never changes once written, whoever writes it: the
//! first reader that needs a day, which also snapshots every day with movements that it
//! reads through. See `docs/data-model.md`, "Statements".
//!
//! Lines: one per ledger transaction of the member in the currency, except that a paid
//! withdrawal's fee has its own line (its own entry type). Entries before the books were
//! double-entry have no transaction: theirs are grouped by reference and instant.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::ledger::{Balance, Bucket, EntryType, LedgerEntry};
use crate::member::MemberId;
use crate::money::{Amount, Currency};
use crate::reconciliation::BOOKS_SETTLE_SECONDS;
use crate::store::{Doc, DocKey, EntryRange, Expect, PageRequest, StoreError, Write};

/// The longest range one statement covers.
pub const MAX_RANGE_DAYS: i64 = 366;
/// Lines per page: the most, and the default.
pub const MAX_LINES: usize = 500;
pub const DEFAULT_LINES: usize = 100;
/// Entries read per store call while walking forward.
const ENTRIES_PER_READ: usize = 1_000;
const DAY_MILLIS: i64 = 86_400_000;

/// What a statement is asked for, checked: `from < to`, at most [`MAX_RANGE_DAYS`] apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRange {
    pub currency: Currency,
    pub from: Timestamp,
    pub to: Timestamp,
}

impl StatementRange {
    pub fn new(currency: Currency, from: Timestamp, to: Timestamp) -> Result<StatementRange, ApiError> {
        if from >= to {
            return Err(ApiError::InvalidRange("from must be before to".to_owned()));
        }
        if to.unix_millis() - from.unix_millis() > MAX_RANGE_DAYS * DAY_MILLIS {
            return Err(ApiError::InvalidRange(format!(
                "from and to may be at most {MAX_RANGE_DAYS} days apart"
            )));
        }
        Ok(StatementRange { currency, from, to })
    }
}

/// What a range added up to, each a positive amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    pub collected: Amount,
    pub refunded: Amount,
    /// Withdrawals paid, fee included.
    pub withdrawn: Amount,
    /// The fees of the withdrawals paid.
    pub fees: Amount,
    pub converted_in: Amount,
    pub converted_out: Amount,
}

impl Totals {
    fn fields(&self) -> [Amount; 6] {
        [
            self.collected,
            self.refunded,
            self.withdrawn,
            self.fees,
            self.converted_in,
            self.converted_out,
        ]
    }

    /// What was added between `earlier` and `self`, both running totals.
    fn since(&self, earlier: &Totals) -> Option<Totals> {
        let [a, b, c, d, e, f] = self.fields();
        let [a0, b0, c0, d0, e0, f0] = earlier.fields();
        Some(Totals {
            collected: a.checked_sub(a0)?,
            refunded: b.checked_sub(b0)?,
            withdrawn: c.checked_sub(c0)?,
            fees: d.checked_sub(d0)?,
            converted_in: e.checked_sub(e0)?,
            converted_out: f.checked_sub(f0)?,
        })
    }
}

/// The balance and the running totals at an instant: all the account's entries before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Position {
    pub balance: Balance,
    pub totals: Totals,
}

impl Position {
    /// This position after `line`; `None` on overflow (stored data beyond any real sum).
    pub fn after_line(&self, line: &Line) -> Option<Position> {
        let change = &line.change;
        let balance = Balance {
            available: self.balance.available.checked_add(change.available)?,
            pending: self.balance.pending.checked_add(change.pending)?,
            in_transit: self.balance.in_transit.checked_add(change.in_transit)?,
        };
        let mut totals = self.totals;
        let add = |total: &mut Amount, amount: Amount| -> Option<()> {
            *total = total.checked_add(amount)?;
            Some(())
        };
        let moved = |amount: Amount| amount.negated();
        match line.line_type {
            EntryType::Collection => add(&mut totals.collected, change.pending)?,
            EntryType::Refund => add(
                &mut totals.refunded,
                moved(change.available.checked_add(change.pending)?),
            )?,
            EntryType::WithdrawalPaid => add(&mut totals.withdrawn, moved(change.in_transit))?,
            EntryType::WithdrawalFee => {
                add(&mut totals.withdrawn, moved(change.in_transit))?;
                add(&mut totals.fees, moved(change.in_transit))?;
            }
            EntryType::ConversionIn => add(&mut totals.converted_in, change.available)?,
            EntryType::ConversionOut => add(&mut totals.converted_out, moved(change.available))?,
            EntryType::CollectionSettled
            | EntryType::Withdrawal
            | EntryType::WithdrawalReturned
            | EntryType::Opening => {}
        }
        Some(Position { balance, totals })
    }
}

/// One line of a statement, before its running balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The id of the line's first entry: unique, and lines sort by it.
    pub id: String,
    pub time: Timestamp,
    pub line_type: EntryType,
    pub reference: String,
    /// Signed changes per bucket.
    pub change: Balance,
}

impl Line {
    /// What the line says, in both languages the sellers read.
    pub fn description(&self) -> &'static str {
        match self.line_type {
            EntryType::Collection => "Order collected / 订单收款",
            EntryType::CollectionSettled => "Collection settled / 订单结算",
            EntryType::Refund => "Refund / 退款",
            EntryType::Withdrawal => "Withdrawal requested / 提现申请",
            EntryType::WithdrawalPaid => "Withdrawal paid to bank / 提现到账",
            EntryType::WithdrawalFee => "Withdrawal fee / 提现手续费",
            EntryType::WithdrawalReturned => "Withdrawal returned by bank / 提现退回",
            EntryType::ConversionOut => "Converted out / 货币兑换转出",
            EntryType::ConversionIn => "Converted in / 货币兑换转入",
            EntryType::Opening => "Opening balance / 期初余额",
        }
    }
}

/// A line with the balance after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub line: Line,
    pub after: Balance,
}

/// One page of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub range: StatementRange,
    pub opening: Balance,
    pub closing: Balance,
    pub totals: Totals,
    pub lines: Vec<StatementLine>,
    /// The id of the last line when more follow.
    pub next_after: Option<String>,
}

/// The lines of entries that cover whole milliseconds: entries of one transaction (or,
/// for old entries, of one reference) and one type at one instant make one line.
fn lines_of(entries: Vec<LedgerEntry>) -> Vec<Line> {
    let mut lines: Vec<(String, Line)> = Vec::new();
    for entry in entries {
        let group = entry.transaction.clone().unwrap_or_else(|| entry.reference.clone());
        // Entries of one instant may interleave with another movement's: look through
        // every line of this instant (they are the last ones).
        let position = lines
            .iter()
            .rev()
            .take_while(|(_, line)| line.time == entry.created_at)
            .position(|(g, line)| *g == group && line.line_type == entry.entry_type)
            .map(|from_end| lines.len() - 1 - from_end);
        let slot = match position {
            Some(i) => &mut lines[i].1,
            None => {
                lines.push((
                    group,
                    Line {
                        id: entry.id.clone(),
                        time: entry.created_at,
                        line_type: entry.entry_type,
                        reference: entry.reference.clone(),
                        change: Balance::default(),
                    },
                ));
                match lines.last_mut() {
                    Some((_, line)) => line,
                    None => continue,
                }
            }
        };
        let bucket = match entry.bucket {
            Bucket::Available => &mut slot.change.available,
            Bucket::Pending => &mut slot.change.pending,
            Bucket::InTransit => &mut slot.change.in_transit,
        };
        *bucket = bucket.checked_add(entry.amount).unwrap_or(*bucket);
        if entry.id < slot.id {
            slot.id = entry.id.clone();
        }
    }
    let mut lines: Vec<Line> = lines.into_iter().map(|(_, line)| line).collect();
    lines.sort_by(|a, b| a.id.cmp(&b.id));
    lines
}

/// The lines of one member's currency from an instant to another, oldest first, read a
/// thousand entries at a time: a year of a busy seller streams in bounded memory.
pub struct LineReader<'a> {
    app: &'a App,
    member_id: MemberId,
    currency: Currency,
    start: Timestamp,
    end: Timestamp,
    after: Option<String>,
    /// Entries of the last millisecond read: it may go on in the next read.
    held: Vec<LedgerEntry>,
    ready: VecDeque<Line>,
    finished: bool,
}

impl<'a> LineReader<'a> {
    pub fn new(app: &'a App, member_id: &MemberId, currency: Currency, start: Timestamp, end: Timestamp) -> Self {
        LineReader {
            app,
            member_id: member_id.clone(),
            currency,
            start,
            end,
            after: None,
            held: Vec::new(),
            ready: VecDeque::new(),
            finished: false,
        }
    }

    /// The next line, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Line>, StoreError> {
        while self.ready.is_empty() && !self.finished {
            self.read().await?;
        }
        Ok(self.ready.pop_front())
    }

    async fn read(&mut self) -> Result<(), StoreError> {
        let range = EntryRange {
            start: self.start,
            end: self.end,
            after: self.after.clone(),
            limit: ENTRIES_PER_READ,
        };
        let page = self
            .app
            .store
            .ledger_range(&self.member_id, self.currency, &range)
            .await?;
        if let Some(last) = page.items.last() {
            self.after = Some(last.id.clone());
        }
        self.held.extend(page.items);
        if !page.more {
            self.finished = true;
            self.ready.extend(lines_of(std::mem::take(&mut self.held)));
            return Ok(());
        }
        // Keep back the last millisecond: its movement's other entries may be next.
        let last_instant = self.held.last().map(|e| e.created_at);
        let whole = self
            .held
            .iter()
            .take_while(|e| Some(e.created_at) != last_instant)
            .count();
        let rest = self.held.split_off(whole);
        let complete = std::mem::replace(&mut self.held, rest);
        self.ready.extend(lines_of(complete));
        Ok(())
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("statement sums overflow: {what}"))
}

/// The first millisecond of the UTC day holding `at`.
fn day_start(at: Timestamp) -> Timestamp {
    Timestamp::from_unix_millis(at.unix_millis().div_euclid(DAY_MILLIS) * DAY_MILLIS)
}

fn snapshot_partition(member_id: &MemberId, currency: Currency) -> String {
    format!("SNAPSHOT#{member_id}#{currency}")
}

/// A snapshot's sort key: the day as `YYYY-MM-DD`, which sorts as the days do.
fn snapshot_sort(day: Timestamp) -> String {
    day.to_rfc3339()[..10].to_owned()
}

/// A stored snapshot: the position at the first millisecond of `day`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Snapshot {
    day: Timestamp,
    position: Position,
}

/// The latest day whose snapshot may be made at `now`.
fn last_settled_day(now: Timestamp) -> Timestamp {
    day_start(now.plus_seconds(-BOOKS_SETTLE_SECONDS))
}

/// The position at the first millisecond of `day` (a settled day): its snapshot, made
/// from the latest earlier one and the entries since, and stored, if nobody had.
pub async fn snapshot(
    app: &App,
    member_id: &MemberId,
    currency: Currency,
    day: Timestamp,
) -> Result<Position, StoreError> {
    let partition = snapshot_partition(member_id, currency);
    let key = DocKey::new(partition.clone(), snapshot_sort(day));
    if let Some(Some(doc)) = app.store.docs(std::slice::from_ref(&key)).await?.into_iter().next() {
        return Ok(doc.parse::<Snapshot>()?.position);
    }
    let earlier = app
        .store
        .doc_page(
            &partition,
            &PageRequest {
                limit: 1,
                before: Some(key.sort.clone()),
            },
        )
        .await?;
    let (mut position, start) = match earlier.items.first() {
        Some(doc) => {
            let found: Snapshot = doc.parse()?;
            (found.position, found.day)
        }
        None => (Position::default(), Timestamp::from_unix_millis(0)),
    };
    // On the way, every day with movements gets its snapshot too (once: the first reader
    // of an old account pays for its history, and no reader after it does).
    let mut lines = LineReader::new(app, member_id, currency, start, day);
    let mut last_day = day_start(start);
    while let Some(line) = lines.next().await? {
        let line_day = day_start(line.time);
        if line_day > last_day {
            put_snapshot(app, &partition, line_day, position).await?;
            last_day = line_day;
        }
        position = position.after_line(&line).ok_or_else(|| corrupt("snapshot"))?;
    }
    put_snapshot(app, &partition, day, position).await?;
    Ok(position)
}

/// Stores the position at the first millisecond of `day`, unless a snapshot is there.
async fn put_snapshot(app: &App, partition: &str, day: Timestamp, position: Position) -> Result<(), StoreError> {
    let write = Write::PutDoc {
        doc: Doc::new(
            DocKey::new(partition, snapshot_sort(day)),
            1,
            &Snapshot { day, position },
        )?,
        expect: Expect::Absent,
    };
    // A snapshot of a settled day is the same whoever makes it: one made meanwhile is
    // as good as ours.
    match app.store.commit(vec![write]).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) | Err(StoreError::Contention) => Ok(()),
        Err(other) => Err(other),
    }
}

/// The position at `at`: a settled day's snapshot and the lines since it.
pub async fn position_at(
    app: &App,
    member_id: &MemberId,
    currency: Currency,
    at: Timestamp,
) -> Result<Position, StoreError> {
    let day = day_start(at).min(last_settled_day(app.now()));
    let mut position = snapshot(app, member_id, currency, day).await?;
    let mut lines = LineReader::new(app, member_id, currency, day, at);
    while let Some(line) = lines.next().await? {
        position = position.after_line(&line).ok_or_else(|| corrupt("position"))?;
    }
    Ok(position)
}

/// The position just after the line `after_id` (within the statement's range): where a
/// page that follows it starts.
async fn position_after_line(
    app: &App,
    member_id: &MemberId,
    range: &StatementRange,
    after_id: &str,
) -> Result<Option<Position>, StoreError> {
    let Some(instant) = entry_instant(after_id) else {
        return Ok(None);
    };
    if instant < range.from || instant >= range.to {
        return Ok(None);
    }
    let mut position = position_at(app, member_id, range.currency, instant).await?;
    let mut lines = LineReader::new(app, member_id, range.currency, instant, instant.plus_millis(1));
    while let Some(line) = lines.next().await? {
        if line.id.as_str() > after_id {
            break;
        }
        position = position.after_line(&line).ok_or_else(|| corrupt("cursor"))?;
    }
    Ok(Some(position))
}

/// The millisecond an entry id (`le_` + a ULID) was stamped at.
fn entry_instant(entry_id: &str) -> Option<Timestamp> {
    let ulid = ulid::Ulid::from_string(entry_id.strip_prefix("le_")?).ok()?;
    i64::try_from(ulid.timestamp_ms()).ok().map(Timestamp::from_unix_millis)
}

/// `GET /v1/statements`: the page of lines after `after` (a line id), at most `limit`,
/// with the whole range's opening, closing and totals. Reads the snapshot and at most a
/// day of entries before `from`, the page's entries, and — unless the page reaches `to`,
/// whose closing is then where it ends — the same before `to`.
pub async fn statement(
    app: &App,
    member_id: &MemberId,
    range: StatementRange,
    limit: usize,
    after: Option<String>,
) -> Result<Statement, ApiError> {
    let opening = position_at(app, member_id, range.currency, range.from).await?;
    let (mut running, start) = match &after {
        None => (opening, range.from),
        Some(id) => match position_after_line(app, member_id, &range, id).await? {
            Some(position) => (position, entry_instant(id).unwrap_or(range.from)),
            None => {
                return Err(ApiError::InvalidRequest(
                    "cursor is not one this API returned".to_owned(),
                ))
            }
        },
    };
    let mut reader = LineReader::new(app, member_id, range.currency, start, range.to);
    let mut lines = Vec::new();
    let mut next_after = None;
    while let Some(line) = reader.next().await? {
        if after.as_deref().is_some_and(|a| line.id.as_str() <= a) {
            continue;
        }
        if lines.len() == limit {
            next_after = lines.last().map(|l: &StatementLine| l.line.id.clone());
            break;
        }
        running = running
            .after_line(&line)
            .ok_or_else(|| ApiError::from(corrupt("page")))?;
        lines.push(StatementLine {
            line,
            after: running.balance,
        });
    }
    // The last page has read up to `to`: where it ends is the closing. Any other page
    // reads the closing from the snapshot before `to`.
    let closing = match next_after {
        None => running,
        Some(_) => position_at(app, member_id, range.currency, range.to).await?,
    };
    let totals = closing
        .totals
        .since(&opening.totals)
        .ok_or_else(|| ApiError::from(corrupt("totals")))?;
    Ok(Statement {
        range,
        opening: opening.balance,
        closing: closing.balance,
        totals,
        lines,
        next_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, at: i64, transaction: &str, entry_type: EntryType, bucket: Bucket, amount: &str) -> LedgerEntry {
        LedgerEntry {
            id: id.to_owned(),
            member_id: MemberId::parse("m1").unwrap(),
            currency: Currency::Usd,
            bucket,
            amount: Amount::parse_stored(amount).unwrap(),
            entry_type,
            reference: "wd_1".to_owned(),
            created_at: Timestamp::from_unix_millis(at),
            transaction: Some(transaction.to_owned()),
        }
    }

    #[test]
    fn a_movement_is_one_line_and_its_fee_another_even_interleaved_with_another_movement() {
        let lines = lines_of(vec![
            entry("le_1", 5, "lt_a", EntryType::Withdrawal, Bucket::Available, "-10"),
            entry("le_2", 5, "lt_b", EntryType::WithdrawalPaid, Bucket::InTransit, "-4"),
            entry("le_3", 5, "lt_a", EntryType::Withdrawal, Bucket::InTransit, "10"),
            entry("le_4", 5, "lt_b", EntryType::WithdrawalFee, Bucket::InTransit, "-1"),
        ]);
        let got: Vec<(&str, EntryType, String, String)> = lines
            .iter()
            .map(|l| {
                (
                    l.id.as_str(),
                    l.line_type,
                    l.change.available.to_string(),
                    l.change.in_transit.to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("le_1", EntryType::Withdrawal, "-10.00".to_owned(), "10.00".to_owned()),
                ("le_2", EntryType::WithdrawalPaid, "0.00".to_owned(), "-4.00".to_owned()),
                ("le_4", EntryType::WithdrawalFee, "0.00".to_owned(), "-1.00".to_owned()),
            ]
        );
    }

    #[test]
    fn a_fee_counts_as_withdrawn_and_as_a_fee() {
        let line = |line_type, in_transit: &str| Line {
            id: "le_1".to_owned(),
            time: Timestamp::from_unix_millis(0),
            line_type,
            reference: "wd_1".to_owned(),
            change: Balance {
                in_transit: Amount::parse_stored(in_transit).unwrap(),
                ..Balance::default()
            },
        };
        let position = Position::default()
            .after_line(&line(EntryType::WithdrawalPaid, "-99"))
            .unwrap()
            .after_line(&line(EntryType::WithdrawalFee, "-1"))
            .unwrap();
        assert_eq!(position.totals.withdrawn.to_string(), "100.00");
        assert_eq!(position.totals.fees.to_string(), "1.00");
        assert_eq!(position.balance.in_transit.to_string(), "-100.00");
    }

    #[test]
    fn a_range_is_ordered_and_at_most_366_days() {
        let at = |days: i64| Timestamp::from_unix_millis(days * DAY_MILLIS);
        assert!(StatementRange::new(Currency::Usd, at(0), at(366)).is_ok());
        for (from, to) in [(at(1), at(1)), (at(2), at(1)), (at(0), at(366).plus_millis(1))] {
            assert_eq!(
                StatementRange::new(Currency::Usd, from, to).unwrap_err().code(),
                "invalid_range"
            );
        }
        assert_eq!(snapshot_sort(at(20_000)), "2024-10-04");
        assert_eq!(day_start(at(3).plus_millis(5)), at(3));
    }
}
