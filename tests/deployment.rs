//! The deployment artefacts agree with the code: every route has its function in
//! `template.yaml`, its path in `openapi.yaml` and an event in `events/`, and every file
//! in `events/` runs through its handler in-process (what `sam local invoke` would do):
//! API Gateway events through the HTTP router, scheduled ones through the
//! reconciliation's handler — each with the status and answer it must give.

use std::collections::BTreeSet;

use fund_account::clock::Timestamp;
use fund_account::member::MemberId;
use fund_account::routes::{self, Route};
use fund_account_tests::journey::{
    assert_statement_adds_up, export_under_the_events_id, make_the_sent_code, outbox_item_under_the_events_key,
    quote_under_the_events_id, withdrawal_under_the_events_id,
};
use fund_account_tests::{event, for_each_adapter, project_root, test_app, Adapter, TestApp};
use serde_json::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(project_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn function_block<'a>(template: &'a str, function: &str) -> &'a str {
    let marker = format!("Binary: {function}\n");
    let start = template
        .find(&marker)
        .unwrap_or_else(|| panic!("template.yaml builds no binary {function}"));
    let rest = &template[start..];
    let end = rest[marker.len()..]
        .find("Binary: ")
        .map_or(rest.len(), |i| i + marker.len());
    &rest[..end]
}

#[test]
fn every_route_is_deployed_documented_and_has_an_event() {
    let template = read("template.yaml");
    let openapi = read("openapi.yaml");
    for route in Route::ALL {
        let block = function_block(&template, route.function());
        assert!(
            block.contains(&format!("Path: {}\n", route.path())),
            "{route:?} path in template.yaml"
        );
        assert!(
            block.contains(&format!("Method: {}\n", route.method())),
            "{route:?} method in template.yaml"
        );
        assert!(
            openapi.contains(&format!("\n  {}:\n", route.path())),
            "{route:?} in openapi.yaml"
        );
        let event = event(route.function());
        assert_eq!(event["routeKey"], format!("{} {}", route.method(), route.path()));
        assert!(
            std::path::Path::new(&project_root().join(format!("functions/{}/Cargo.toml", route.function()))).exists(),
            "{route:?} has its function crate"
        );
        // Its main hands the runtime its own deployment (and so links only its handler).
        let main = read(&format!("functions/{}/src/main.rs", route.function()));
        let own = format!(
            "fund_account::lambda::run(fund_account::lambda::aws::{})",
            route.function().to_uppercase().replace('-', "_")
        );
        assert!(main.contains(&own), "{route:?}: main.rs runs {own}");
    }
    assert!(
        !template.contains("/dev/"),
        "local-only routes never reach template.yaml"
    );
    let reconcile = function_block(&template, "reconcile");
    for expected in [
        "Type: Schedule",
        r#"Input: '{"mode":"settle"}'"#,
        r#"Input: '{"mode":"full"}'"#,
        "ALERT_TOPIC_ARN",
    ] {
        assert!(reconcile.contains(expected), "the reconcile function has {expected}");
    }
}

/// Every file in `events/`, by name without `.json`.
fn event_files() -> BTreeSet<String> {
    let dir = project_root().join("events");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| path.file_stem().expect("a name").to_string_lossy().into_owned())
        .collect()
}

/// The event files run in the order of a member's journey, each expected to answer as
/// the journey says; the files run are recorded so that none is left out.
struct Journey {
    t: TestApp,
    ran: BTreeSet<String>,
}

impl Journey {
    fn start(&mut self, name: &str) -> Value {
        assert!(self.ran.insert(name.to_owned()), "events/{name}.json runs once");
        event(name)
    }

