//! The local gateway's `/dev` routes answer only a local client (API.md, "Local only"):
//! a foreign `Host` (DNS rebinding) or `Origin` is `403 forbidden`, a body that is not
//! declared JSON (a cross-site "simple" request needs no CORS preflight) is
//! `415 unsupported_media_type`, and the guard answers before anything else. With the
//! DynamoDB store the routes are off (404) unless `LOCAL_DEV_ROUTES=1`.

use std::collections::HashMap;
use std::sync::Arc;

use fund_account::clock::SystemClock;
use fund_account_tests::expect_problem;
use fund_account_tests::RunningGateway;
use local_gateway::{Gateway, GatewayConfig};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{json, Value};

async fn gateway() -> RunningGateway {
    RunningGateway::start(None, Arc::new(SystemClock)).await
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port in base url")
}

fn new_member(id: &str) -> Value {
    json!({ "member_id": id, "login_password": "login-Pass-2026", "phone": null })
}

/// Whether the member exists: its login works.
async fn member_exists(client: &Client, base: &str, id: &str) -> bool {
    let response = client
        .post(format!("{base}/dev/login"))
        .json(&json!({ "member_id": id, "login_password": "login-Pass-2026" }))
        .send()
        .await
        .expect("login");
    match response.status().as_u16() {
        200 => true,
        401 => false,
        other => panic!("login answered {other}"),
    }
}

async fn send(builder: RequestBuilder) -> Response {
    builder.send().await.expect("request")
}

#[tokio::test]
async fn a_cross_site_text_plain_post_is_refused_and_creates_nothing() {
    let gw = gateway().await;
    let client = Client::new();
    let body = new_member("csrf-victim").to_string();
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
        Some("application/json; charset=iso-8859-1"),
        Some("application/json, text/plain"),
        None,
    ] {
        let mut request = client.post(gw.url("/dev/members")).body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        expect_problem(send(request).await, 415, "unsupported_media_type").await;
    }
    // No token is minted either, and the check comes before the body limit.
    let login = client
        .post(gw.url("/dev/login"))
        .header("content-type", "text/plain")
        .body(json!({ "member_id": "csrf-victim", "login_password": "x" }).to_string());
    expect_problem(send(login).await, 415, "unsupported_media_type").await;
    let huge = client
        .post(gw.url("/dev/members"))
        .header("content-type", "text/plain")
        .body("x".repeat(70 * 1024));
    expect_problem(send(huge).await, 415, "unsupported_media_type").await;
    assert!(!member_exists(&client, &gw.base, "csrf-victim").await);

    // The same body declared JSON is served, with or without `charset=utf-8`.
    for (id, content_type) in [
        ("json-1", "application/json"),
        ("json-2", "application/json; charset=utf-8"),
        ("json-3", "Application/JSON;Charset=\"UTF-8\""),
    ] {
        let request = client
            .post(gw.url("/dev/members"))
            .header("content-type", content_type)
            .body(new_member(id).to_string());
        assert_eq!(send(request).await.status(), 201, "{content_type}");
        assert!(member_exists(&client, &gw.base, id).await);
    }
    // A JSON body over 64 KiB is still too large.
    let oversized = client
        .post(gw.url("/dev/members"))
        .header("content-type", "application/json")
        .body(format!("{{\"member_id\": \"{}\"}}", "x".repeat(70 * 1024)));
    expect_problem(send(oversized).await, 413, "payload_too_large").await;
    gw.stop().await;
}

#[tokio::test]
async fn a_foreign_origin_is_forbidden() {
    let gw = gateway().await;
    let client = Client::new();
    let port = port_of(&gw.base);
    for origin in [
        "http://evil.example".to_owned(),
        "null".to_owned(),
        format!("https://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{port}/"),
        format!("http://127.0.0.1:{port}.evil.example"),
        String::new(),
    ] {
        let create = client
            .post(gw.url("/dev/members"))
            .header("origin", &origin)
            .json(&new_member("origin-victim"));
        expect_problem(send(create).await, 403, "forbidden").await;
        let sms = client.get(gw.url("/dev/sms")).header("origin", &origin);
        expect_problem(send(sms).await, 403, "forbidden").await;
        let events = client.get(gw.url("/dev/events")).header("origin", &origin);
        expect_problem(send(events).await, 403, "forbidden").await;
        let reconcile = client.post(gw.url("/dev/reconcile")).header("origin", &origin);
        expect_problem(send(reconcile).await, 403, "forbidden").await;
    }
    assert!(!member_exists(&client, &gw.base, "origin-victim").await);
    gw.stop().await;
}

