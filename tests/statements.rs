//! Statements and their CSV exports, on both adapters: for random ledgers every statement
//! adds up (opening plus its lines is its closing, page after page) and consecutive
//! statements chain; a statement reads a bounded amount however long the history before
//! it; the CSV parses back to the same lines, with a byte-order mark, RFC 4180 quoting and
//! formulas defused; on the emulator the file goes to S3 and comes back by its presigned
//! URL.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fund_account::app::App;
use fund_account::clock::Timestamp;
use fund_account::export::{self, ExportStatus, CSV_COLUMNS};
use fund_account::ledger::{Balance, Bucket, EntryType, PlatformAccount, Posting, Transaction};
use fund_account::member::MemberId;
use fund_account::money::{Amount, Currency};
use fund_account::statement::{self, Statement, StatementRange};
use fund_account::store::{StoreError, Write};
use fund_account_tests::faults::{hooked_app, Injection, StoreCall, StoreHook};
use fund_account_tests::{test_app, Adapter, TestApp};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const DAY: i64 = 86_400_000;

fn cents(n: u64) -> Amount {
    Amount::parse_stored(&format!("{}.{:02}", n / 100, n % 100)).unwrap()
}

/// One movement of a random ledger, as its ledger transaction would book it.
#[derive(Debug, Clone)]
enum Move {
    Collect(Currency, u64),
    Settle(Currency, u64),
    Refund(Currency, u64, Bucket),
    Withdraw(Currency, u64),
    /// Paid: the amount leaves `in_transit`, its fee on an entry of its own.
    Paid(Currency, u64, u64),
    Returned(Currency, u64),
    Convert(u64, u64),
    /// Not a movement: a statement taken now, which also makes snapshots mid-way.
    LookNow,
}

fn a_move() -> impl Strategy<Value = Move> {
    let currency = prop_oneof![Just(Currency::Usd), Just(Currency::Cny)];
    let amount = 1u64..200_000;
    prop_oneof![
        3 => (currency.clone(), amount.clone()).prop_map(|(c, a)| Move::Collect(c, a)),
        2 => (currency.clone(), amount.clone()).prop_map(|(c, a)| Move::Settle(c, a)),
        1 => (currency.clone(), amount.clone(), prop_oneof![Just(Bucket::Pending), Just(Bucket::Available)])
            .prop_map(|(c, a, b)| Move::Refund(c, a, b)),
        2 => (currency.clone(), amount.clone()).prop_map(|(c, a)| Move::Withdraw(c, a)),
        2 => (currency.clone(), amount.clone(), 0u64..2_000).prop_map(|(c, a, f)| Move::Paid(c, a, f)),
        1 => (currency, amount.clone()).prop_map(|(c, a)| Move::Returned(c, a)),
        1 => (amount.clone(), amount).prop_map(|(a, b)| Move::Convert(a, b)),
        1 => Just(Move::LookNow),
    ]
}

/// Time between movements: often none (one millisecond holds several), else up to 3 days.
fn a_gap() -> impl Strategy<Value = i64> {
    prop_oneof![2 => Just(0i64), 1 => Just(1i64), 3 => 0i64..3 * DAY]
}

