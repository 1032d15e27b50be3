//! Cold start and CPU per request, measured: starts a function binary against a minimal
//! Lambda Runtime API served here (`bench::runtime_api`), hands it API Gateway events and
//! times, per fresh process, exec → its first `GET /next` (init) and exec → its first
//! answer. `RUNS` processes per binary (default 21), the medians, next to two references
//! of the same profile: a hello-world `lambda_http` binary and one that also builds
//! `aws-config` and the DynamoDB and SNS clients in `main` (`plain-sdk-lambda`).
//!
//! Then, per function, one more process answers `WARM` warm requests (default 30) after
//! its first; its CPU time (every thread, `/proc/<pid>/task/*/schedstat`) over those is
//! the CPU per request the memory model takes (`bench::memory`), and the wall time less
//! that CPU, its I/O wait.
//!
//! Usage: `coldstart BIN_DIR EVENTS_DIR [function ...]`, with `MOTO_ENDPOINT` pointing at
//! the emulator (the first answers make real calls). With `TLS_ENDPOINT` (an HTTPS proxy
//! in front of it) and `TLS_CA_FILE` (the CA it is signed by, handed to the functions as
//! `SSL_CERT_FILE`), the functions' first answers are also measured through TLS.

// Floats here are timings for display; money never passes through this crate.
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bench::memory::{self, Profile};
use bench::runtime_api::{lambda_environment, Answer, Invocation, Sandbox, Waited};

const PAYMENT_PASSWORD: &str = "Vault-Key-2026!";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// What every process is started with: the Lambda variables, the emulator (or the TLS
/// proxy) as the endpoint, and the functions' settings.
#[derive(Clone)]
struct Launch {
    endpoint: String,
    ca_file: Option<String>,
    vars: Vec<(&'static str, String)>,
}

impl Launch {
    fn invocation(&self, binary: &Path, event: &str) -> Invocation {
        let mut env = lambda_environment("bench", 256, "us-east-1");
        env.extend(
            [
                ("AWS_ACCESS_KEY_ID", "bench"),
                ("AWS_SECRET_ACCESS_KEY", "bench"),
                ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
                ("RUST_LOG", "warn"),
            ]
            .map(|(name, value)| (name.to_owned(), value.to_owned())),
        );
        if let Some(ca) = &self.ca_file {
            env.push(("SSL_CERT_FILE".to_owned(), ca.clone()));
        }
        env.extend(
            self.vars
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone())),
        );
        Invocation {
            binary: binary.to_owned(),
            event: event.to_owned(),
            env,
            timeout: Duration::from_secs(30),
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:bench".to_owned(),
        }
    }
}

/// A short form of an answer: the HTTP status, or the start of the body.
fn summary(answer: &Answer) -> String {
    match answer {
        Answer::Response(body) => serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("statusCode").cloned())
            .map_or_else(
                || format!("ok: {}", body.chars().take(40).collect::<String>()),
                |s| format!("HTTP {s}"),
            ),
        Answer::Error(body) => format!("error: {}", body.chars().take(60).collect::<String>()),
        Answer::InitError(body) => format!("init error: {}", body.chars().take(60).collect::<String>()),
        Answer::Exited(code) => format!("exited ({code:?})"),
        Answer::TimedOut => "timed out".to_owned(),
    }
}

/// One fresh process: (init, first answer, the answer).
async fn cold_start(launch: &Launch, binary: &Path, event: &str) -> Result<(Duration, Duration, String), String> {
    let mut sandbox = Sandbox::start(&launch.invocation(binary, event)).await?;
    let waited = sandbox.wait_for(1).await;
    let init = sandbox.init();
    let answer = sandbox.answer(0);
    let (_, stderr) = sandbox.finish().await;
    match (init, answer) {
        (Some(init), Some((at, answer))) => Ok((init, at, summary(&answer))),
        _ => Err(format!("{}: {waited:?}\n{stderr}", binary.display())),
    }
}

/// Medians over `runs` fresh processes: (init, first answer, the last answer).
async fn cold_starts(
    launch: &Launch,
    binary: &Path,
    runs: usize,
    event: impl Fn(usize) -> String,
) -> Result<(Duration, Duration, String), String> {
    let (mut inits, mut firsts, mut last) = (Vec::new(), Vec::new(), String::new());
    for run in 0..runs {
        let (init, first, answer) = cold_start(launch, binary, &event(run)).await?;
        inits.push(init);
        firsts.push(first);
        last = answer;
    }
    Ok((median(inits), median(firsts), last))
}

