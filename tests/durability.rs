//! Durability under kill -9: the real `local-gateway` binary (built by `cargo build
//! --workspace --bins`, as `infra/scripts/test.sh` does first) takes collections from
//! many connections at once — so the embedded store commits them in groups — and is
//! SIGKILLed mid-load. Restarted over the same data directory, it must hold every
//! collection it answered `201` for, with its amount, and the books must balance (the
//! reconciliation run finds no discrepancy, and each member's balance is the sum of the
//! collections stored for it).
//!
//! What this can catch: an answer sent before the group's COMMIT (the writes were still
//! only in the process). What it cannot: an answer after COMMIT but before the fsync
//! returns, or a missing fsync — a killed process leaves its writes in the OS page cache,
//! which only a power cut or kernel crash loses.
//!
//! Costs about 3 s (a debug build, two gateway starts, ~1.5 s of load).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bench::runtime_api::sibling_binary;
use fund_account::adapters::sqlite::SqliteStore;
use fund_account::clock::{Clock, SystemClock, Timestamp};
use fund_account::ids::ExternalId;
use fund_account::member::MemberId;
use fund_account::money::Amount;
use fund_account::store::{PageRequest, Store};
use serde_json::{json, Value};

const KEY: &str = "durability-internal-key";
const MEMBERS: [&str; 2] = ["durable-a", "durable-b"];
const CONNECTIONS: usize = 32;
/// How long each load runs before its kill, and how many kills.
const KILL_AFTER: Duration = Duration::from_millis(300);
const KILLS: usize = 6;

