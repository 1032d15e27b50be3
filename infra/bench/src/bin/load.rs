//! Load and per-route latency through the local gateway on loopback, next to a bare
//! hyper "hello" server in the same run. Bounded: each phase runs for a fixed time with a
//! fixed number of connections, then stops by itself.
//!
//! Usage: `load [seconds per phase] [connections]` (defaults 5 and 16). Build `--release`.

// Floats here are timings for display; money never passes through this crate.
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fund_account::clock::{Clock, SystemClock};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use local_gateway::{serve, Gateway, GatewayConfig, GroupCommit, SmsBackend, StoreBackend};
use serde_json::json;

async fn hello_server() -> Result<String, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"hello"))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(format!("http://{addr}"))
}

/// Runs `request` from `connections` tasks for `seconds`; returns requests per second.
async fn throughput<F, Fut>(seconds: u64, connections: usize, request: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let done = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (request, done, counter) = (Arc::clone(&request), Arc::clone(&done), Arc::clone(&counter));
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if request(n).await {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn latency<F, Fut>(name: &str, samples: usize, request: F)
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut timings = Vec::with_capacity(samples);
    for n in 0..samples {
        let started = Instant::now();
        assert!(request(n as u64).await, "{name} failed");
        timings.push(started.elapsed());
    }
    timings.sort();
    let at = |p: f64| timings[((timings.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
    println!("| {name} | {:.2} ms | {:.2} ms | {samples} |", at(0.5), at(0.99));
}

/// Like [`latency`], timing only `request`: `prepare` makes what it needs (untimed).
async fn latency_prepared<P, PFut, T, F, Fut>(name: &str, samples: usize, prepare: P, request: F)
where
    P: Fn(u64) -> PFut,
    PFut: std::future::Future<Output = T>,
    F: Fn(u64, T) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut timings = Vec::with_capacity(samples);
    for n in 0..samples {
        let prepared = prepare(n as u64).await;
        let started = Instant::now();
        assert!(request(n as u64, prepared).await, "{name} failed");
        timings.push(started.elapsed());
    }
    timings.sort();
    let at = |p: f64| timings[((timings.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
    println!("| {name} | {:.2} ms | {:.2} ms | {samples} |", at(0.5), at(0.99));
}

/// Whether a member's POST of `body` to `url` answers `status`.
async fn posts(client: reqwest::Client, url: String, token: String, body: serde_json::Value, status: u16) -> bool {
    client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .is_ok_and(|r| r.status() == status)
}

/// Members for the FX routes: a member holds at most 10 live quotes, so the samples that
/// lock one are spread over `count` members, each active with USD 100,000.
async fn fx_members(
    client: &reqwest::Client,
    base: &str,
    prefix: &str,
    count: usize,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut tokens = Vec::with_capacity(count);
    for i in 0..count {
        let member = format!("{prefix}-{i}");
        client
            .post(format!("{base}/dev/members"))
            .json(&json!({ "member_id": member, "login_password": "login-Pass-2026", "phone": null }))
            .send()
            .await?;
        let login: serde_json::Value = client
            .post(format!("{base}/dev/login"))
            .json(&json!({ "member_id": member, "login_password": "login-Pass-2026" }))
            .send()
            .await?
            .json()
            .await?;
        let token = login["access_token"].as_str().ok_or("no token")?.to_owned();
        client
            .post(format!("{base}/v1/activation"))
            .bearer_auth(&token)
            .json(&json!({ "payment_password": "Vault-Key-2026!" }))
            .send()
            .await?;
        let body = json!({ "collection_id": format!("{member}-funds"), "member_id": member, "currency": "USD", "amount": "100000.00" });
        client
            .post(format!("{base}/internal/collections"))
            .header("x-internal-key", "load-key")
            .json(&body)
            .send()
            .await?;
        tokens.push(token);
    }
    client.post(format!("{base}/dev/reconcile")).send().await?;
    Ok(tokens)
}

/// A local gateway in this process over a fresh data directory.
struct Running {
    gateway: Arc<Gateway>,
    base: String,
    data_dir: std::path::PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops serving (and the gateway's publisher), then removes the data directory.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.served.await;
        drop(self.gateway);
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

async fn start_gateway(name: &str, group_commit: GroupCommit) -> Result<Running, Box<dyn std::error::Error>> {
    let data_dir = std::env::temp_dir().join(format!("fund-account-load-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&data_dir)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = GatewayConfig {
        addr,
        data_dir: data_dir.clone(),
        internal_key: "load-key".to_owned(),
        internal_key_generated: false,
        jwt_secret: b"load-jwt-secret-0123456789abcdef".to_vec(),
        code_secret: b"load-code-secret-0123456789abcdef".to_vec(),
        store: StoreBackend::Embedded,
        sms: SmsBackend::Outbox,
        web_dir: None,
        dev_routes: true,
        group_commit,
    };
    let gateway = Arc::new(Gateway::build(config, Arc::new(SystemClock)).await?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(serve(Arc::clone(&gateway), listener, async {
        let _ = stopped.await;
    }));
    Ok(Running {
        gateway,
        base: format!("http://{addr}"),
        data_dir,
        stop,
        served,
    })
}

/// Collections per second through a fresh gateway (its own data directory, one member)
/// from `connections` connections, and the mean number of requests per SQLite
/// transaction (per fsync) its writer committed.
async fn collections_load(
    client: &reqwest::Client,
    group_commit: GroupCommit,
    seconds: u64,
    connections: usize,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let name = format!("{group_commit:?}-{connections}").to_lowercase();
    let running = start_gateway(&name, group_commit).await?;
    let base = running.base.clone();
    let created = client
        .post(format!("{base}/dev/members"))
        .json(&json!({ "member_id": "load-collector", "login_password": "login-Pass-2026", "phone": null }))
        .send()
        .await?
        .status();
    assert!(created.is_success(), "member: {created}");
    let store = running.gateway.embedded.clone().ok_or("the embedded store")?;
    let before = store.writer_counts();
    let c = client.clone();
    let rps = throughput(seconds, connections, move |n| {
        let (c, b) = (c.clone(), base.clone());
        async move {
            let body = json!({ "collection_id": format!("load-{n}"), "member_id": "load-collector", "currency": "USD", "amount": "10.00" });
            c.post(format!("{b}/internal/collections")).header("x-internal-key", "load-key").json(&body).send().await.is_ok_and(|r| r.status() == 201)
        }
    })
    .await;
    let after = store.writer_counts();
    let (transactions, requests) = (after.0 - before.0, after.1 - before.1);
    drop(store);
    running.stop().await;
    Ok((rps, requests as f64 / transactions.max(1) as f64))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let connections: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(16);

    let main = start_gateway("main", GroupCommit::On).await?;
    let base = main.base.clone();
    let hello = hello_server().await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build()?;

    // A member with money, and a token.
    client
        .post(format!("{base}/dev/members"))
        .json(&json!({ "member_id": "load-seller", "login_password": "login-Pass-2026", "phone": null }))
        .send()
        .await?;
    let login: serde_json::Value = client
        .post(format!("{base}/dev/login"))
        .json(&json!({ "member_id": "load-seller", "login_password": "login-Pass-2026" }))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"].as_str().ok_or("no token")?.to_owned();
    client
        .post(format!("{base}/v1/activation"))
        .bearer_auth(&token)
        .json(&json!({ "payment_password": "Vault-Key-2026!" }))
        .send()
        .await?;

    println!("| route (through the local gateway, embedded store) | p50 | p99 | samples |");
    println!("|---|---|---|---|");
    let (c, b, t) = (client.clone(), base.clone(), token.clone());
    latency("GET /v1/account", 300, |_| {
        let (c, b, t) = (c.clone(), b.clone(), t.clone());
        async move {
            c.get(format!("{b}/v1/account"))
                .bearer_auth(t)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    })
    .await;
    latency("POST /internal/collections", 300, |n| {
        let (c, b) = (c.clone(), b.clone());
        async move {
            let body = json!({ "collection_id": format!("lat-{n}"), "member_id": "load-seller", "currency": "CNY", "amount": "100.00" });
            c.post(format!("{b}/internal/collections")).header("x-internal-key", "load-key").json(&body).send().await.is_ok_and(|r| r.status() == 201)
        }
    })
    .await;
    let settled = client.post(format!("{base}/dev/reconcile")).send().await?.status();
    assert_eq!(settled, 200);
    latency("GET /v1/account/transactions?limit=20", 300, |_| {
        let (c, b, t) = (c.clone(), b.clone(), t.clone());
        async move {
            c.get(format!("{b}/v1/account/transactions?limit=20"))
                .bearer_auth(t)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    })
    .await;
    latency("POST /v1/withdrawals (argon2id verify inside)", 60, |n| {
        let (c, b, t) = (c.clone(), b.clone(), t.clone());
        async move {
            let body = json!({ "currency": "CNY", "amount": "1.00", "payment_password": "Vault-Key-2026!",
                "bank_account": { "holder_name": "Load", "account_number": "6222020200112233", "bank_name": "ICBC" } });
            c.post(format!("{b}/v1/withdrawals"))
                .bearer_auth(t)
                .header("idempotency-key", format!("lat-{n}"))
                .json(&body)
                .send()
                .await
                .is_ok_and(|r| r.status() == 201)
        }
    })
    .await;
    latency("GET /v1/withdrawals?limit=20", 300, |_| {
        let (c, b, t) = (c.clone(), b.clone(), t.clone());
        async move {
            c.get(format!("{b}/v1/withdrawals?limit=20"))
                .bearer_auth(t)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    })
    .await;

    // Across currencies: a fresh reference rate, members with dollars.
    let as_of = fund_account::clock::SystemClock.now().to_rfc3339();
    let rate = client
        .put(format!("{base}/internal/fx-rates/USD-CNY"))
        .header("x-internal-key", "load-key")
        .json(&json!({ "mid": "7.2", "as_of": as_of }))
        .send()
        .await?
        .status();
    assert_eq!(rate, 200);
    let fx = Arc::new(fx_members(&client, &base, "previewing", 30).await?);
    let f = Arc::clone(&fx);
    latency("POST /v1/withdrawals/preview (USD → USD)", 300, |n| {
        let body = json!({ "currency": "USD", "amount": "100.00" });
        posts(
            c.clone(),
            format!("{b}/v1/withdrawals/preview"),
            f[n as usize % f.len()].clone(),
            body,
            200,
        )
    })
    .await;
    // Each locks a quote: ten per member, the most one may hold.
    latency("POST /v1/withdrawals/preview (USD → CNY, locks a quote)", 300, |n| {
        let body = json!({ "currency": "USD", "amount": "100.00", "payout_currency": "CNY" });
        posts(
            c.clone(),
            format!("{b}/v1/withdrawals/preview"),
            f[n as usize / 10].clone(),
            body,
            200,
        )
    })
    .await;
    // Those quotes lapse only in 30 minutes: fresh members quote, and one converts.
    let quoting = Arc::new(fx_members(&client, &base, "quoting", 30).await?);
    let q = Arc::clone(&quoting);
    latency("POST /v1/fx/quotes", 300, |n| {
        let body = json!({ "sell_currency": "USD", "buy_currency": "CNY", "sell_amount": "10.00" });
        posts(
            c.clone(),
            format!("{b}/v1/fx/quotes"),
            q[n as usize / 10].clone(),
            body,
            201,
        )
    })
    .await;
    let converting = Arc::new(fx_members(&client, &base, "converting", 1).await?);
    let g = Arc::clone(&converting);
    latency_prepared(
        "POST /v1/conversions",
        300,
        |_| {
            let (c, b, t) = (c.clone(), b.clone(), g[0].clone());
            async move {
                let body = json!({ "sell_currency": "USD", "buy_currency": "CNY", "sell_amount": "10.00" });
                let response = c
                    .post(format!("{b}/v1/fx/quotes"))
                    .bearer_auth(&t)
                    .json(&body)
                    .send()
                    .await
                    .ok()?;
                let quote: serde_json::Value = response.json().await.ok()?;
                quote["id"].as_str().map(str::to_owned)
            }
        },
        |n, id| {
            let (c, b, t) = (c.clone(), b.clone(), g[0].clone());
            async move {
                // No quote to convert with: the sample fails.
                let Some(id) = id else { return false };
                c.post(format!("{b}/v1/conversions"))
                    .bearer_auth(t)
                    .header("idempotency-key", format!("cv-{n}"))
                    .json(&json!({ "quote_id": id }))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 201)
            }
        },
    )
    .await;

    println!();
    println!("| load ({connections} connections, {seconds} s each) | requests/s | vs bare hyper hello |");
    println!("|---|---|---|");
    let c2 = client.clone();
    let hello_rps = throughput(seconds, connections, move |_| {
        let (c, h) = (c2.clone(), hello.clone());
        async move { c.get(&h).send().await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    println!("| bare hyper \"hello\" | {hello_rps:.0} | 1.00× |");
    let (c3, b3, t3) = (client.clone(), base.clone(), token.clone());
    let reads = throughput(seconds, connections, move |_| {
        let (c, b, t) = (c3.clone(), b3.clone(), t3.clone());
        async move {
            c.get(format!("{b}/v1/account"))
                .bearer_auth(t)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    })
    .await;
    println!("| GET /v1/account | {reads:.0} | {:.3}× |", reads / hello_rps);
    let (c4, b4) = (client.clone(), base.clone());
    let collections = throughput(seconds, connections, move |n| {
        let (c, b) = (c4.clone(), b4.clone());
        async move {
            let body = json!({ "collection_id": format!("load-{n}"), "member_id": "load-seller", "currency": "USD", "amount": "10.00" });
            c.post(format!("{b}/internal/collections")).header("x-internal-key", "load-key").json(&body).send().await.is_ok_and(|r| r.status() == 201)
        }
    })
    .await;
    println!(
        "| POST /internal/collections | {collections:.0} | {:.3}× |",
        collections / hello_rps
    );

    // Group commit on and off, each on a fresh gateway and data directory, at the run's
    // connection count and at 64.
    println!();
    println!("| POST /internal/collections ({seconds} s each, fresh gateway) | connections | collections/s | vs bare hyper hello | requests per fsync |");
    println!("|---|---|---|---|---|");
    for connections in [connections, 64] {
        for (label, mode) in [
            ("group commit (default)", GroupCommit::On),
            ("`LOCAL_GROUP_COMMIT=0`", GroupCommit::Off),
        ] {
            let (rps, per_fsync) = collections_load(&client, mode, seconds, connections).await?;
            println!(
                "| {label} | {connections} | {rps:.0} | {:.3}× | {per_fsync:.1} |",
                rps / hello_rps
            );
        }
    }

    let report: serde_json::Value = client
        .post(format!("{base}/dev/reconcile"))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "\nreconciliation after the load: {} discrepancies, {} collections settled",
        report["discrepancies"].as_array().map_or(0, Vec::len),
        report["settled"]["count"]
    );
    main.stop().await;
    Ok(())
}