fn transaction(member: &MemberId, step: usize, movement: &Move, now: Timestamp) -> Option<Transaction> {
    let reference = format!("ref-{step}");
    let tx = Transaction::new(member, &reference, now);
    let posting = |c: Currency, t: EntryType| Posting::new(member, c, t, &reference);
    let clearing =
        |tx: Transaction, c: Currency, a: Amount, t: EntryType| tx.platform(PlatformAccount::Clearing, c, a, t);
    Some(match *movement {
        Move::Collect(c, a) => clearing(
            tx.member(posting(c, EntryType::Collection).change(Bucket::Pending, cents(a))),
            c,
            cents(a).negated(),
            EntryType::Collection,
        ),
        Move::Settle(c, a) => tx.member(
            posting(c, EntryType::CollectionSettled)
                .change(Bucket::Pending, cents(a).negated())
                .change(Bucket::Available, cents(a)),
        ),
        Move::Refund(c, a, bucket) => clearing(
            tx.member(posting(c, EntryType::Refund).change(bucket, cents(a).negated())),
            c,
            cents(a),
            EntryType::Refund,
        ),
        Move::Withdraw(c, a) => tx.member(
            posting(c, EntryType::Withdrawal)
                .change(Bucket::Available, cents(a).negated())
                .change(Bucket::InTransit, cents(a)),
        ),
        Move::Paid(c, a, fee) => {
            let fee = fee.min(a);
            clearing(
                tx.member(
                    posting(c, EntryType::WithdrawalPaid)
                        .change(Bucket::InTransit, cents(a - fee).negated())
                        .change_as(Bucket::InTransit, cents(fee).negated(), EntryType::WithdrawalFee),
                )
                .platform(PlatformAccount::FeeRevenue, c, cents(fee), EntryType::WithdrawalPaid),
                c,
                cents(a - fee),
                EntryType::WithdrawalPaid,
            )
        }
        Move::Returned(c, a) => tx.member(
            posting(c, EntryType::WithdrawalReturned)
                .change(Bucket::InTransit, cents(a).negated())
                .change(Bucket::Available, cents(a)),
        ),
        Move::Convert(sell, buy) => tx
            .member(posting(Currency::Usd, EntryType::ConversionOut).change(Bucket::Available, cents(sell).negated()))
            .member(posting(Currency::Cny, EntryType::ConversionIn).change(Bucket::Available, cents(buy)))
            .platform(
                PlatformAccount::FxPosition,
                Currency::Usd,
                cents(sell),
                EntryType::ConversionOut,
            )
            .platform(
                PlatformAccount::FxPosition,
                Currency::Cny,
                cents(buy).negated(),
                EntryType::ConversionIn,
            ),
        Move::LookNow => return None,
    })
}

/// Books the movement if the balances allow it (a bucket never goes below zero: the
/// store refuses, as it would a real request).
async fn book(app: &App, member: &MemberId, step: usize, movement: &Move) -> bool {
    let Some(tx) = transaction(member, step, movement, app.now()) else {
        return false;
    };
    let mut writes = Write::transaction(tx, app.now()).unwrap();
    writes.push(Write::CheckMember {
        member_id: member.clone(),
        version: None,
    });
    match app.store.commit(writes).await {
        Ok(()) => true,
        Err(StoreError::ConditionFailed { .. }) => false,
        Err(other) => panic!("{other}"),
    }
}

fn add(a: &Balance, change: &Balance) -> Balance {
    Balance {
        available: a.available.checked_add(change.available).unwrap(),
        pending: a.pending.checked_add(change.pending).unwrap(),
        in_transit: a.in_transit.checked_add(change.in_transit).unwrap(),
    }
}