/// CPU and wall time per warm request: one process, its first answer, then `warm` more.
async fn per_request(
    launch: &Launch,
    binary: &Path,
    first: &str,
    warm: Vec<String>,
) -> Result<(Duration, Duration, String), String> {
    let count = warm.len();
    let mut sandbox = Sandbox::start(&launch.invocation(binary, first)).await?;
    if sandbox.wait_for(1).await != Waited::Answered {
        let (_, stderr) = sandbox.finish().await;
        return Err(format!("{}: no first answer\n{stderr}", binary.display()));
    }
    // Let the first request's leftovers (connection pool, logging) settle.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let pid = sandbox.pid().ok_or("the process is gone")?;
    let cpu_before = bench::runtime_api::cpu_time(pid)?;
    let started = std::time::Instant::now();
    sandbox.release(warm);
    let waited = sandbox.wait_for(1 + count).await;
    let wall = started.elapsed();
    let cpu = bench::runtime_api::cpu_time(pid)?.saturating_sub(cpu_before);
    let last = sandbox.answer(count).map(|(_, a)| summary(&a));
    let (_, stderr) = sandbox.finish().await;
    let last = last.ok_or_else(|| format!("{}: {waited:?}\n{stderr}", binary.display()))?;
    let n = u32::try_from(count.max(1)).unwrap_or(1);
    Ok((cpu / n, wall / n, last))
}

