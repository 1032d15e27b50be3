//! The deployment artefacts agree with the code: every route has its function in
//! `template.yaml`, its path in `openapi.yaml` and an event in `events/`, and each event
//! runs through its handler in-process (what `sam local invoke` would do).

use fund_account::member::MemberId;
use fund_account::routes::{self, Route};
use fund_account::store::{Expect, Write};
use fund_account::verification::SmsCode;
use fund_account_tests::{project_root, test_app, Adapter};
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
        let event: Value = serde_json::from_str(&read(&format!("events/{}.json", route.function()))).unwrap();
        assert_eq!(event["routeKey"], format!("{} {}", route.method(), route.path()));
        assert!(
            std::path::Path::new(&project_root().join(format!("functions/{}/Cargo.toml", route.function()))).exists(),
            "{route:?} has its function crate"
        );
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

async fn invoke(app: &fund_account::app::App, function: &str) -> (u16, Value) {
    let text = read(&format!("events/{function}.json"));
    let event: Value = serde_json::from_str(&text).unwrap();
    let request = lambda_http::request::from_str(&text).expect("a valid API Gateway event");
    let route = Route::ALL
        .iter()
        .copied()
        .find(|r| r.function() == function)
        .expect("a route");
    let response = routes::handle(route, app, request).await;
    assert_eq!(
        response.headers()["x-request-id"].to_str().unwrap(),
        event["requestContext"]["requestId"].as_str().unwrap(),
        "the API Gateway request id is echoed"
    );
    let status = response.status().as_u16();
    let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    (status, body)
}

#[tokio::test]
async fn the_event_files_run_through_their_handlers_in_journey_order() {
    let t = test_app(Adapter::Sqlite).await;
    let (status, body) = invoke(&t.app, "member-sync").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["member_id"], "seller-001");
    let (status, body) = invoke(&t.app, "get-account").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("inactive")), "{body}");
    let (status, body) = invoke(&t.app, "activate").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("pending_verification")),
        "{body}"
    );
    let (status, body) = invoke(&t.app, "send-code").await;
    assert_eq!(status, 202, "{body}");

    // The event carries code 123456: make it the live code, as if it had been sent.
    let member = MemberId::parse("seller-001").unwrap();
    let mut code = t.app.store.member_state(&member).await.unwrap().unwrap().code.unwrap();
    code.code_hash = t
        .app
        .code_hasher()
        .unwrap()
        .hash(&member, &SmsCode::parse("123456").unwrap());
    let version = code.version;
    code.version += 1;
    t.app
        .store
        .commit(vec![Write::PutCode {
            code,
            expect: Expect::Version(version),
        }])
        .await
        .unwrap();

    let (status, body) = invoke(&t.app, "confirm-code").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("active")), "{body}");
}

#[tokio::test]
async fn the_scheduled_events_run_the_reconciliation_in_process() {
    use fund_account::lambda::reconciliation_options;
    let scheduled: Value = serde_json::from_str(&read("events/reconcile.json")).unwrap();
    let settle: Value = serde_json::from_str(&read("events/reconcile-settle.json")).unwrap();
    let full: Value = serde_json::from_str(&read("events/reconcile-full.json")).unwrap();
    assert!(
        reconciliation_options(&scheduled).verify,
        "a plain scheduled event runs in full"
    );
    assert!(reconciliation_options(&full).verify && reconciliation_options(&full).settle);
    let settle_only = reconciliation_options(&settle);
    assert!(settle_only.settle && !settle_only.verify);
    let segmented = reconciliation_options(&serde_json::json!({ "mode": "full", "segment": 2, "segments": 4 }));
    assert_eq!((segmented.segment, segmented.segments), (2, 4));
    let nonsense = reconciliation_options(&serde_json::json!({ "segment": 9, "segments": 4 }));
    assert_eq!(
        (nonsense.segment, nonsense.segments),
        (0, 1),
        "an impossible segment runs everything"
    );

    let t = test_app(Adapter::Sqlite).await;
    t.member("seller-001", "login-Pass-2026", None).await;
    let mut options = reconciliation_options(&scheduled);
    options.recheck_after = std::time::Duration::ZERO;
    let report = fund_account::reconciliation::run(&t.app, options).await.unwrap();
    assert_eq!((report.accounts_checked, report.discrepancies.len()), (1, 0));
    let json = report.to_json();
    for field in [
        "run_id",
        "started_at",
        "finished_at",
        "accounts_checked",
        "settled",
        "discrepancies",
    ] {
        assert!(json.get(field).is_some(), "the report has {field}");
    }
}