/// A `local-gateway` process on `data_dir`, on a port it picked, and its base URL.
fn start_gateway(data_dir: &Path) -> (Child, String) {
    let binary = sibling_binary("local-gateway").unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(binary)
        .env("LOCAL_GATEWAY_ADDR", "127.0.0.1:0")
        .env("LOCAL_DATA_DIR", data_dir)
        .env("LOCAL_INTERNAL_KEY", KEY)
        .env("LOCAL_WEB_DIR", data_dir.join("no-web"))
        .env("RUST_LOG", "error")
        .env_remove("LOCAL_STORE")
        .env_remove("LOCAL_GROUP_COMMIT")
        .env_remove("FEE_SCHEDULE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("local-gateway starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("local-gateway said where it listens")
            .expect("stdout line");
        if let Some(rest) = line.strip_prefix("local gateway listening on ") {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    // Keep reading its stdout, so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, base)
}

fn data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "fund-account-durability-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    ));
    std::fs::create_dir_all(&dir).expect("data dir");
    dir
}

fn amount(text: &str) -> Amount {
    Amount::parse_stored(text).expect("amount")
}

/// Each answered collection's id, member and amount, as the gateway acknowledged it.
type Answered = Vec<(String, &'static str, String)>;

/// Posts collections from `CONNECTIONS` tasks; once `kill_after` has passed, the first
/// task to hear a `201` SIGKILLs the gateway at once — the moment a store that answers
/// before its COMMIT would still hold that group's writes only in memory. Keeps the
/// collections answered `201`; a task stops when its request fails (the gateway is gone).
async fn load_then_kill(client: reqwest::Client, base: String, gateway: Child, cycle: usize) -> Answered {
    // Settled tomorrow: the reconciliation after the restart checks the books without
    // settling thousands of collections one by one first.
    let tomorrow = Timestamp::from_unix_millis(SystemClock.now().unix_millis() + 86_400_000).to_rfc3339();
    let answered = Arc::new(Mutex::new(Answered::new()));
    let gateway = Arc::new(Mutex::new(gateway));
    let kill_at = std::time::Instant::now() + KILL_AFTER;
    let mut tasks = Vec::new();
    for task in 0..CONNECTIONS {
        let (client, base, answered, gateway) = (
            client.clone(),
            base.clone(),
            Arc::clone(&answered),
            Arc::clone(&gateway),
        );
        let tomorrow = tomorrow.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0u64.. {
                let member = MEMBERS[task % MEMBERS.len()];
                let id = format!("dur-{cycle}-{task}-{n}");
                // Amounts differ, so that a lost or doubled collection shows in a sum.
                let amount = format!("{}.{:02}", 1 + n % 97, (task as u64 + n) % 100);
                let body = json!({ "collection_id": id, "member_id": member, "currency": "USD", "amount": amount,
                    "available_at": tomorrow });
                let response = client
                    .post(format!("{base}/internal/collections"))
                    .header("x-internal-key", KEY)
                    .json(&body)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 201 => answered.lock().unwrap().push((id, member, amount)),
                    Ok(r) if r.status().is_success() => panic!("a fresh collection answered {}", r.status()),
                    // The kill: the connection drops, or an answer never came.
                    _ => return,
                }
                if std::time::Instant::now() >= kill_at {
                    // SIGKILL, with requests in flight: no shutdown, no flush, no
                    // destructor runs. (A second kill of the same process is harmless.)
                    let _ = gateway.lock().unwrap().kill();
                }
            }
        }));
    }
    let all = async {
        for task in tasks {
            task.await.expect("load task");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("the load ends with the kill");
    gateway.lock().unwrap().wait().expect("killed");
    let answered = answered.lock().unwrap().clone();
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_collection_answered_before_a_kill_9_is_there_after_the_restart() {
    let dir = data_dir();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .expect("client");

    let (gateway, base) = start_gateway(&dir);
    for member in MEMBERS {
        let created = client
            .post(format!("{base}/dev/members"))
            .json(&json!({ "member_id": member, "login_password": "login-Pass-2026", "phone": null }))
            .send()
            .await
            .expect("member");
        assert!(created.status().is_success(), "{member}: {}", created.status());
    }
    let mut answered = load_then_kill(client.clone(), base, gateway, 0).await;
    // Killed again after each restart: recovery itself must lose nothing either.
    for cycle in 1..KILLS {
        let (gateway, base) = start_gateway(&dir);
        answered.extend(load_then_kill(client.clone(), base, gateway, cycle).await);
    }
    assert!(
        answered.len() >= 100,
        "the load hardly ran before the kills: {} answered",
        answered.len()
    );

    // Restarted over the same directory: SQLite recovers from its WAL.
    let (mut gateway, base) = start_gateway(&dir);
    let report: Value = client
        .post(format!("{base}/dev/reconcile"))
        .json(&json!({}))
        .send()
        .await
        .expect("reconcile")
        .json()
        .await
        .expect("report");
    assert_eq!(report["discrepancies"], json!([]), "{report}");
    assert!(
        report["accounts_checked"].as_u64() >= Some(MEMBERS.len() as u64),
        "{report}"
    );
    // The restarted gateway still takes collections.
    let after = client
        .post(format!("{base}/internal/collections"))
        .header("x-internal-key", KEY)
        .json(&json!({ "collection_id": "dur-after", "member_id": MEMBERS[0], "currency": "USD", "amount": "1.00" }))
        .send()
        .await
        .expect("collection after the restart");
    assert_eq!(after.status(), 201);
    gateway.kill().expect("stop");
    gateway.wait().expect("stopped");

    // The store itself, read directly: every answered collection, with its amount.
    let store = SqliteStore::open(&dir.join("fund-account.sqlite3")).expect("store");
    for (id, member, amount_text) in &answered {
        let collection = store
            .collection(&ExternalId::parse(id).expect("id"))
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("collection {id} was answered 201 and is gone after the kill"));
        assert_eq!(collection.member_id.as_str(), *member, "{id}");
        assert_eq!(collection.amount, amount(amount_text), "{id}");
    }
    // The books: each member holds exactly what its stored collections add up to.
    let mut sums: BTreeMap<&str, Amount> = BTreeMap::new();
    for member in MEMBERS {
        let member_id = MemberId::parse(member).expect("member id");
        let mut page = PageRequest {
            limit: 1000,
            before: None,
        };
        let mut sum = Amount::ZERO;
        loop {
            let found = store.member_collections(&member_id, &page).await.expect("collections");
            for collection in &found.items {
                sum = sum.checked_add(collection.amount).expect("sum");
            }
            match (found.more, found.items.last()) {
                (true, Some(last)) => page.before = Some(last.collection_id.as_str().to_owned()),
                _ => break,
            }
        }
        let balance = store.balances(&member_id).await.expect("balances").usd;
        let held = balance.available.checked_add(balance.pending).expect("held");
        assert_eq!(held, sum, "{member}: balance {balance:?} against its collections");
        sums.insert(member, sum);
    }
    let answered_sum = answered
        .iter()
        .try_fold(Amount::ZERO, |sum, (_, _, a)| sum.checked_add(amount(a)))
        .expect("sum");
    let stored_sum = sums
        .values()
        .try_fold(Amount::ZERO, |sum, a| sum.checked_add(*a))
        .expect("sum");
    assert!(
        stored_sum >= answered_sum,
        "stored {stored_sum} < answered {answered_sum}"
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `LOCAL_GROUP_COMMIT` turns grouping off (to measure it) and is on by default.
#[test]
fn group_commit_is_on_unless_local_group_commit_is_0() {
    use local_gateway::{GatewayConfig, GroupCommit};
    let dir = data_dir();
    let config = |value: Option<&str>| {
        let dir = dir.to_string_lossy().into_owned();
        GatewayConfig::from_lookup(move |name| match name {
            "LOCAL_DATA_DIR" => Some(dir.clone()),
            "LOCAL_GROUP_COMMIT" => value.map(str::to_owned),
            _ => None,
        })
    };
    assert_eq!(config(None).expect("default").group_commit, GroupCommit::On);
    assert_eq!(config(Some("1")).expect("on").group_commit, GroupCommit::On);
    assert_eq!(config(Some("0")).expect("off").group_commit, GroupCommit::Off);
    assert!(config(Some("off")).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
