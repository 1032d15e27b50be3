//! `export <embedded|emulator> [transactions]`: the statement export of a year of a busy
//! seller (100,000 ledger transactions by default), timed, with the process's peak memory
//! during the export alone (the peak is reset after seeding through
//! `/proc/self/clear_refs`). `embedded`: the SQLite store in a file and the local file
//! store; `emulator`: DynamoDB and S3 on the moto server at `MOTO_ENDPOINT`.

use std::sync::Arc;
use std::time::Instant;

use fund_account::adapters::local_files::LocalFiles;
use fund_account::adapters::sqlite::SqliteStore;
use fund_account::app::{App, Settings};
use fund_account::clock::SystemClock;
use fund_account::export::{self, ExportStatus};
use fund_account::ledger::{Bucket, EntryType, LedgerEntry};
use fund_account::member::MemberId;
use fund_account::money::{Amount, Currency};
use fund_account::sms::NoSms;
use fund_account::statement::StatementRange;
use fund_account::store::{Store, Write};

const DAY_MILLIS: i64 = 86_400_000;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// `n` collections spread over the last year, 99 entries a commit (with the balance they
/// add up to), so that seeding is not what takes the time.
async fn seed(store: &dyn Store, member: &MemberId, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let now = fund_account::clock::Clock::now(&SystemClock);
    let start = now.plus_millis(-365 * DAY_MILLIS);
    let step = 364 * DAY_MILLIS / i64::try_from(n)?;
    let amount = Amount::parse_stored("12.34")?;
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(99);
        let mut writes = Vec::with_capacity(batch + 1);
        let mut total = Amount::ZERO;
        for i in done..done + batch {
            let at = start.plus_millis(step * i64::try_from(i)?);
            writes.push(Write::AppendLedger(LedgerEntry {
                id: format!("le_{}", fund_account::ids::ulid_at(at)),
                member_id: member.clone(),
                currency: Currency::Usd,
                bucket: Bucket::Pending,
                amount,
                entry_type: EntryType::Collection,
                reference: format!("order-{i:06}"),
                created_at: at,
                transaction: Some(format!("lt_{}", fund_account::ids::ulid_at(at))),
            }));
            total = total.checked_add(amount).ok_or("overflow")?;
        }
        let posting = fund_account::ledger::Posting::new(member, Currency::Usd, EntryType::Collection, "seed")
            .change(Bucket::Pending, total);
        writes.push(Write::AdjustBalance {
            member_id: member.clone(),
            currency: Currency::Usd,
            part: fund_account::ledger::BalancePart::Main,
            deltas: posting.deltas(),
        });
        store.commit(writes).await?;
        done += batch;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let adapter = args.get(1).map_or("embedded", String::as_str).to_owned();
    let n: usize = args.get(2).map_or(Ok(100_000), |n| n.parse())?;
    let dir = std::env::temp_dir().join(format!("fund-account-export-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (store, files): (Arc<dyn Store>, Arc<dyn fund_account::files::ExportFiles>) = match adapter.as_str() {
        "emulator" => {
            let endpoint = std::env::var("MOTO_ENDPOINT").map_err(|_| "set MOTO_ENDPOINT")?;
            let store = bench::emulator_store(&endpoint, "export-bench").await?;
            let config = bench::emulator_config(&endpoint).await;
            let bucket = format!("export-bench-{}", std::process::id());
            let s3 = aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(true)
                    .build(),
            );
            s3.create_bucket().bucket(&bucket).send().await?;
            (Arc::new(store), fund_account::lambda::aws::files_in_s3(&config, bucket))
        }
        _ => (
            Arc::new(SqliteStore::open(&dir.join("store.sqlite3"))?),
            Arc::new(LocalFiles::new(
                dir.join("files"),
                "http://127.0.0.1:3000",
                b"bench".to_vec(),
            )),
        ),
    };
    let app = App::new(
        store,
        Arc::new(NoSms),
        Arc::new(SystemClock),
        Settings::new(vec![7; 32])?,
    )
    .with_files(files);
    let member = MemberId::parse("busy-seller")?;
    let login = fund_account::password::hash_blocking(&fund_account::password::PaymentPassword::new(
        "bench-Login-2026".to_owned(),
    ))
    .map_err(|e| format!("{e:?}"))?;
    fund_account::activation::sync_member(&app, &member, fund_account::member::PhcHash::new(login), None)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let seeding = Instant::now();
    seed(&*app.store, &member, n).await?;
    let seeded_in = seeding.elapsed();
    // From here on the peak is the export's.
    std::fs::write("/proc/self/clear_refs", "5")?;
    let rss_before = status_kib("VmRSS:");
    let now = app.now();
    let range = StatementRange::new(Currency::Usd, now.plus_millis(-366 * DAY_MILLIS), now)?;
    let started = Instant::now();
    let requested = export::request(&app, &member, range)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = export::run(&app, &member, &requested.id)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let elapsed = started.elapsed();
    let view = export::view(&app, &member, &requested.id)
        .await
        .map_err(|e| format!("{e:?}"))?;
    if status != ExportStatus::Ready {
        return Err(format!("the export ended {status:?}").into());
    }
    println!("| store | transactions | lines | export time | peak RSS during export (before) | seeding |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {adapter} | {n} | {} | {:.2} s | {} MiB ({} MiB) | {:.1} s |",
        view.export.lines.unwrap_or(0),
        elapsed.as_secs_f64(),
        status_kib("VmHWM:") / 1024,
        rss_before / 1024,
        seeded_in.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
