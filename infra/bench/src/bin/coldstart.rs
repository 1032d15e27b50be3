//! Cold start, measured: starts a function binary against a minimal Lambda Runtime API
//! served here, hands it one API Gateway event, and times exec → the first response.
//! Runs each binary `RUNS` times (a fresh process each time) and prints the median next
//! to a hello-world `lambda_http` binary of the same profile.
//!
//! Usage: `coldstart BIN_DIR EVENTS_DIR [function ...]`, with `MOTO_ENDPOINT` pointing at
//! a DynamoDB-compatible endpoint (the first answer makes a real DynamoDB call).

// Floats here are timings for display; money never passes through this crate.
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)]

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Notify;

const RUNS: usize = 15;

/// One invocation's state, shared with the runtime API server.
struct Invocation {
    event: String,
    handed_out: Mutex<bool>,
    response: Mutex<Option<(Instant, String)>>,
    done: Notify,
}

async fn runtime_api(invocation: Arc<Invocation>, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if path.ends_with("/invocation/next") {
        let first = {
            let mut handed = invocation
                .handed_out
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            !std::mem::replace(&mut *handed, true)
        };
        if !first {
            // One invocation per process: park later polls until the process is killed.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() + 30_000)
            .unwrap_or(0);
        return http::Response::builder()
            .header("lambda-runtime-aws-request-id", "bench-request-1")
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:000000000000:function:bench",
            )
            .header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000")
            .body(Full::new(Bytes::from(invocation.event.clone())))
            .unwrap_or_default();
    }
    let received = Instant::now();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let outcome = if path.ends_with("/response") { "ok: " } else { "error: " };
    *invocation
        .response
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some((received, format!("{outcome}{}", String::from_utf8_lossy(&body))));
    invocation.done.notify_one();
    http::Response::builder()
        .status(202)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default()
}

/// Time from spawning `binary` to its first answer to `event`.
/// Execs `binary` as Lambda would, with the AWS variables pointed at `endpoint` and the
/// function's own settings `vars`, hands it `event` and times the answer.
async fn cold_start(
    binary: &Path,
    event: &str,
    endpoint: &str,
    vars: &[(&str, String)],
) -> Result<(Duration, String), String> {
    let invocation = Arc::new(Invocation {
        event: event.to_owned(),
        handed_out: Mutex::new(false),
        response: Mutex::new(None),
        done: Notify::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server_invocation = Arc::clone(&invocation);
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let invocation = Arc::clone(&server_invocation);
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let invocation = Arc::clone(&invocation);
                    async move { Ok::<_, Infallible>(runtime_api(invocation, req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_ENDPOINT_URL", endpoint)
        .envs(vars.iter().map(|(name, value)| (*name, value.as_str())))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let waited = tokio::time::timeout(Duration::from_secs(30), invocation.done.notified()).await;
    let _ = child.kill().await;
    server.abort();
    waited.map_err(|_| format!("{}: no answer within 30 s", binary.display()))?;
    let (at, body) = invocation
        .response
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
        .ok_or("no response")?;
    Ok((at - started, body))
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
    let settings = fund_account::app::Settings::new(b"bench-code-secret-0123456789abcdef".to_vec(), None, None)?;
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
    // the fees.
    let secret_arn = bench::emulator_secret(&endpoint, "bench-code-secret-0123456789abcdef").await?;
    let vars = [
        ("TABLE_NAME", table.clone()),
        ("CODE_SECRET_ARN", secret_arn),
        ("WITHDRAWAL_FEE_USD", "15.00".to_owned()),
        ("WITHDRAWAL_FEE_CNY", "0.00".to_owned()),
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