#[tokio::test]
async fn a_foreign_host_is_forbidden_against_dns_rebinding() {
    let gw = gateway().await;
    let client = Client::new();
    let port = port_of(&gw.base);
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("192.168.1.10:{port}"),
        format!("0.0.0.0:{port}"),
        format!("[::2]:{port}"),
        "localhost:http".to_owned(),
        "[::1]x".to_owned(),
    ] {
        let sms = client.get(gw.url("/dev/sms")).header("host", &host);
        expect_problem(send(sms).await, 403, "forbidden").await;
        let events = client
            .get(gw.url("/dev/events?member_id=rebind-victim"))
            .header("host", &host);
        expect_problem(send(events).await, 403, "forbidden").await;
        let create = client
            .post(gw.url("/dev/members"))
            .header("host", &host)
            .header("origin", format!("http://{host}"))
            .json(&new_member("rebind-victim"));
        expect_problem(send(create).await, 403, "forbidden").await;
    }
    // The guard answers before anything else on these routes: unknown path, wrong
    // method, a body that is not JSON.
    let evil = "evil.example";
    let unknown = client.get(gw.url("/dev/nothing")).header("host", evil);
    expect_problem(send(unknown).await, 403, "forbidden").await;
    let wrong_method = client.delete(gw.url("/dev/sms")).header("host", evil);
    expect_problem(send(wrong_method).await, 403, "forbidden").await;
    let wrong_method = client.post(gw.url("/dev/events")).header("host", evil);
    expect_problem(send(wrong_method).await, 403, "forbidden").await;
    let text = client
        .post(gw.url("/dev/members"))
        .header("host", evil)
        .header("content-type", "text/plain")
        .body("{}");
    expect_problem(send(text).await, 403, "forbidden").await;
    assert!(!member_exists(&client, &gw.base, "rebind-victim").await);

    // The API's own routes are API Gateway's and do not look at Host.
    let account = client.get(gw.url("/v1/account")).header("host", evil);
    expect_problem(send(account).await, 401, "unauthorized").await;
    gw.stop().await;
}