/// Every page of a statement, following the cursor; checks each page on the way: the
/// range's opening, closing and totals on every page, and each line's balance after.
async fn whole_statement(app: &App, member: &MemberId, range: &StatementRange, limit: usize) -> Statement {
    let mut after = None;
    let mut all: Option<Statement> = None;
    loop {
        let page = statement::statement(app, member, range.clone(), limit, after.clone())
            .await
            .unwrap();
        assert!(page.lines.len() <= limit);
        let running = match &all {
            None => page.opening,
            Some(so_far) => {
                assert_eq!(
                    (page.opening, page.closing, page.totals),
                    (so_far.opening, so_far.closing, so_far.totals),
                    "every page describes the whole range"
                );
                so_far.lines.last().map_or(so_far.opening, |l| l.after)
            }
        };
        let mut running = running;
        for line in &page.lines {
            running = add(&running, &line.line.change);
            assert_eq!(running, line.after, "the balance after {:?}", line.line);
            assert!(line.line.time >= range.from && line.line.time < range.to);
        }
        after = page.next_after.clone();
        match &mut all {
            None => all = Some(page),
            Some(so_far) => so_far.lines.extend(page.lines),
        }
        if after.is_none() {
            break;
        }
    }
    let whole = all.unwrap();
    let end = whole.lines.last().map_or(whole.opening, |l| l.after);
    assert_eq!(end, whole.closing, "opening plus every line is the closing");
    let ids: Vec<&str> = whole.lines.iter().map(|l| l.line.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(ids, sorted, "lines oldest first, each once");
    whole
}

/// The totals a statement's lines add up to.
fn totals_of(lines: &[statement::StatementLine]) -> statement::Totals {
    let mut position = statement::Position::default();
    for line in lines {
        position = position.after_line(&line.line).unwrap();
    }
    position.totals
}

async fn random_ledger_case(adapter: Adapter, moves: Vec<(Move, i64)>, cuts: Vec<u16>, limit: usize) {
    let t = test_app(adapter).await;
    let member = t.member("seller-statements", "login-Pass-2026", None).await;
    let start = t.app.now();
    for (step, (movement, gap)) in moves.iter().enumerate() {
        t.clock.advance_millis(*gap);
        if matches!(movement, Move::LookNow) {
            let range =
                StatementRange::new(Currency::Usd, start.plus_millis(-DAY), t.app.now().plus_millis(DAY)).unwrap();
            let seen = whole_statement(&t.app, &member, &range, limit).await;
            assert_eq!(
                seen.closing,
                t.balances(&member).await.usd,
                "a statement to now ends at the balance"
            );
        } else {
            book(&t.app, &member, step, movement).await;
        }
    }
    // Later, so that every day so far is settled and snapshots are used.
    t.clock.advance_millis(2 * DAY);
    let end = t.app.now();
    let first = start.plus_millis(-DAY);
    let span = end.unix_millis() - first.unix_millis();
    let mut bounds: Vec<Timestamp> = cuts
        .iter()
        .map(|c| first.plus_millis(span * i64::from(*c) / i64::from(u16::MAX)))
        .collect();
    bounds.push(first);
    bounds.push(end.plus_millis(1));
    bounds.sort_unstable();
    bounds.dedup();
    for currency in Currency::ALL {
        let mut previous: Option<Statement> = None;
        for pair in bounds.windows(2) {
            let range = StatementRange::new(currency, pair[0], pair[1]).unwrap();
            let this = whole_statement(&t.app, &member, &range, limit).await;
            assert_eq!(this.totals, totals_of(&this.lines), "totals are the lines'");
            match &previous {
                None => assert_eq!(this.opening, Balance::default(), "nothing before the first movement"),
                Some(before) => assert_eq!(before.closing, this.opening, "one's closing is the next one's opening"),
            }
            previous = Some(this);
        }
        let last = previous.unwrap();
        assert_eq!(
            &last.closing,
            t.balances(&member).await.get(currency),
            "{currency}: the last closing is the balance"
        );
    }
}

fn random_ledgers(adapter: Adapter, cases: u32) {
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        prop::collection::vec((a_move(), a_gap()), 1..60),
        prop::collection::vec(any::<u16>(), 0..6),
        1usize..8,
    );
    runner
        .run(&strategy, |(moves, cuts, limit)| {
            tokio::task::block_in_place(|| handle.block_on(random_ledger_case(adapter, moves, cuts, limit)));
            Ok(())
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_of_a_random_ledger_adds_up_and_chains_on_sqlite() {
    random_ledgers(Adapter::Sqlite, 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_of_a_random_ledger_adds_up_and_chains_on_dynamodb() {
    random_ledgers(Adapter::DynamoDb, 4);
}

/// Counts the ledger reads a statement makes.
struct CountLedgerReads(AtomicUsize);

#[async_trait::async_trait]
impl StoreHook for CountLedgerReads {
    async fn before(&self, call: StoreCall<'_>) -> Injection {
        if matches!(call, StoreCall::Read("ledger_range")) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Injection::Pass
    }
}

/// 12,000 collections over 120 days, then a statement of the last day: its reads do not
/// depend on the history before it (12 reads of a thousand entries would be the least
/// that summing the history could take).
async fn a_statements_reads_do_not_grow_with_the_history_before_it(adapter: Adapter) {
    let counter = Arc::new(CountLedgerReads(AtomicUsize::new(0)));
    let t = hooked_app(adapter, counter.clone()).await;
    let member = t.member("seller-history", "login-Pass-2026", None).await;
    let collections = 12_000;
    for step in 0..collections {
        t.clock.advance_millis(120 * DAY / collections as i64);
        assert!(book(&t.app, &member, step, &Move::Collect(Currency::Usd, 100)).await);
    }
    t.clock.advance_millis(DAY);
    let now = t.app.now();
    // The first reader of the account pays for its history once, snapshotting every day
    // it passes; no statement after it does, of any range.
    let first = StatementRange::new(Currency::Usd, now.plus_millis(-DAY), now).unwrap();
    statement::statement(&t.app, &member, first, 10, None).await.unwrap();
    let range = StatementRange::new(
        Currency::Usd,
        now.plus_millis(-61 * DAY - 3_600_000),
        now.plus_millis(-60 * DAY),
    )
    .unwrap();
    counter.0.store(0, Ordering::SeqCst);
    let page = statement::statement(&t.app, &member, range, 500, None).await.unwrap();
    let reads = counter.0.load(Ordering::SeqCst);
    assert!(!page.lines.is_empty());
    let collected = cents(100 * page.lines.len() as u64);
    assert_eq!(
        page.closing.pending,
        page.opening.pending.checked_add(collected).unwrap()
    );
    assert!(
        page.opening.pending > Amount::ZERO,
        "the history before it is in its opening"
    );
    assert!(
        reads <= 6,
        "{reads} ledger reads for one day's statement after {collections} entries"
    );
}

// On the embedded store only: the bound is the statement's (its reads are the same calls
// on either adapter, `tests/dynamodb_calls.rs` counts DynamoDB's), and 12,000 entries on
// the emulator, whose table keeps a stream, cost it gigabytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statements_reads_do_not_grow_with_the_history_before_it_on_sqlite() {
    a_statements_reads_do_not_grow_with_the_history_before_it(Adapter::Sqlite).await;
}

/// A minimal RFC 4180 reader: quoted cells (with doubled quotes and line breaks inside),
/// CRLF row ends. Refuses anything else.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => {
                    quoted = false;
                    assert!(
                        matches!(chars.peek(), Some(',' | '\r') | None),
                        "text after a closing quote"
                    );
                }
                other => cell.push(other),
            }
            continue;
        }
        match c {
            '"' => {
                assert!(at_start, "a quote inside an unquoted cell");
                quoted = true;
            }
            ',' => {
                row.push(std::mem::take(&mut cell));
                at_start = true;
                continue;
            }
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "rows end in CRLF");
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
                at_start = true;
                continue;
            }
            '\n' => panic!("a bare LF ends no row"),
            other => cell.push(other),
        }
        at_start = false;
    }
    assert!(!quoted, "an unclosed quote");
    assert!(cell.is_empty() && row.is_empty(), "the last row ends in CRLF");
    rows
}

