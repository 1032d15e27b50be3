//! Latency, measured in-process: argon2id hash and verify at our parameters, and a whole
//! withdrawal (read, verify, commit) on the embedded store and, with `MOTO_ENDPOINT` set,
//! on DynamoDB — next to a bare verify, since the password check dominates.
//!
//! Usage: `latency [samples]` (default 40). Build with `--release`.

// Floats here are timings for display; money never passes through this crate.
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use fund_account::app::{App, Settings};
use fund_account::clock::SystemClock;
use fund_account::collection::{self, NewCollection};
use fund_account::money::{Amount, Currency};
use fund_account::password::{self, PaymentPassword};
use fund_account::records::BankAccount;
use fund_account::store::Store;
use fund_account::withdrawal::{self, IdempotencyKey, WithdrawalRequest};

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index].as_secs_f64() * 1000.0
}

fn report(name: &str, mut samples: Vec<Duration>) -> f64 {
    let p50 = percentile(&mut samples, 0.5);
    let p99 = percentile(&mut samples, 0.99);
    println!("| {name} | {p50:.1} ms | {p99:.1} ms | {} |", samples.len());
    p50
}

async fn withdrawals(store: Arc<dyn Store>, samples: usize) -> Result<Vec<Duration>, Box<dyn std::error::Error>> {
    let settings = Settings::new(b"bench-code-secret-0123456789abcdef".to_vec())?;
    let outbox = fund_account::adapters::sqlite::SqliteStore::in_memory()?.outbox();
    let app = App::new(store, Arc::new(outbox), Arc::new(SystemClock), settings);
    let member = fund_account::member::MemberId::parse("bench-seller")?;
    let login = password::hash_blocking(&PaymentPassword::new("login-Pass-2026".to_owned()))?;
    fund_account::activation::sync_member(&app, &member, fund_account::member::PhcHash::new(login), None)
        .await
        .map_err(|e| e.to_string())?;
    fund_account::activation::set_payment_password(&app, &member, PaymentPassword::new("Vault-Key-2026!".to_owned()))
        .await
        .map_err(|e| e.to_string())?;
    let collection = NewCollection {
        collection_id: fund_account::ids::ExternalId::parse("bench-col").ok_or("an external id")?,
        member_id: member.clone(),
        currency: Currency::Cny,
        amount: Amount::parse_request("1000000")?,
        available_at: None,
    };
    collection::collect(&app, collection).await.map_err(|e| e.to_string())?;
    collection::settle_due(&app, app.now())
        .await
        .map_err(|e| e.to_string())?;
    let mut timings = Vec::with_capacity(samples);
    for i in 0..samples {
        let request = WithdrawalRequest {
            key: IdempotencyKey::parse(&format!("bench-{i}")).map_err(|e| e.to_string())?,
            currency: Currency::Cny,
            amount: Amount::parse_request("1.00")?,
            password: PaymentPassword::new("Vault-Key-2026!".to_owned()),
            bank_account: BankAccount {
                holder_name: "Li Wei".to_owned(),
                account_number: "6222020200112233".to_owned(),
                bank_name: "ICBC".to_owned(),
            },
            payout_currency: Currency::Cny,
            quote_id: None,
        };
        let started = Instant::now();
        withdrawal::withdraw(&app, &member, request)
            .await
            .map_err(|e| e.to_string())?;
        timings.push(started.elapsed());
    }
    Ok(timings)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let samples: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(40);
    let password = PaymentPassword::new("Vault-Key-2026!".to_owned());
    let phc = password::hash_blocking(&password)?;

    println!("| measure | p50 | p99 | samples |");
    println!("|---|---|---|---|");
    let hash: Vec<Duration> = (0..samples)
        .map(|_| {
            let started = Instant::now();
            let _ = password::hash_blocking(&password);
            started.elapsed()
        })
        .collect();
    report("argon2id hash (m=19 MiB, t=2, p=1)", hash);
    let verify: Vec<Duration> = (0..samples)
        .map(|_| {
            let started = Instant::now();
            let _ = password::verify_blocking(&password, &phc);
            started.elapsed()
        })
        .collect();
    let verify_p50 = report("argon2id verify", verify);

    let sqlite = Arc::new(fund_account::adapters::sqlite::SqliteStore::in_memory()?);
    let p50 = report(
        "withdrawal, embedded store (in-memory SQLite)",
        withdrawals(sqlite, samples).await?,
    );
    println!(
        "| ratio withdrawal / verify (embedded) | {:.2}× | | |",
        p50 / verify_p50
    );

    if let Ok(endpoint) = std::env::var("MOTO_ENDPOINT") {
        let store = Arc::new(bench::emulator_store(&endpoint, "bench-latency").await?);
        let p50 = report(
            "withdrawal, DynamoDB (moto on loopback)",
            withdrawals(store, samples).await?,
        );
        println!(
            "| ratio withdrawal / verify (DynamoDB emulator) | {:.2}× | | |",
            p50 / verify_p50
        );
    }
    Ok(())
}