#[tokio::test]
async fn a_local_client_is_served() {
    let gw = gateway().await;
    let client = Client::new();
    let port = port_of(&gw.base);
    for host in [
        "127.0.0.1".to_owned(),
        format!("127.0.0.1:{port}"),
        "localhost".to_owned(),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        "[::1]".to_owned(),
        format!("[::1]:{port}"),
    ] {
        let sms = client.get(gw.url("/dev/sms")).header("host", &host);
        assert_eq!(send(sms).await.status(), 200, "Host: {host}");
        // What a browser sends on a same-origin fetch from the web client.
        let same_origin = client
            .get(gw.url("/dev/sms"))
            .header("host", &host)
            .header("origin", format!("http://{host}"));
        assert_eq!(send(same_origin).await.status(), 200, "Host and Origin {host}");
        let events = client
            .get(gw.url("/dev/events?member_id=local-seller"))
            .header("host", &host);
        assert_eq!(send(events).await.status(), 200, "Host: {host}");
        let same_origin = client
            .get(gw.url("/dev/events"))
            .header("host", &host)
            .header("origin", format!("http://{host}"));
        assert_eq!(send(same_origin).await.status(), 200, "Host and Origin {host}");
    }
    let create = client
        .post(gw.url("/dev/members"))
        .header("origin", format!("http://127.0.0.1:{port}"))
        .json(&new_member("local-seller"));
    assert_eq!(send(create).await.status(), 201);
    let login = client
        .post(gw.url("/dev/login"))
        .header("host", format!("localhost:{port}"))
        .header("origin", format!("http://localhost:{port}"))
        .json(&json!({ "member_id": "local-seller", "login_password": "login-Pass-2026" }));
    assert_eq!(send(login).await.status(), 200);
    // A POST without a body needs no content type.
    let reconcile = send(client.post(gw.url("/dev/reconcile"))).await;
    assert_eq!(reconcile.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn a_wrong_method_on_a_dev_route_lists_the_allowed_one() {
    let gw = gateway().await;
    let client = Client::new();
    for (request, allow) in [
        (client.get(gw.url("/dev/members")), "POST"),
        (client.put(gw.url("/dev/login")), "POST"),
        (client.post(gw.url("/dev/sms")), "GET"),
        (client.delete(gw.url("/dev/events")), "GET"),
        (client.get(gw.url("/dev/reconcile")), "POST"),
    ] {
        let response = send(request).await;
        assert_eq!(
            response.headers().get("allow").map(|v| v.to_str().unwrap()),
            Some(allow)
        );
        expect_problem(response, 405, "method_not_allowed").await;
    }
    let unknown = send(client.get(gw.url("/dev/nothing"))).await;
    assert!(unknown.headers().get("allow").is_none());
    expect_problem(unknown, 404, "route_not_found").await;
    gw.stop().await;
}

/// The gateway's configuration as `local-gateway` reads it from these variables.
fn config_from(vars: &[(&str, &str)]) -> Result<GatewayConfig, String> {
    let data_dir = std::env::temp_dir().join(format!(
        "fund-account-gw-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    ));
    let mut map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    map.insert("LOCAL_DATA_DIR".to_owned(), data_dir.display().to_string());
    map.insert("LOCAL_GATEWAY_ADDR".to_owned(), "127.0.0.1:0".to_owned());
    map.insert("LOCAL_INTERNAL_KEY".to_owned(), "test-internal-key".to_owned());
    GatewayConfig::from_lookup(|name| map.get(name).cloned())
}

#[test]
fn dev_routes_are_on_with_the_embedded_store_and_asked_for_with_dynamodb() {
    assert!(config_from(&[]).unwrap().dev_routes);
    assert!(!config_from(&[("LOCAL_DEV_ROUTES", "0")]).unwrap().dev_routes);
    let dynamodb = [("LOCAL_STORE", "dynamodb"), ("TABLE_NAME", "t")];
    assert!(!config_from(&dynamodb).unwrap().dev_routes);
    let asked = [dynamodb[0], dynamodb[1], ("LOCAL_DEV_ROUTES", "1")];
    assert!(config_from(&asked).unwrap().dev_routes);
    assert!(config_from(&[("LOCAL_DEV_ROUTES", "yes")]).is_err());
}

/// A gateway on a fresh DynamoDB table of the emulator, configured from `vars`.
async fn dynamodb_gateway(vars: &[(&str, &str)]) -> (String, tokio::sync::oneshot::Sender<()>) {
    let table = format!("fund-account-gw-{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut all = vec![("LOCAL_STORE", "dynamodb"), ("TABLE_NAME", table.as_str())];
    all.extend_from_slice(vars);
    let config = config_from(&all).expect("config");
    let aws = fund_account_tests::aws_config().await;
    let gateway = Gateway::build_with_aws(config, Arc::new(SystemClock), Some(aws))
        .await
        .expect("gateway on dynamodb");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(local_gateway::serve(Arc::new(gateway), listener, async {
        let _ = stopped.await;
    }));
    (base, stop)
}

#[tokio::test]
async fn with_dynamodb_the_dev_routes_are_off_unless_asked_for() {
    let client = Client::new();
    let (base, stop) = dynamodb_gateway(&[]).await;
    for request in [
        client
            .post(format!("{base}/dev/members"))
            .json(&new_member("dyn-seller")),
        client
            .post(format!("{base}/dev/login"))
            .json(&json!({ "member_id": "dyn-seller", "login_password": "login-Pass-2026" })),
        client.get(format!("{base}/dev/sms")),
        client.get(format!("{base}/dev/events?member_id=dyn-seller")),
        client.post(format!("{base}/dev/reconcile")),
        client.get(format!("{base}/dev/members")),
        client.get(format!("{base}/dev/sms")).header("host", "evil.example"),
    ] {
        let response = send(request).await;
        assert!(response.headers().get("allow").is_none());
        expect_problem(response, 404, "route_not_found").await;
    }
    // The API itself is served.
    expect_problem(
        send(client.get(format!("{base}/v1/account"))).await,
        401,
        "unauthorized",
    )
    .await;
    let _ = stop.send(());

    let (base, stop) = dynamodb_gateway(&[("LOCAL_DEV_ROUTES", "1")]).await;
    let created = send(
        client
            .post(format!("{base}/dev/members"))
            .json(&new_member("dyn-seller")),
    )
    .await;
    assert_eq!(created.status(), 201);
    assert!(member_exists(&client, &base, "dyn-seller").await);
    let foreign = client.get(format!("{base}/dev/sms")).header("host", "evil.example");
    expect_problem(send(foreign).await, 403, "forbidden").await;
    let foreign = client.get(format!("{base}/dev/events")).header("host", "evil.example");
    expect_problem(send(foreign).await, 403, "forbidden").await;
    let _ = stop.send(());
}