/// What a reference written by someone else can hold: a formula, a comma, quotes.
const HOSTILE: &str = "=HYPERLINK(\"http://x\",\"订单, 退款\")";

/// A ledger with hostile references and Chinese text, exported; the file read back.
async fn exported_file(t: &TestApp, member: &MemberId) -> (Statement, String, export::Export) {
    for (step, movement) in [
        Move::Collect(Currency::Usd, 150_000),
        Move::Settle(Currency::Usd, 100_000),
        Move::Withdraw(Currency::Usd, 25_000),
        Move::Paid(Currency::Usd, 25_000, 1_500),
        Move::Refund(Currency::Usd, 10_000, Bucket::Pending),
    ]
    .iter()
    .enumerate()
    {
        t.clock.advance_millis(60_000);
        let tx = transaction(member, step, movement, t.app.now()).unwrap();
        let tx = Transaction {
            reference: format!("{HOSTILE}-{step}"),
            postings: tx
                .postings
                .into_iter()
                .map(|mut p| {
                    p.reference = if step == 4 {
                        "-1".to_owned()
                    } else {
                        format!("{HOSTILE}-{step}")
                    };
                    p
                })
                .collect(),
            ..tx
        };
        t.app
            .store
            .commit(Write::transaction(tx, t.app.now()).unwrap())
            .await
            .unwrap();
    }
    let now = t.app.now();
    let range = StatementRange::new(Currency::Usd, now.plus_millis(-DAY), now.plus_millis(1)).unwrap();
    let statement = whole_statement(&t.app, member, &range, 500).await;
    let requested = export::request(&t.app, member, range).await.unwrap();
    assert_eq!(requested.status, ExportStatus::Pending);
    assert_eq!(
        export::run(&t.app, member, &requested.id).await.unwrap(),
        ExportStatus::Ready
    );
    let view = export::view(&t.app, member, &requested.id).await.unwrap();
    let (url, expires_at) = view.download.clone().expect("a ready export has a download URL");
    assert_eq!(expires_at, t.app.now().plus_seconds(15 * 60));
    (statement, url, view.export)
}