/// `event` for one request of its own: a fresh idempotency key, and for `activate` a
/// member of its own (each is activated once; the event's `seller-001` already is).
fn variant(function: &str, event: &str, tag: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(event) else {
        return event.to_owned();
    };
    if let Some(key) = value.pointer_mut("/headers/idempotency-key") {
        *key = serde_json::Value::String(format!("bench-{tag}"));
    }
    let text = value.to_string();
    if function == "activate" {
        text.replace("seller-001", &format!("seller-{tag}"))
    } else {
        text
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bin_dir, events_dir, functions @ ..] = args.as_slice() else {
        return Err("usage: coldstart BIN_DIR EVENTS_DIR [function ...] (MOTO_ENDPOINT must be set)".into());
    };
    let endpoint =
        std::env::var("MOTO_ENDPOINT").map_err(|_| "set MOTO_ENDPOINT (bash infra/scripts/bench.sh does)")?;
    let runs = setting("RUNS", 21);
    let warm = setting("WARM", 30);
    let functions: Vec<String> = if functions.is_empty() {
        vec!["get-account".to_owned()]
    } else {
        functions.to_vec()
    };

    // A table with the events' member, active and funded, so first answers are real work:
    // a withdrawal verifies the payment password and commits.
    let store = bench::emulator_store(&endpoint, "bench").await?;
    let table = store.table().to_owned();
    let login_phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$pQ2IHaVxZuL34y5Ob0WHXRCzJ4CSLBNtsWw9xmF1ifQ";
    let settings = fund_account::app::Settings::new(b"bench-code-secret-0123456789abcdef".to_vec())?;
    let app = fund_account::app::App::new(
        Arc::new(store),
        Arc::new(fund_account::adapters::sqlite::SqliteStore::in_memory()?.outbox()),
        Arc::new(fund_account::clock::SystemClock),
        settings,
    );
    let sync = |id: String| {
        let app = &app;
        async move {
            let member = fund_account::member::MemberId::parse(&id)?;
            fund_account::activation::sync_member(
                app,
                &member,
                fund_account::member::PhcHash::new(login_phc.to_owned()),
                None,
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok::<_, Box<dyn std::error::Error>>(member)
        }
    };
    let member = sync("seller-001".to_owned()).await?;
    fund_account::activation::set_payment_password(
        &app,
        &member,
        fund_account::password::PaymentPassword::new(PAYMENT_PASSWORD.to_owned()),
    )
    .await
    .map_err(|e| e.to_string())?;
    fund_account::collection::collect(
        &app,
        fund_account::collection::NewCollection {
            collection_id: fund_account::ids::ExternalId::parse("bench-funds").ok_or("an external id")?,
            member_id: member.clone(),
            currency: fund_account::money::Currency::Usd,
            amount: fund_account::money::Amount::parse_request("10000000")?,
            available_at: None,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    fund_account::collection::settle_due(&app, app.now())
        .await
        .map_err(|e| e.to_string())?;
    if functions.iter().any(|f| f == "activate") {
        for i in 0..warm {
            sync(format!("seller-warm-{i}")).await?;
        }
    }

    // What template.yaml gives the functions (each reads only its own).
    let secret_arn = bench::emulator_secret(&endpoint, "bench-code-secret-0123456789abcdef").await?;
    let launch = Launch {
        endpoint: endpoint.clone(),
        ca_file: None,
        vars: vec![
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
            ("EXPORT_BUCKET", "bench-exports".to_owned()),
            ("EVENT_BUS_NAME", "bench-bus".to_owned()),
        ],
    };
    let tls = match (std::env::var("TLS_ENDPOINT"), std::env::var("TLS_CA_FILE")) {
        (Ok(endpoint), Ok(ca)) => Some(Launch {
            endpoint,
            ca_file: Some(ca),
            ..launch.clone()
        }),
        _ => None,
    };

    let bin_dir = PathBuf::from(bin_dir);
    let read_event = |name: &str| std::fs::read_to_string(Path::new(events_dir).join(format!("{name}.json")));
    let hello_event = read_event("get-account")?;
    let (hello_init, hello_first, _) =
        cold_starts(&launch, &bin_dir.join("hello-lambda"), runs, |_| hello_event.clone()).await?;
    let (sdk_init, sdk_first, _) = cold_starts(&launch, &bin_dir.join("plain-sdk-lambda"), runs, |_| {
        hello_event.clone()
    })
    .await?;

    println!(
        "| binary | init: exec → first `GET /next` (median of {runs}) | × hello | × plain SDK | first answer (median of {runs}) | × hello | first answer |"
    );
    println!("|---|---|---|---|---|---|---|");
    let row = |name: &str, init: Duration, first: Duration, answer: &str| {
        println!(
            "| {name} | {:.2} ms | {:.2}× | {:.2}× | {:.2} ms | {:.2}× | {answer} |",
            ms(init),
            ms(init) / ms(hello_init),
            ms(init) / ms(sdk_init),
            ms(first),
            ms(first) / ms(hello_first),
        );
    };
    row("hello-lambda (reference)", hello_init, hello_first, "hello");
    row(
        "plain-sdk-lambda (reference: aws-config + DynamoDB + SNS clients)",
        sdk_init,
        sdk_first,
        "hello",
    );
    let mut events = BTreeMap::new();
    for function in &functions {
        let event = read_event(function)?;
        let binary = bin_dir.join(function);
        let (init, first, answer) = cold_starts(&launch, &binary, runs, |run| {
            variant(function, &event, &format!("cold-{run}"))
        })
        .await?;
        row(function, init, first, &answer);
        events.insert(function.clone(), event);
    }

    if let Some(tls) = &tls {
        println!();
        println!(
            "| function | first answer over plain HTTP (median of {runs}) | first answer over TLS (median of {runs}) | TLS adds | answer |"
        );
        println!("|---|---|---|---|---|");
        for (function, event) in &events {
            let binary = bin_dir.join(function);
            let (_, plain, _) = cold_starts(&launch, &binary, runs, |run| {
                variant(function, event, &format!("plain-{run}"))
            })
            .await?;
            let (_, over_tls, answer) = cold_starts(tls, &binary, runs, |run| {
                variant(function, event, &format!("tls-{run}"))
            })
            .await?;
            println!(
                "| {function} | {:.2} ms | {:.2} ms | {:+.2} ms | {answer} |",
                ms(plain),
                ms(over_tls),
                ms(over_tls) - ms(plain)
            );
        }
    }

    println!();
    println!(
        "| function | CPU per warm request (mean of {warm}) | wall per request | I/O wait (wall − CPU) | answer | model: duration at 256 MB | chosen MB | duration there | cost there vs 256 MB | template MB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut profiles = Vec::new();
    for (function, event) in &events {
        let binary = bin_dir.join(function);
        let warm_events = (0..warm)
            .map(|i| variant(function, event, &format!("warm-{i}")))
            .collect();
        let (cpu, wall, answer) =
            per_request(&launch, &binary, &variant(function, event, "warm-first"), warm_events).await?;
        let profile = Profile {
            cpu_ms: ms(cpu),
            io_ms: (ms(wall) - ms(cpu)).max(0.0),
        };
        let chosen = memory::choose(profile);
        let deployed = fund_account::function_config::Function::all()
            .find(|f| f.binary() == function)
            .map_or_else(|| "?".to_owned(), |f| f.memory_mb().to_string());
        println!(
            "| {function} | {:.2} ms | {:.2} ms | {:.2} ms | {answer} | {:.1} ms | {chosen} | {:.1} ms | {:+.1} % | {deployed} |",
            profile.cpu_ms,
            ms(wall),
            profile.io_ms,
            profile.duration_ms(memory::BASELINE_MB),
            profile.duration_ms(chosen),
            (profile.cost(chosen) / profile.cost(memory::BASELINE_MB) - 1.0) * 100.0,
        );
        profiles.push((function.clone(), profile));
    }

    println!();
    print!("| function: modelled duration / cost per million requests |");
    for size in memory::SIZES {
        print!(" {size} MB |");
    }
    println!();
    println!("|---|{}", "---|".repeat(memory::SIZES.len()));
    for (function, profile) in &profiles {
        print!("| {function} |");
        for &size in memory::SIZES {
            print!(
                " {:.1} ms / ${:.3} |",
                profile.duration_ms(size),
                profile.cost(size) * 1e6
            );
        }
        println!();
    }
    Ok(())
}
