//! The FX routes over HTTP through the local gateway, on both adapters: the contract's
//! shapes, and every request-level refusal (400, 401, 403, 404, 422) answered with its
//! documented code and changing nothing.

use fund_account::clock::{Clock, SystemClock};
use fund_account_tests::expect_problem;
use fund_account_tests::{for_each_adapter, Adapter, GatewayClient};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

async fn rate(api: &GatewayClient, mid: Value, as_of: &str) -> Response {
    api.internal(
        Method::PUT,
        "/internal/fx-rates/USD-CNY",
        Some(json!({ "mid": mid, "as_of": as_of })),
    )
    .await
}

/// A member with USD 1,000 available, and its token.
async fn funded(api: &GatewayClient, id: &str) -> String {
    let token = api.active_member(id).await;
    let body = json!({ "collection_id": format!("col-{id}"), "member_id": id, "currency": "USD", "amount": "1000" });
    let created = api.internal(Method::POST, "/internal/collections", Some(body)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    api.settle().await;
    token
}

fn now() -> String {
    SystemClock.now().to_rfc3339()
}

async fn the_fx_routes_answer_with_the_contracts_shapes(adapter: Adapter) {
    let api = GatewayClient::start(adapter).await;
    let token = funded(&api, "fx-1").await;

    let fees = api.member(Method::GET, &token, "/v1/fees", None, None).await;
    assert_eq!(fees.status(), StatusCode::OK);
    let fees: Value = fees.json().await.unwrap();
    assert_eq!(
        fees["withdrawal"][0],
        json!({"currency": "USD", "payout_currency": "USD", "fixed": "15.00", "percent": "0.00", "min": "0.00", "max": null})
    );

    let rate = rate(&api, json!("7.2"), &now()).await;
    assert_eq!(rate.status(), StatusCode::OK);
    let rate: Value = rate.json().await.unwrap();
    assert_eq!(
        (rate["pair"].as_str(), rate["mid"].as_str()),
        (Some("USD-CNY"), Some("7.20000000"))
    );

    let same = api
        .member(
            Method::POST,
            &token,
            "/v1/withdrawals/preview",
            None,
            Some(json!({ "currency": "USD", "amount": "100" })),
        )
        .await;
    assert_eq!(same.status(), StatusCode::OK);
    let same: Value = same.json().await.unwrap();
    assert_eq!(
        same,
        json!({"currency": "USD", "amount": "100.00", "fee": "15.00", "net_amount": "85.00",
               "payout_currency": "USD", "payout_amount": "85.00", "rate": null, "quote_id": null, "expires_at": null})
    );

    let quote = api
        .member(
            Method::POST,
            &token,
            "/v1/fx/quotes",
            None,
            Some(json!({ "sell_currency": "USD", "buy_currency": "CNY", "sell_amount": "100" })),
        )
        .await;
    assert_eq!(quote.status(), StatusCode::CREATED);
    let quote: Value = quote.json().await.unwrap();
    assert_eq!(
        (
            quote["buy_amount"].as_str(),
            quote["rate"].as_str(),
            quote["mid_rate"].as_str(),
            quote["markup_percent"].as_str()
        ),
        (Some("716.40"), Some("7.164000"), Some("7.20000000"), Some("0.50"))
    );
    let id = quote["id"].as_str().unwrap();
    let body = json!({ "quote_id": id });
    let convert =
        |key: &'static str| api.member(Method::POST, &token, "/v1/conversions", Some(key), Some(body.clone()));
    let converted = convert("cv-1").await;
    assert_eq!(converted.status(), StatusCode::CREATED);
    let first = converted.text().await.unwrap();
    let replay = convert("cv-1").await;
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(
        replay.text().await.unwrap(),
        first,
        "a replay is byte for byte the first"
    );
    let used = convert("cv-2").await;
    expect_problem(used, 409, "quote_used").await;

    let listed: Value = api
        .member(Method::GET, &token, "/v1/conversions?limit=1", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["quote_id"], id);
    let platform = api.internal(Method::GET, "/internal/platform/balances", None).await;
    assert_eq!(platform.status(), StatusCode::OK);
    let platform: Value = platform.json().await.unwrap();
    assert_eq!(platform["accounts"].as_array().map(Vec::len), Some(6));
    assert!(platform["accounts"]
        .as_array()
        .unwrap()
        .contains(&json!({"account": "fx_position", "currency": "CNY", "balance": "-716.40"})));
}

async fn bad_fx_requests_get_their_codes_and_change_nothing(adapter: Adapter) {
    let api = GatewayClient::start(adapter).await;
    let token = funded(&api, "fx-2").await;
    let as_of = now();

    // Reference rates.
    expect_problem(rate(&api, json!(7.2), &as_of).await, 422, "invalid_rate").await;
    for mid in ["0", "-1", "7.123456789", "1e2", ""] {
        expect_problem(rate(&api, json!(mid), &as_of).await, 422, "invalid_rate").await;
    }
    expect_problem(rate(&api, json!("7.2"), "yesterday").await, 422, "invalid_as_of").await;
    let ahead = SystemClock.now().plus_seconds(600).to_rfc3339();
    expect_problem(rate(&api, json!("7.2"), &ahead).await, 422, "invalid_as_of").await;
    let body = Some(json!({ "mid": "7.2", "as_of": as_of }));
    let eur = api
        .internal(Method::PUT, "/internal/fx-rates/EUR-CNY", body.clone())
        .await;
    expect_problem(eur, 422, "unsupported_currency").await;
    let twice = api
        .internal(Method::PUT, "/internal/fx-rates/USD-USD", body.clone())
        .await;
    expect_problem(twice, 422, "invalid_currency_pair").await;
    let extra = Some(json!({ "mid": "7.2", "as_of": as_of, "why": "x" }));
    expect_problem(
        api.internal(Method::PUT, "/internal/fx-rates/USD-CNY", extra).await,
        400,
        "invalid_request",
    )
    .await;
    let anonymous = api
        .client
        .put(api.gw.url("/internal/fx-rates/USD-CNY"))
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_problem(anonymous, 403, "forbidden").await;
    // No rate was stored by any of them: a quote has none to use.
    let quote = |body: Value| api.member(Method::POST, &token, "/v1/fx/quotes", None, Some(body));
    let sell = json!({ "sell_currency": "USD", "buy_currency": "CNY", "sell_amount": "10" });
    expect_problem(quote(sell.clone()).await, 503, "fx_rate_unavailable").await;

    // Quotes.
    assert_eq!(rate(&api, json!("7.2"), &as_of).await.status(), StatusCode::OK);
    let both = json!({ "sell_currency": "USD", "buy_currency": "CNY", "sell_amount": "10", "buy_amount": "10" });
    expect_problem(quote(both).await, 400, "invalid_request").await;
    let neither = json!({ "sell_currency": "USD", "buy_currency": "CNY" });
    expect_problem(quote(neither).await, 400, "invalid_request").await;
    let same = json!({ "sell_currency": "USD", "buy_currency": "USD", "sell_amount": "10" });
    expect_problem(quote(same).await, 422, "invalid_currency_pair").await;
    let eur = json!({ "sell_currency": "EUR", "buy_currency": "USD", "sell_amount": "10" });
    expect_problem(quote(eur).await, 422, "unsupported_currency").await;
    let number = json!({ "sell_currency": "USD", "buy_currency": "CNY", "sell_amount": 10 });
    expect_problem(quote(number).await, 422, "invalid_amount").await;
    let dust = json!({ "sell_currency": "CNY", "buy_currency": "USD", "sell_amount": "0.01" });
    expect_problem(quote(dust).await, 422, "invalid_amount").await;

    // Conversions.
    let convert =
        |key: Option<&'static str>, body: Value| api.member(Method::POST, &token, "/v1/conversions", key, Some(body));
    expect_problem(
        convert(None, json!({ "quote_id": "fxq_01J0000000000000000000000A" })).await,
        400,
        "idempotency_key_required",
    )
    .await;
    expect_problem(
        convert(Some("k"), json!({ "quote_id": "not-a-quote" })).await,
        404,
        "quote_not_found",
    )
    .await;
    expect_problem(
        convert(Some("k"), json!({ "quote_id": "fxq_01J0000000000000000000000A" })).await,
        404,
        "quote_not_found",
    )
    .await;
    expect_problem(convert(Some("k"), json!({})).await, 400, "invalid_request").await;

    // Previews and withdrawals across currencies.
    let preview = |body: Value| api.member(Method::POST, &token, "/v1/withdrawals/preview", None, Some(body));
    expect_problem(
        preview(json!({ "currency": "CNY", "amount": "10", "payout_currency": "USD" })).await,
        422,
        "unsupported_payout",
    )
    .await;
    expect_problem(
        preview(json!({ "currency": "USD", "amount": "1000.01", "payout_currency": "CNY" })).await,
        422,
        "insufficient_funds",
    )
    .await;
    let withdrawal = json!({ "currency": "USD", "amount": "100", "payout_currency": "CNY",
        "payment_password": "Vault-Key-2026!",
        "bank_account": { "holder_name": "Li Wei", "account_number": "6222020200112233", "bank_name": "ICBC" } });
    let withdraw = api
        .member(Method::POST, &token, "/v1/withdrawals", Some("w-1"), Some(withdrawal))
        .await;
    expect_problem(withdraw, 422, "quote_required").await;

    // The platform's balances are internal.
    let anonymous = api
        .client
        .get(api.gw.url("/internal/platform/balances"))
        .send()
        .await
        .unwrap();
    expect_problem(anonymous, 403, "forbidden").await;
    let member = api
        .member(Method::GET, &token, "/internal/platform/balances", None, None)
        .await;
    expect_problem(member, 403, "forbidden").await;

    // Nothing moved.
    let account: Value = api
        .member(Method::GET, &token, "/v1/account", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            account["balances"]["USD"]["available"].as_str(),
            account["balances"]["CNY"]["available"].as_str()
        ),
        (Some("1000.00"), Some("0.00"))
    );
}

for_each_adapter!(
    the_fx_routes_answer_with_the_contracts_shapes,
    bad_fx_requests_get_their_codes_and_change_nothing,
);