fn check_csv(bytes: &[u8], statement: &Statement, export: &export::Export) {
    use sha2::Digest;
    assert_eq!(
        Some(hex::encode(sha2::Sha256::digest(bytes))),
        export.sha256,
        "the file is the one recorded"
    );
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    let body = text.strip_prefix('\u{feff}').expect("a byte-order mark first");
    let rows = parse_csv(body);
    assert_eq!(rows[0], CSV_COLUMNS.map(str::to_owned).to_vec(), "the header row");
    assert_eq!(rows.len() - 1, statement.lines.len());
    assert_eq!(export.lines, Some(statement.lines.len() as u64));
    for (row, line) in rows[1..].iter().zip(&statement.lines) {
        let expected_reference = if line.line.reference.starts_with(['=', '+', '-', '@']) {
            format!("'{}", line.line.reference)
        } else {
            line.line.reference.clone()
        };
        assert_eq!(
            row,
            &vec![
                line.line.id.clone(),
                line.line.time.to_rfc3339(),
                line.line.line_type.as_str().to_owned(),
                expected_reference,
                line.line.description().to_owned(),
                line.line.change.available.to_string(),
                line.line.change.pending.to_string(),
                line.line.change.in_transit.to_string(),
                line.after.available.to_string(),
                line.after.pending.to_string(),
                line.after.in_transit.to_string(),
            ]
        );
    }
    assert!(body.contains("提现手续费"), "Chinese text survives");
    assert!(
        body.contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"订单, 退款\"\")-0\""),
        "quoted and defused"
    );
    assert!(body.contains(",'-1,"), "a reference beginning with - is defused");
}

/// The same test app, keeping exports in `files`.
fn with_files(t: TestApp, files: Arc<dyn fund_account::files::ExportFiles>) -> TestApp {
    let app = Arc::try_unwrap(t.app)
        .expect("the test's only handle")
        .with_files(files);
    TestApp {
        app: Arc::new(app),
        clock: t.clock,
        outbox: t.outbox,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_opens_with_its_chinese_text_and_defused_formulas_and_adds_up() {
    use fund_account::adapters::local_files::LocalFiles;
    let dir = std::env::temp_dir().join(format!(
        "fund-account-csv-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    ));
    let files = LocalFiles::new(&dir, "http://127.0.0.1:3000", b"k".to_vec());
    let t = with_files(test_app(Adapter::Sqlite).await, Arc::new(files.clone()));
    let member = t.member("seller-csv", "login-Pass-2026", None).await;
    let (statement, url, export) = exported_file(&t, &member).await;
    // The URL the gateway serves opens the file, as signed and only so.
    let (path, query) = url
        .strip_prefix("http://127.0.0.1:3000/dev/files/")
        .and_then(|rest| rest.split_once('?'))
        .expect("a signed gateway URL");
    assert_eq!(path, export.file_key());
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    let expires: i64 = param("expires").parse().unwrap();
    let file = files
        .verified_path(path, expires, &param("name"), &param("signature"), t.app.now())
        .expect("the signature holds");
    assert!(files
        .verified_path(path, expires, &param("name"), "0".repeat(64).as_str(), t.app.now())
        .is_none());
    check_csv(&std::fs::read(file).unwrap(), &statement, &export);
    // Another member sees no such export.
    let other = t.member("someone-else", "login-Pass-2026", None).await;
    assert_eq!(
        export::view(&t.app, &other, &export.id).await.unwrap_err().code(),
        "export_not_found"
    );
}

/// On the emulator: DynamoDB for the ledger, S3 for the file (a multipart upload when it
/// outgrows a part), and the presigned URL a browser would follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_emulator_the_export_goes_to_s3_and_its_presigned_url_downloads_it() {
    let aws = fund_account_tests::aws_config().await;
    let bucket = format!("exports-{}", ulid::Ulid::new().to_string().to_lowercase());
    let s3 = fund_account_tests::emulator::s3_client(&aws);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let files = fund_account::lambda::aws::files_in_s3(&aws, bucket.clone());
    let t = with_files(test_app(Adapter::DynamoDb).await, files);
    let member = t.member("seller-s3", "login-Pass-2026", None).await;
    let (statement, url, export) = exported_file(&t, &member).await;
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    check_csv(&bytes, &statement, &export);
    let stored = s3
        .head_object()
        .bucket(&bucket)
        .key(export.file_key())
        .send()
        .await
        .unwrap();
    assert_eq!(stored.content_type(), Some("text/csv; charset=utf-8"));
}
