//! Fuzzing, as high-count property tests (`cargo fuzz` needs a nightly toolchain, which
//! this project does not use): money parsing, the request decoding of every route, and
//! mutated event fixtures. Whatever arrives, a handler answers a 4xx problem or a success
//! — never a panic, never a 5xx. `FUZZ_CASES` raises the count (default 400 per target).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use fund_account::money::Amount;
use fund_account::routes::{self, Route};
use fund_account_tests::{test_app, Adapter, TestApp};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn money_parsing_never_panics_and_accepts_exactly_the_contract() {
    let pattern = regex_lite();
    runner()
        .run(&any::<String>(), |text| {
            let parsed = Amount::parse_request(&text);
            prop_assert_eq!(parsed.is_ok(), pattern(&text), "{:?}", text);
            Ok(())
        })
        .unwrap();
    runner()
        .run(&"[0-9]{1,14}(\\.[0-9]{0,3})?", |text| {
            let parsed = Amount::parse_request(&text);
            prop_assert_eq!(parsed.is_ok(), pattern(&text), "{:?}", text);
            if let Ok(amount) = parsed {
                // Shown with exactly two decimals, and read back to the same value.
                let shown = amount.to_string();
                prop_assert_eq!(shown.split('.').nth(1).map(str::len), Some(2));
                prop_assert_eq!(Amount::parse_request(&shown).unwrap(), amount);
            }
            Ok(())
        })
        .unwrap();
}

/// The contract's request amount: 1 to 12 integer digits (leading zeros aside), then
/// optionally a point and 1 or 2 digits.
fn regex_lite() -> impl Fn(&str) -> bool {
    |text: &str| {
        let (integer, fraction) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        digits(integer)
            && integer.trim_start_matches('0').len() <= 12
            && fraction.is_none_or(|f| digits(f) && f.len() <= 2)
    }
}

struct Fixture {
    app: TestApp,
    runtime: tokio::runtime::Runtime,
}

/// One app, with the fixtures' member (`seller-001`) active and funded.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let app = runtime.block_on(async {
            let t = test_app(Adapter::Sqlite).await;
            let m = t.active_member("seller-001").await;
            t.fund(&m, fund_account::money::Currency::Usd, "100000").await;
            // A reference rate as of the (manual, unmoving) clock: it stays fresh, so a
            // cross-currency preview or quote has one; a 503 would be a fault here.
            fund_account::exchange::put_rate(
                &t.app,
                fund_account::exchange::RateUpdate {
                    pair: fund_account::fx::Pair::parse("USD-CNY").unwrap(),
                    mid: fund_account::fx::Mid::parse("7.2").unwrap(),
                    as_of: t.app.now(),
                    confirm_jump: false,
                },
            )
            .await
            .unwrap();
            t
        });
        Fixture { app, runtime }
    })
}

fn event(route: Route) -> Value {
    fund_account_tests::event(route.function())
}

/// Runs an (possibly mangled) event through its route and checks the answer's shape.
/// `Ok(false)`: not an event API Gateway could send (a mutation can make one), so
/// nothing ran — the callers decide whether that may happen.
fn answer(route: Route, event: &Value) -> Result<bool, TestCaseError> {
    let Ok(request) = lambda_http::request::from_str(&event.to_string()) else {
        return Ok(false);
    };
    let f = fixture();
    let response = f.runtime.block_on(routes::handle(route, &f.app.app, request));
    let status = response.status().as_u16();
    prop_assert!(status < 500, "{:?} answered {} to {}", route, status, event["body"]);
    prop_assert!(response.headers().contains_key("x-request-id"));
    if status >= 400 {
        prop_assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        prop_assert!(body["code"].is_string());
    }
    Ok(true)
}

/// The unmutated fixture of `route`: it must be an event its handler runs.
fn parsed_fixture(route: Route) -> Value {
    let base = event(route);
    assert!(
        answer(route, &base).unwrap_or_else(|e| panic!("events/{}.json: {e}", route.function())),
        "events/{}.json is not an API Gateway event",
        route.function()
    );
    base
}

/// JSON values of every type, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        "[0-9]{1,14}(\\.[0-9]{0,3})?".prop_map(Value::String),
        prop_oneof![Just("USD"), Just("CNY"), Just("usd"), Just("EUR")].prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("amount".to_owned()),
                    Just("currency".to_owned()),
                    Just("code".to_owned()),
                    Just("payment_password".to_owned()),
                    Just("bank_account".to_owned()),
                    Just("reason".to_owned()),
                    Just("collection_id".to_owned()),
                    Just("member_id".to_owned()),
                    "[a-z_]{1,12}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn every_route_answers_arbitrary_bodies_with_a_4xx_or_success() {
    for route in Route::ALL {
        let base = parsed_fixture(*route);
        let strategy = prop_oneof![
            json_value().prop_map(|v| v.to_string()),
            prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            ".{0,300}",
        ];
        runner()
            .run(&strategy, |body| {
                let mut mangled = base.clone();
                mangled["body"] = Value::String(body);
                // Only the body changed, and any string is a body: every case runs.
                prop_assert!(answer(*route, &mangled)?, "the event stopped parsing");
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn mutated_event_fixtures_never_break_a_handler() {
    for route in Route::ALL {
        let base = parsed_fixture(*route);
        let body: Value = base["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        let keys: Vec<String> = body
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let strategy = (
            prop::sample::select(if keys.is_empty() { vec!["x".to_owned()] } else { keys }),
            json_value(),
            any::<bool>(),
            prop_oneof![Just(None), "[ -~]{0,300}".prop_map(Some)],
            // Query strings as API Gateway sends them: URI characters only. (`lambda_http`
            // itself panics building a request from a raw query with, say, a space —
            // something neither API Gateway nor the local gateway, which parses the URI
            // first, ever hands it.)
            prop_oneof![Just(None), "[A-Za-z0-9=&%._~+-]{0,40}".prop_map(Some)],
        );
        let (cases, parsed) = (AtomicU32::new(0), AtomicU32::new(0));
        runner()
            .run(&strategy, |(key, value, remove, idempotency_key, query)| {
                let mut mutated = body.clone();
                if let Some(object) = mutated.as_object_mut() {
                    if remove {
                        object.remove(&key);
                    } else {
                        object.insert(key.clone(), value.clone());
                    }
                }
                let mut event = base.clone();
                event["body"] = Value::String(mutated.to_string());
                if let Some(k) = idempotency_key {
                    event["headers"]["idempotency-key"] = Value::String(k);
                }
                if let Some(q) = query {
                    event["rawQueryString"] = Value::String(q);
                }
                cases.fetch_add(1, Ordering::Relaxed);
                if answer(*route, &event)? {
                    parsed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
            .unwrap();
        // A mutation may make an event no gateway would send; most must still reach the
        // handler, or this fuzzes nothing.
        let (cases, parsed) = (cases.into_inner(), parsed.into_inner());
        assert!(
            parsed * 10 >= cases * 9,
            "{route:?}: only {parsed} of {cases} mutated events reached the handler"
        );
    }
}
