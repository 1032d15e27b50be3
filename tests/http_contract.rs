//! The HTTP contract, black-box through the local gateway: the activation journey, every
//! kind of bad input and auth failure, and durability across a restart.

use std::sync::Arc;

use fund_account::clock::SystemClock;
use fund_account_tests::expect_problem;
use fund_account_tests::{for_each_adapter, Adapter, RunningGateway};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const PHONE: &str = "+8613800001234";

async fn gateway(adapter: Adapter) -> RunningGateway {
    RunningGateway::start_on(adapter, Arc::new(SystemClock)).await
}

async fn account(client: &Client, gw: &RunningGateway, token: &str) -> Value {
    let response = client
        .get(gw.url("/v1/account"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn last_code(client: &Client, gw: &RunningGateway, phone: &str) -> String {
    let sms: Value = client
        .get(gw.url("/dev/sms"))
        .query(&[("phone", phone)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let message = sms["items"][0]["message"].as_str().expect("an sms").to_owned();
    message
        .split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .expect("code")
        .to_owned()
}

async fn a_seller_with_a_phone_activates_over_http(adapter: Adapter) {
    let gw = gateway(adapter).await;
    let client = Client::new();
    let token = gw.member_token(&client, "seller-1", Some(PHONE)).await;
    let before = account(&client, &gw, &token).await;
    assert_eq!(before["status"], "inactive");
    assert_eq!(before["phone"], "+86*******1234");
    assert_eq!(before["balances"]["USD"]["available"], "0.00");
    assert_eq!(before["balances"]["CNY"]["in_transit"], "0.00");

    let response = client
        .post(gw.url("/v1/activation"))
        .bearer_auth(&token)
        .json(&json!({ "payment_password": "Vault-Key-2026!" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "status": "pending_verification", "phone": "+86*******1234" })
    );

    let response = client
        .post(gw.url("/v1/activation/code"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let sent: Value = response.json().await.unwrap();
    assert_eq!(sent["phone"], "+86*******1234");
    assert!(sent["expires_at"].as_str().unwrap().ends_with('Z'));

    let again = client
        .post(gw.url("/v1/activation/code"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let retry_after = again.headers().get("retry-after").cloned();
    expect_problem(again, 429, "code_resend_too_soon").await;
    assert!(retry_after.is_some());

    let code = last_code(&client, &gw, PHONE).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let response = client
        .post(gw.url("/v1/activation/confirm"))
        .bearer_auth(&token)
        .json(&json!({ "code": wrong }))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 422, "code_incorrect").await;
    assert_eq!(problem["attempts_left"], 4);
    assert!(!problem.to_string().contains(&code));

    let response = client
        .post(gw.url("/v1/activation/confirm"))
        .bearer_auth(&token)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "status": "active" }));
    assert_eq!(account(&client, &gw, &token).await["status"], "active");
    gw.stop().await;
}

async fn a_seller_without_a_phone_activates_in_one_step(adapter: Adapter) {
    let gw = gateway(adapter).await;
    let client = Client::new();
    let token = gw.member_token(&client, "seller-2", None).await;
    let response = client
        .post(gw.url("/v1/activation"))
        .bearer_auth(&token)
        .json(&json!({ "payment_password": "Vault-Key-2026!" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "status": "active" }));
    let response = client
        .post(gw.url("/v1/activation"))
        .bearer_auth(&token)
        .json(&json!({ "payment_password": "x" }))
        .send()
        .await
        .unwrap();
    expect_problem(response, 409, "already_active").await;
    assert_eq!(account(&client, &gw, &token).await["phone"], Value::Null);
    gw.stop().await;
}

async fn bad_bodies_get_their_documented_errors_and_change_nothing(adapter: Adapter) {
    let gw = gateway(adapter).await;
    let client = Client::new();
    let token = gw.member_token(&client, "seller-3", Some(PHONE)).await;
    let secret = "Sup3r-Secret-Pass";
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/v1/activation", "{not json".to_owned(), 400, "invalid_request"),
        (
            "/v1/activation",
            format!(r#"{{"payment_password":"{secret}","admin":true}}"#),
            400,
            "invalid_request",
        ),
        ("/v1/activation", "{}".to_owned(), 400, "invalid_request"),
        (
            "/v1/activation",
            r#"{"payment_password":12345678}"#.to_owned(),
            400,
            "invalid_request",
        ),
        ("/v1/activation", format!(r#"["{secret}"]"#), 400, "invalid_request"),
        (
            "/v1/activation",
            format!(r#"{{"payment_password":"{secret}"}} trailing"#),
            400,
            "invalid_request",
        ),
        (
            "/v1/activation",
            format!(r#"{{"payment_password":"{}"}}"#, "a".repeat(70 * 1024)),
            413,
            "payload_too_large",
        ),
        (
            "/v1/activation",
            r#"{"payment_password":"password123"}"#.to_owned(),
            422,
            "payment_password_too_weak",
        ),
        (
            "/v1/activation",
            r#"{"payment_password":"login-Pass-2026"}"#.to_owned(),
            422,
            "payment_password_same_as_login",
        ),
        (
            "/v1/activation/code",
            r#"{"phone":"+15550000000"}"#.to_owned(),
            400,
            "invalid_request",
        ),
        ("/v1/activation/code", "{}".to_owned(), 409, "no_pending_activation"),
        (
            "/v1/activation/confirm",
            r#"{"code":"12345"}"#.to_owned(),
            400,
            "invalid_request",
        ),
        (
            "/v1/activation/confirm",
            r#"{"code":123456}"#.to_owned(),
            400,
            "invalid_request",
        ),
        (
            "/v1/activation/confirm",
            r#"{"code":"12345a"}"#.to_owned(),
            400,
            "invalid_request",
        ),
        (
            "/v1/activation/confirm",
            r#"{"code":"123456"}"#.to_owned(),
            409,
            "no_pending_activation",
        ),
    ];
    for (path, body, status, code) in cases {
        let response = client
            .post(gw.url(path))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, status, code).await;
        assert!(!problem.to_string().contains(secret), "no secret echoed: {problem}");
        assert!(!problem.to_string().contains("12345678"), "no value echoed: {problem}");
    }
    let after = account(&client, &gw, &token).await;
    assert_eq!(after["status"], "inactive");
    let sms: Value = client
        .get(gw.url("/dev/sms"))
        .query(&[("phone", PHONE)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sms["items"], json!([]));
    gw.stop().await;
}

async fn missing_forged_and_expired_credentials_are_refused(adapter: Adapter) {
    let gw = gateway(adapter).await;
    let client = Client::new();
    let token = gw.member_token(&client, "seller-4", None).await;
    let forged = local_gateway::issue_token(b"another-secret-entirely-0123456789", "seller-4", now_seconds()).unwrap();
    let expired =
        local_gateway::issue_token(b"test-jwt-secret-0123456789abcdef", "seller-4", now_seconds() - 7200).unwrap();
    let unknown = local_gateway::issue_token(b"test-jwt-secret-0123456789abcdef", "ghost", now_seconds()).unwrap();
    let none: Option<&str> = None;
    for bearer in [none, Some("not-a-jwt"), Some(forged.as_str()), Some(expired.as_str())] {
        let mut request = client.get(gw.url("/v1/account"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        expect_problem(request.send().await.unwrap(), 401, "unauthorized").await;
    }
    let response = client
        .get(gw.url("/v1/account"))
        .bearer_auth(&unknown)
        .send()
        .await
        .unwrap();
    expect_problem(response, 404, "member_not_found").await;

    let body = json!({ "login_password_hash": "x", "phone": null });
    let no_key = client
        .put(gw.url("/internal/members/m1"))
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_problem(no_key, 403, "forbidden").await;
    let wrong_key = client
        .put(gw.url("/internal/members/m1"))
        .header("x-internal-key", "guess")
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_problem(wrong_key, 403, "forbidden").await;
    let member_token = client
        .put(gw.url("/internal/members/m1"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_problem(member_token, 403, "forbidden").await;
    // The member id comes from the token only: a header or body naming another is ignored.
    let response = client
        .get(gw.url("/v1/account"))
        .bearer_auth(&token)
        .header("x-member-id", "seller-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["member_id"], "seller-4");

    let response = client
        .post(gw.url("/dev/login"))
        .json(&json!({ "member_id": "seller-4", "login_password": "nope" }))
        .send()
        .await
        .unwrap();
    expect_problem(response, 401, "invalid_credentials").await;
    expect_problem(
        client.get(gw.url("/v1/nothing")).send().await.unwrap(),
        404,
        "route_not_found",
    )
    .await;
    expect_problem(
        client.delete(gw.url("/v1/account")).send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    gw.stop().await;
}

async fn a_wrong_method_answers_405_with_the_allow_header(adapter: Adapter) {
    let gw = gateway(adapter).await;
    let client = Client::new();
    let patch = reqwest::Method::from_bytes(b"PATCH").unwrap();
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/v1/account", "GET"),
        (reqwest::Method::POST, "/v1/account/transactions", "GET"),
        (reqwest::Method::PUT, "/v1/withdrawals", "GET, POST"),
        (
            reqwest::Method::DELETE,
            "/v1/withdrawals/wd_01KJM8MHJVQ3R7ZP4X2C9N6T8B",
            "GET",
        ),
        (patch, "/v1/activation", "POST"),
        (reqwest::Method::GET, "/v1/activation/code", "POST"),
        (reqwest::Method::GET, "/internal/members/seller-1", "PUT"),
        (reqwest::Method::GET, "/internal/collections", "POST"),
        (reqwest::Method::PUT, "/internal/withdrawals/wd_1/paid", "POST"),
        (reqwest::Method::GET, "/internal/withdrawals/wd_1/returned", "POST"),
    ] {
        let response = client.request(method.clone(), gw.url(path)).send().await.unwrap();
        assert_eq!(
            response.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        expect_problem(response, 405, "method_not_allowed").await;
    }
    // An unknown path is a 404, with nothing to allow.
    let response = client.delete(gw.url("/v1/nothing")).send().await.unwrap();
    assert!(response.headers().get("allow").is_none());
    expect_problem(response, 404, "route_not_found").await;
    gw.stop().await;
}

fn now_seconds() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// Each try of a payment password runs argon2id twice: the eleventh in an hour is
/// refused with `429` and `Retry-After` before any hashing.
async fn the_eleventh_payment_password_in_an_hour_is_refused_with_retry_after(adapter: Adapter) {
    let gw = gateway(adapter).await;
    let client = Client::new();
    let token = gw.member_token(&client, "seller-tries", Some(PHONE)).await;
    let activate = |n: usize| {
        client
            .post(gw.url("/v1/activation"))
            .bearer_auth(&token)
            .json(&json!({ "payment_password": format!("Vault-Key-2026-{n}") }))
            .send()
    };
    for n in 0..10 {
        assert_eq!(activate(n).await.unwrap().status(), StatusCode::ACCEPTED, "try {n}");
    }
    let refused = activate(10).await.unwrap();
    let retry_after: i64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&retry_after), "{retry_after}");
    let body = expect_problem(refused, 429, "activation_attempt_limit").await;
    assert_eq!(body["retry_after"], retry_after);
    gw.stop().await;
}

async fn member_sync_validates_and_never_returns_the_hash(adapter: Adapter) {
    let gw = gateway(adapter).await;
    let client = Client::new();
    let hash = fund_account::password::hash_blocking(&fund_account::password::PaymentPassword::new(
        "login-Pass-2026".to_owned(),
    ))
    .unwrap();
    let put = |body: Value| {
        client
            .put(gw.url("/internal/members/seller%405"))
            .header("x-internal-key", &gw.internal_key)
            .json(&body)
            .send()
    };
    let response = put(json!({ "login_password_hash": hash, "phone": PHONE }))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["member_id"], "seller@5");
    assert_eq!(body["phone"], "+86*******1234");
    assert_eq!(body["status"], "inactive");
    assert!(!body.to_string().contains("argon2"));

    expect_problem(
        put(json!({ "login_password_hash": hash, "phone": "13800001234" }))
            .await
            .unwrap(),
        422,
        "invalid_phone",
    )
    .await;
    expect_problem(
        put(json!({ "login_password_hash": "$2b$12$abc", "phone": null }))
            .await
            .unwrap(),
        422,
        "invalid_password_hash",
    )
    .await;
    // Verified on every activation with the parameters it carries: over the cost caps
    // (here 4 GiB of memory) it is refused at sync.
    expect_problem(
        put(json!({
            "login_password_hash": "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "phone": null
        }))
        .await
        .unwrap(),
        422,
        "invalid_password_hash",
    )
    .await;
    expect_problem(put(json!({ "phone": null })).await.unwrap(), 400, "invalid_request").await;
    let unbound = put(json!({ "login_password_hash": hash, "phone": null }))
        .await
        .unwrap();
    assert_eq!(unbound.json::<Value>().await.unwrap()["phone"], Value::Null);
    gw.stop().await;
}

async fn state_survives_a_restart(adapter: Adapter) {
    let gw = gateway(adapter).await;
    let client = Client::new();
    gw.active_member_token(&client, "seller-6").await;
    let restarted = gw.restart(Arc::new(SystemClock)).await;
    let login: Value = client
        .post(restarted.url("/dev/login"))
        .json(&json!({ "member_id": "seller-6", "login_password": "login-Pass-2026" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    assert_eq!(account(&client, &restarted, token).await["status"], "active");
    restarted.stop().await;
}

for_each_adapter!(
    a_seller_with_a_phone_activates_over_http,
    a_seller_without_a_phone_activates_in_one_step,
    bad_bodies_get_their_documented_errors_and_change_nothing,
    missing_forged_and_expired_credentials_are_refused,
    a_wrong_method_answers_405_with_the_allow_header,
    the_eleventh_payment_password_in_an_hour_is_refused_with_retry_after,
    member_sync_validates_and_never_returns_the_hash,
    state_survives_a_restart,
);
