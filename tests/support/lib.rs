//! Test support, by concern:
//!
//! - [`apps`]: apps under test on either store adapter (`for_each_adapter!`), a manual
//!   clock, SMS to a readable outbox, members made as the marketplace would.
//! - [`deployed`]: the deployed shape read from `template.yaml`, its references resolved
//!   to stand-ins on the emulator.
//! - [`emulator`]: moto's server (from the project's `.venv`) and SDK clients pointed at it.
//! - [`gateway`]: the local gateway running in the test process, on either store.
//! - [`faults`]: AWS behaviour the emulator lacks, injected through the store port.
//! - [`fixtures`]: record builders for store-level tests.
//! - [`http`]: the one check of a problem+json answer.
//! - [`metering`]: DynamoDB calls counted and their capacity units totalled, per operation.
//! - [`sim`]: a deterministic simulation of DynamoDB's behaviour behind the store port.
//! - [`tour`]: every operation once, metered (call counts, IAM grants, the cost table).

use std::path::PathBuf;

pub mod apps;
pub mod deployed;
pub mod emulator;
pub mod faults;
pub mod fixtures;
pub mod gateway;
pub mod http;
pub mod metering;
pub mod sim;
pub mod tour;

pub use apps::*;
pub use emulator::*;
pub use faults::*;
pub use gateway::*;
pub use http::*;

/// 2026-01-01T00:00:00Z: where manual clocks start.
pub const T0: i64 = 1_767_225_600_000;

