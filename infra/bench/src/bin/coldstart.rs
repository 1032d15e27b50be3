//! Cold start, measured: starts a function binary against a minimal Lambda Runtime API
//! served here, hands it one API Gateway event, and times exec → the first response.
//! Runs each binary `RUNS` times (a fresh process each time) and prints the median next
//! to a hello-world `lambda_http` binary of the same profile.
//!
//! Usage: `coldstart BIN_DIR EVENTS_DIR [function ...]`, with `MOTO_ENDPOINT` pointing at
//! a DynamoDB-compatible endpoint (the first answer makes a real DynamoDB call).

// Floats here are timings for display; money never passes through this crate.
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bench::runtime_api::{invoke_once, lambda_environment, Answer, Invocation};

const RUNS: usize = 15;

/// Time from spawning `binary` to its first answer to `event`.
/// Execs `binary` as Lambda would, with the AWS variables pointed at `endpoint` and the
/// function's own settings `vars`, hands it `event` and times the answer.
async fn cold_start(
    binary: &Path,
    event: &str,
    endpoint: &str,
    vars: &[(&str, String)],
) -> Result<(Duration, String), String> {
    let mut env = lambda_environment("bench", 256, "us-east-1");
    env.extend(
        [
            ("AWS_ACCESS_KEY_ID", "bench"),
            ("AWS_SECRET_ACCESS_KEY", "bench"),
            ("AWS_ENDPOINT_URL", endpoint),
            ("RUST_LOG", "warn"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    env.extend(vars.iter().map(|(name, value)| ((*name).to_owned(), value.clone())));
    let invoked = invoke_once(&Invocation {
        binary: binary.to_owned(),
        event: event.to_owned(),
        env,
        timeout: Duration::from_secs(30),
        function_arn: "arn:aws:lambda:us-east-1:000000000000:function:bench".to_owned(),
    })
    .await?;
    let body = match invoked.answer {
        Answer::Response(body) => format!("ok: {body}"),
        Answer::Error(body) | Answer::InitError(body) => format!("error: {body}"),
        Answer::Exited(code) => return Err(format!("{}: exited ({code:?})", binary.display())),
        Answer::TimedOut => return Err(format!("{}: no answer within 30 s", binary.display())),
    };
    Ok((invoked.elapsed, body))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bin_dir, events_dir, functions @ ..] = args.as_slice() else {
        return Err("usage: coldstart BIN_DIR EVENTS_DIR [function ...] (MOTO_ENDPOINT must be set)".into());
    };
    let endpoint =
        std::env::var("MOTO_ENDPOINT").map_err(|_| "set MOTO_ENDPOINT (bash infra/scripts/bench.sh does)")?;
    let functions: Vec<String> = if functions.is_empty() {
        vec!["get-account".to_owned()]
    } else {
        functions.to_vec()
    };

    // A table with the events' member, so the first answer is a real 200 from DynamoDB.
    let store = bench::emulator_store(&endpoint, "bench").await?;
    let table = store.table().to_owned();
    let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$pQ2IHaVxZuL34y5Ob0WHXRCzJ4CSLBNtsWw9xmF1ifQ";
    let member = fund_account::member::MemberId::parse("seller-001")?;
    let settings = fund_account::app::Settings::new(b"bench-code-secret-0123456789abcdef".to_vec())?;
    let app = fund_account::app::App::new(
        Arc::new(store),
        Arc::new(fund_account::adapters::sqlite::SqliteStore::in_memory()?.outbox()),
        Arc::new(fund_account::clock::SystemClock),
        settings,
    );
    fund_account::activation::sync_member(&app, &member, fund_account::member::PhcHash::new(phc.to_owned()), None)
        .await
        .map_err(|e| e.to_string())?;

    // What template.yaml gives the functions (each reads only its own): the table, the
    // code secret in Secrets Manager (one more call at a hashing function's cold start),
    // the fees, and the reconciliation's alert topic (only named at cold start: a clean
    // run publishes nothing).
    let secret_arn = bench::emulator_secret(&endpoint, "bench-code-secret-0123456789abcdef").await?;
    let vars = [
        ("TABLE_NAME", table.clone()),
        ("CODE_SECRET_ARN", secret_arn),
        ("FEE_SCHEDULE", fund_account::fees::DEFAULT_SCHEDULE_JSON.to_owned()),
        (
            "FX_MARKUP_PERCENT",
            r#"{"USD-CNY": "0.50", "CNY-USD": "0.50"}"#.to_owned(),
        ),
        ("FX_RATE_MAX_AGE_SECONDS", "300".to_owned()),
        (
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:bench-alerts".to_owned(),
        ),
    ];
    let bin_dir = PathBuf::from(bin_dir);
    let hello_event = std::fs::read_to_string(Path::new(events_dir).join("get-account.json"))?;
    let mut hello = Vec::new();
    for _ in 0..RUNS {
        hello.push(
            cold_start(&bin_dir.join("hello-lambda"), &hello_event, &endpoint, &vars)
                .await?
                .0,
        );
    }
    let hello = median(hello);
    println!("| function | cold start to first answer (median of {RUNS}) | vs hello-world `lambda_http` ({:.1} ms) | first answer |", hello.as_secs_f64() * 1000.0);
    println!("|---|---|---|---|");
    for function in &functions {
        let event = std::fs::read_to_string(Path::new(events_dir).join(format!("{function}.json")))?;
        let mut samples = Vec::new();
        let mut last = String::new();
        for _ in 0..RUNS {
            let (elapsed, body) = cold_start(&bin_dir.join(function), &event, &endpoint, &vars).await?;
            samples.push(elapsed);
            last = body;
        }
        let m = median(samples);
        let status = serde_json::from_str::<serde_json::Value>(last.trim_start_matches("ok: "))
            .ok()
            .and_then(|v| v.get("statusCode").cloned())
            .map_or_else(|| last.chars().take(60).collect(), |s| format!("HTTP {s}"));
        println!(
            "| {function} | {:.1} ms | {:.2}× | {status} |",
            m.as_secs_f64() * 1000.0,
            m.as_secs_f64() / hello.as_secs_f64()
        );
    }
    Ok(())
}