    /// Runs an API Gateway event as API Gateway and its Lambda would: the HTTP router
    /// picks the route from the method and path, which must be the function named like
    /// the file, with the event's path parameters. Checks the status; returns the body.
    async fn http(&mut self, name: &str, status: u16) -> Value {
        let event = self.start(name);
        let request = lambda_http::request::from_str(&event.to_string())
            .unwrap_or_else(|e| panic!("events/{name}.json is not an API Gateway event: {e}"));
        let (route, params) = Route::resolve(request.method(), request.uri().path())
            .unwrap_or_else(|e| panic!("events/{name}.json reaches no route: {e:?}"));
        assert_eq!(route.function(), name, "the route of events/{name}.json");
        assert_eq!(event["routeKey"], format!("{} {}", route.method(), route.path()));
        let expected_params: Vec<(String, String)> = event["pathParameters"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(params, expected_params, "path parameters of events/{name}.json");

        let response = routes::handle(route, &self.t.app, request).await;
        assert_eq!(
            response.headers()["x-request-id"].to_str().unwrap(),
            event["requestContext"]["requestId"].as_str().unwrap(),
            "the API Gateway request id is echoed"
        );
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(response.status().as_u16(), status, "events/{name}.json: {body}");
        body
    }

    /// Runs a DynamoDB stream event as the `export-statement` function does; returns its
    /// partial batch response.
    async fn stream(&mut self, name: &str) -> Value {
        let event = self.start(name);
        fund_account::lambda::stream::export_batch(&self.t.app, event)
            .await
            .unwrap()
    }

    /// Runs a scheduled event as the `reconcile` function does; returns its report.
    async fn scheduled(&mut self, name: &str) -> Value {
        let event = self.start(name);
        let options = fund_account::lambda::reconciliation_options(&event);
        let report = fund_account::reconciliation::run(&self.t.app, options)
            .await
            .unwrap_or_else(|e| panic!("events/{name}.json: the run failed: {e:?}"));
        let report = report.to_json();
        for field in ["run_id", "started_at", "finished_at", "accounts_checked", "settled"] {
            assert!(report.get(field).is_some(), "{name}: the report has {field}");
        }
        assert_eq!(report["discrepancies"], serde_json::json!([]), "{name}: {report}");
        report
    }
}

async fn every_event_file_runs_through_its_handler_in_journey_order(adapter: Adapter) {
    let mut j = Journey {
        t: test_app(adapter).await,
        ran: BTreeSet::new(),
    };
    let bus = fund_account_tests::sqlite_store().event_bus();
    let member = MemberId::parse("seller-001").unwrap();

    // Onboarding: the marketplace syncs the member, who activates with a code.
    let body = j.http("member-sync", 200).await;
    assert_eq!(
        (body["member_id"].as_str(), body["status"].as_str()),
        (Some("seller-001"), Some("inactive"))
    );
    let body = j.http("get-account", 200).await;
    assert_eq!(body["status"], "inactive", "{body}");
    let body = j.http("activate", 202).await;
    assert_eq!(body["status"], "pending_verification", "{body}");
    j.http("send-code", 202).await;
    let code = serde_json::from_str::<Value>(event("confirm-code")["body"].as_str().unwrap()).unwrap();
    make_the_sent_code(&j.t.app, &member, code["code"].as_str().unwrap()).await;
    let body = j.http("confirm-code", 200).await;
    assert_eq!(body["status"], "active", "{body}");

    // Money in: a collection, partly refunded while pending, settled by the schedule.
    let body = j.http("create-collection", 201).await;
    assert_eq!(
        (body["status"].as_str(), body["amount"].as_str()),
        (Some("pending"), Some("1500.00"))
    );
    let body = j.http("create-refund", 201).await;
    assert_eq!(
        (body["taken_from"].as_str(), body["amount"].as_str()),
        (Some("pending"), Some("200.00"))
    );
    let fires_at = event("reconcile")["time"].as_str().map(Timestamp::parse_rfc3339);
    j.t.clock.set(fires_at.flatten().expect("the scheduled event's time"));
    let report = j.scheduled("reconcile-settle").await;
    assert_eq!(report["settled"]["count"], 1, "{report}");
    assert_eq!(report["settled"]["amounts"]["USD"], "1300.00", "{report}");
    assert_eq!(report["accounts_checked"], 0, "settle only: {report}");
    let report = j.scheduled("reconcile").await;
    assert_eq!(
        (report["settled"]["count"].as_u64(), report["accounts_checked"].as_u64()),
        (Some(0), Some(1))
    );

    // Money out: a withdrawal, and the payout processor's reports on the one its events name.
    let created = j.http("withdraw", 201).await;
    assert_eq!(
        (created["status"].as_str(), created["amount"].as_str()),
        (Some("processing"), Some("250.00"))
    );
    let named = event("get-withdrawal")["pathParameters"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    withdrawal_under_the_events_id(&j.t.app, created["id"].as_str().unwrap(), &named).await;
    let body = j.http("get-withdrawal", 200).await;
    assert_eq!(
        (body["id"].as_str(), body["status"].as_str()),
        (Some(named.as_str()), Some("processing"))
    );
    let body = j.http("list-withdrawals", 200).await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2), "{body}");
    // Collected, refunded, settled (two buckets), two withdrawals (two buckets each).
    let body = j.http("list-transactions", 200).await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(8), "{body}");
    let body = j.http("withdrawal-paid", 200).await;
    assert_eq!(
        (body["id"].as_str(), body["status"].as_str()),
        (Some(named.as_str()), Some("paid"))
    );
    let body = j.http("withdrawal-returned", 409).await;
    assert_eq!(body["code"], "withdrawal_already_settled", "{body}");

    // Across currencies: the treasury's rate, the fees, a preview to a yuan bank, and a
    // conversion under a quote.
    let body = j.http("put-fx-rate", 200).await;
    assert_eq!(
        (body["pair"].as_str(), body["mid"].as_str()),
        (Some("USD-CNY"), Some("7.18450000"))
    );
    let body = j.http("get-fees", 200).await;
    assert_eq!(body["withdrawal"].as_array().map(Vec::len), Some(3), "{body}");
    let body = j.http("preview-withdrawal", 200).await;
    // 250 − 8.00 (0.30 % raised to the minimum) = 242 × 7.148577 = 1729.95.
    assert_eq!(
        (body["fee"].as_str(), body["payout_amount"].as_str()),
        (Some("8.00"), Some("1729.95")),
        "{body}"
    );
    let quote = j.http("create-quote", 201).await;
    assert_eq!(quote["buy_amount"], "714.85", "{quote}");
    let named = serde_json::from_str::<Value>(event("create-conversion")["body"].as_str().unwrap()).unwrap();
    quote_under_the_events_id(
        &j.t.app,
        &member,
        quote["id"].as_str().unwrap(),
        named["quote_id"].as_str().unwrap(),
    )
    .await;
    let body = j.http("create-conversion", 201).await;
    assert_eq!(
        (body["sell_amount"].as_str(), body["buy_amount"].as_str()),
        (Some("100.00"), Some("714.85"))
    );
    let body = j.http("list-conversions", 200).await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1), "{body}");
    let body = j.http("platform-balances", 200).await;
    assert_eq!(body["accounts"].as_array().map(Vec::len), Some(6), "{body}");

    // The month's statement: January's collection less its refund opens March pending;
    // every line of March adds up to the balance now.
    let statement = j.http("get-statement", 200).await;
    assert_eq!(statement["opening"]["pending"], "1300.00", "{statement}");
    let usd = j.t.balances(&member).await.usd;
    assert_eq!(
        statement["closing"],
        serde_json::json!({
            "available": usd.available.to_string(),
            "pending": usd.pending.to_string(),
            "in_transit": usd.in_transit.to_string(),
        }),
        "{statement}"
    );
    assert_statement_adds_up(&statement);
    let export = j.http("create-export", 202).await;
    assert_eq!(export["status"], "pending", "{export}");
    let named = event("get-export")["pathParameters"]["id"].as_str().unwrap().to_owned();
    export_under_the_events_id(&j.t.app, &member, export["id"].as_str().unwrap(), &named).await;
    let batch = j.stream("export-statement").await;
    assert_eq!(batch, serde_json::json!({ "batchItemFailures": [] }));
    let export = j.http("get-export", 200).await;
    assert_eq!(
        (export["status"].as_str(), export["lines"].as_u64()),
        (Some("ready"), statement["lines"].as_array().map(|l| l.len() as u64)),
        "{export}"
    );
    assert!(
        export["download_url"].as_str().is_some_and(|u| !u.is_empty()),
        "{export}"
    );

    // The full run proves the books after all of it.
    let report = j.scheduled("reconcile-full").await;
    assert_eq!(report["accounts_checked"], 1, "{report}");
    // The migration to double-entry finds nothing to book: every entry here has a side.
    let report = j.scheduled("reconcile-book-openings").await;
    assert_eq!(
        (report["openings_booked"].as_u64(), report["settled"]["count"].as_u64()),
        (Some(0), Some(0)),
        "{report}"
    );
    let usd = j.t.balances(&member).await.usd;
    assert_eq!(
        (
            usd.available.to_string(),
            usd.pending.to_string(),
            usd.in_transit.to_string()
        ),
        ("700.00".to_owned(), "0.00".to_owned(), "250.00".to_owned())
    );

    // After the movements: the table's stream hands an outbox item to the publisher (the
    // other records of the batch are not its business), and the schedule sweeps the
    // withdrawals' SMS.
    let publisher = fund_account::app::App::new(
        j.t.app.store.clone(),
        j.t.app.sms.clone(),
        j.t.clock.clone(),
        fund_account::app::Settings::new(fund_account_tests::TEST_CODE_SECRET.to_vec()).unwrap(),
    )
    .with_event_bus(std::sync::Arc::new(bus.clone()));
    let stream = j.start("publish-events");
    outbox_item_under_the_events_key(&publisher, &stream).await;
    let response = fund_account::lambda::stream::handle(&publisher, stream).await.unwrap();
    assert_eq!(response, serde_json::json!({ "batchItemFailures": [] }));
    let published = bus.events(Some("seller-001".to_owned()), 10).await.unwrap();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(
        (published[0]["type"].as_str(), published[0]["sequence"].as_u64()),
        (Some("withdrawal.paid"), Some(1))
    );
    let sent_before = j.t.sms_count("+8613800001234").await;
    let report = fund_account::lambda::stream::handle(&publisher, j.start("sweep-notifications"))
        .await
        .unwrap();
    // The withdrawal created and the one paid (the events' second withdrawal was put
    // in by hand, without its notification).
    assert_eq!(report["sent"], 2, "{report}");
    assert_eq!(j.t.sms_count("+8613800001234").await, sent_before + 2);

    let files = event_files();
    let missing: Vec<_> = files.difference(&j.ran).collect();
    assert!(missing.is_empty(), "event files with no expectation here: {missing:?}");
    assert_eq!(j.ran, files);
}

#[test]
fn scheduled_events_choose_what_the_run_does() {
    use fund_account::lambda::reconciliation_options;
    let scheduled = event("reconcile");
    let settle = event("reconcile-settle");
    let full = event("reconcile-full");
    assert!(
        reconciliation_options(&scheduled).verify,
        "a plain scheduled event runs in full"
    );
    assert!(reconciliation_options(&full).verify && reconciliation_options(&full).settle);
    let settle_only = reconciliation_options(&settle);
    assert!(settle_only.settle && !settle_only.verify);
    let migration = reconciliation_options(&event("reconcile-book-openings"));
    assert!(migration.book_openings && migration.verify && !migration.settle);
    assert!(!reconciliation_options(&full).book_openings, "only when asked");
    let segmented = reconciliation_options(&serde_json::json!({ "mode": "full", "segment": 2, "segments": 4 }));
    assert_eq!((segmented.segment, segmented.segments), (2, 4));
    let nonsense = reconciliation_options(&serde_json::json!({ "segment": 9, "segments": 4 }));
    assert_eq!(
        (nonsense.segment, nonsense.segments),
        (0, 1),
        "an impossible segment runs everything"
    );
}

for_each_adapter!(every_event_file_runs_through_its_handler_in_journey_order);