/// The project root (the workspace).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `events/<name>.json`, the API Gateway (or schedule) event `sam local invoke` uses.
pub fn event(name: &str) -> serde_json::Value {
    let path = project_root().join(format!("events/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("events/{name}.json: {e}"))
}

/// The event files' own fixtures: what must be true in the store before an event of
/// `events/` answers as the member journey says (in-process or through a binary).
pub mod journey {
    use fund_account::app::App;
    use fund_account::ids::WithdrawalId;
    use fund_account::ledger::{Bucket, EntryType, Posting, Transaction};
    use fund_account::member::MemberId;
    use fund_account::store::{Expect, Write};
    use fund_account::verification::SmsCode;

    /// The confirm-code event carries a code of its own (`text`): make it the member's
    /// live code, as if it had been sent. `app` must hash codes with the sender's key.
    pub async fn make_the_sent_code(app: &App, member: &MemberId, text: &str) {
        let mut code = app.store.member_state(member).await.unwrap().unwrap().code.unwrap();
        code.code_hash = app.code_hasher().unwrap().hash(member, &SmsCode::parse(text).unwrap());
        let version = code.version;
        code.version += 1;
        app.store
            .commit(vec![Write::PutCode {
                code,
                expect: Expect::Version(version),
            }])
            .await
            .unwrap();
    }

    /// The payout events name a withdrawal id of their own: a second withdrawal like
    /// `like` under that id, written as the service writes one (money to `in_transit`).
    pub async fn withdrawal_under_the_events_id(app: &App, like: &str, id: &str) {
        let like = WithdrawalId::parse(like).expect("a withdrawal id");
        let mut withdrawal = app.store.withdrawal(&like).await.unwrap().unwrap();
        withdrawal.id = WithdrawalId::parse(id).expect("the events' withdrawal id has the shape of one");
        let mut writes = vec![Write::PutWithdrawal {
            withdrawal: withdrawal.clone(),
            expect: Expect::Absent,
        }];
        let transaction = Transaction::new(&withdrawal.member_id, id, app.now()).member(
            Posting::new(&withdrawal.member_id, withdrawal.currency, EntryType::Withdrawal, id)
                .change(Bucket::Available, withdrawal.amount.negated())
                .change(Bucket::InTransit, withdrawal.amount),
        );
        writes.extend(Write::transaction(transaction, app.now()).unwrap());
        app.store.commit(writes).await.unwrap();
    }

    /// The conversion event names a quote id of its own: the quote `like` (the member's,
    /// just made) again under that id, as the service stores one.
    pub async fn quote_under_the_events_id(app: &App, member: &MemberId, like: &str, id: &str) {
        use fund_account::exchange::keys;
        use fund_account::ids::QuoteId;
        let like = QuoteId::parse(like).expect("a quote id");
        let doc = app.store.docs(&[keys::quote(member, &like)]).await.unwrap()[0]
            .clone()
            .expect("the quote exists");
        let mut quote: fund_account::fx::Quote = doc.parse().unwrap();
        quote.id = QuoteId::parse(id).expect("the events' quote id has the shape of one");
        let copy = fund_account::store::Doc::new(keys::quote(member, &quote.id), 1, &quote).unwrap();
        app.store
            .commit(vec![Write::PutDoc {
                doc: copy,
                expect: Expect::Absent,
            }])
            .await
            .unwrap();
    }

    /// Puts the export `like` also under the events' id `id` (still pending), so that the
    /// stream event and the GET in `events/` name one.
    pub async fn export_under_the_events_id(app: &App, member: &MemberId, like: &str, id: &str) {
        use fund_account::ids::ExportId;
        let partition = fund_account::export::partition(member);
        let doc = app
            .store
            .docs(&[fund_account::store::DocKey::new(partition.clone(), like)])
            .await
            .unwrap()[0]
            .clone()
            .expect("the export exists");
        let mut export: fund_account::export::Export = doc.parse().unwrap();
        export.id = ExportId::parse(id).expect("the events' export id has the shape of one");
        let copy = fund_account::store::Doc::new(
            fund_account::store::DocKey::new(partition, export.id.as_str()),
            1,
            &export,
        )
        .unwrap();
        app.store
            .commit(vec![Write::PutDoc {
                doc: copy,
                expect: Expect::Absent,
            }])
            .await
            .unwrap();
    }

    /// The stream event names an outbox item of its own: put it in the store as its
    /// `NewImage` shows it (as the movement's commit would have), unsequenced.
    pub async fn outbox_item_under_the_events_key(app: &App, event: &serde_json::Value) {
        let image = &event["Records"][0]["dynamodb"]["NewImage"];
        let text = |name: &str| image[name]["S"].as_str().expect("a string attribute").to_owned();
        let doc = fund_account::store::Doc {
            key: fund_account::store::DocKey::new(text("PK"), text("SK")),
            version: image["version"]["N"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .expect("a version"),
            expires_at: None,
            body: text("body"),
        };
        app.store
            .commit(vec![Write::PutDoc {
                doc,
                expect: Expect::Absent,
            }])
            .await
            .unwrap();
    }

    /// A statement's response adds up: opening, then each line's changes, gives each
    /// line's balances after, and the last gives the closing.
    pub fn assert_statement_adds_up(statement: &serde_json::Value) {
        use fund_account::money::Amount;
        let amount = |v: &serde_json::Value| Amount::parse_stored(v.as_str().expect("an amount")).expect("an amount");
        let buckets = ["available", "pending", "in_transit"];
        let mut running: Vec<Amount> = buckets.iter().map(|b| amount(&statement["opening"][b])).collect();
        for line in statement["lines"].as_array().expect("lines") {
            for (i, bucket) in buckets.iter().enumerate() {
                running[i] = running[i]
                    .checked_add(amount(&line[format!("{bucket}_change")]))
                    .unwrap();
                assert_eq!(
                    running[i],
                    amount(&line[format!("{bucket}_after")]),
                    "{bucket} after {line}"
                );
            }
        }
        for (i, bucket) in buckets.iter().enumerate() {
            assert_eq!(
                running[i],
                amount(&statement["closing"][bucket]),
                "closing {bucket}: {statement}"
            );
        }
    }

    /// A reference rate as of the app's clock (the binaries run on the system clock, so
    /// the event's own `as_of` is long stale there).
    pub async fn fresh_rate(app: &App, pair: &str, mid: &str) {
        fund_account::exchange::put_rate(
            app,
            fund_account::exchange::RateUpdate {
                pair: fund_account::fx::Pair::parse(pair).unwrap(),
                mid: fund_account::fx::Mid::parse(mid).unwrap(),
                as_of: app.now(),
                confirm_jump: true,
            },
        )
        .await
        .unwrap();
    }
}
