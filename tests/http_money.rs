//! Money routes over HTTP through the local gateway: the README's journey (collect,
//! settle, withdraw part and the rest, payouts, the ledger) and every bad input of the
//! contract, each answered with its documented error and changing nothing.

use fund_account_tests::expect_problem;
use fund_account_tests::{for_each_adapter, Adapter, GatewayClient};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

/// The gateway's client, with the calls these tests make most.
struct Api(GatewayClient);

impl std::ops::Deref for Api {
    type Target = GatewayClient;
    fn deref(&self) -> &GatewayClient {
        &self.0
    }
}

impl Api {
    async fn start(adapter: Adapter) -> Api {
        Api(GatewayClient::start(adapter).await)
    }

    async fn internal(&self, path: &str, body: Value) -> Response {
        self.0.internal(Method::POST, path, Some(body)).await
    }

    async fn withdraw(&self, token: &str, key: Option<&str>, body: &Value) -> Response {
        self.member(Method::POST, token, "/v1/withdrawals", key, Some(body.clone()))
            .await
    }

    async fn get(&self, token: &str, path: &str) -> Value {
        let response = self.member(Method::GET, token, path, None, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }
}

fn withdrawal(currency: &str, amount: &str) -> Value {
    json!({
        "currency": currency,
        "amount": amount,
        "payment_password": "Vault-Key-2026!",
        "bank_account": { "holder_name": "Li Wei", "account_number": "6222020200112233", "bank_name": "ICBC" },
    })
}

async fn collect_settle_withdraw_pay_and_return_over_http(adapter: Adapter) {
    let api = Api::start(adapter).await;
    let token = api.active_member("seller-1").await;
    let body = json!({ "collection_id": "col-1", "member_id": "seller-1", "currency": "USD", "amount": "1500" });
    let created = api.internal("/internal/collections", body.clone()).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let first: Value = created.json().await.unwrap();
    assert_eq!(first["amount"], "1500.00");
    let repeat = api.internal("/internal/collections", body).await;
    assert_eq!(repeat.status(), StatusCode::OK);
    assert_eq!(repeat.json::<Value>().await.unwrap(), first);
    let conflict = api
        .internal(
            "/internal/collections",
            json!({ "collection_id": "col-1", "member_id": "seller-1", "currency": "USD", "amount": "1" }),
        )
        .await;
    expect_problem(conflict, 409, "collection_conflict").await;
    assert_eq!(
        api.get(&token, "/v1/account").await["balances"]["USD"]["pending"],
        "1500.00"
    );

    api.settle().await;
    let usd = &api.get(&token, "/v1/account").await["balances"]["USD"];
    assert_eq!(
        (usd["available"].as_str(), usd["pending"].as_str()),
        (Some("1500.00"), Some("0.00"))
    );

    let part = api.withdraw(&token, Some("wd-1"), &withdrawal("USD", "500")).await;
    assert_eq!(part.status(), StatusCode::CREATED);
    assert!(part.headers().get("idempotent-replayed").is_none());
    let part_text = part.text().await.unwrap();
    let part: Value = serde_json::from_str(&part_text).unwrap();
    assert_eq!(
        (part["fee"].as_str(), part["net_amount"].as_str()),
        (Some("15.00"), Some("485.00"))
    );
    assert_eq!(part["bank_account"]["account_last4"], "2233");
    assert!(
        !part_text.contains("6222020200112233"),
        "responses show the last four digits only"
    );
    let replay = api.withdraw(&token, Some("wd-1"), &withdrawal("USD", "500.00")).await;
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(
        replay.text().await.unwrap(),
        part_text,
        "a replay is byte for byte the first answer"
    );
    expect_problem(
        api.withdraw(&token, Some("wd-1"), &withdrawal("USD", "501")).await,
        422,
        "idempotency_key_reused",
    )
    .await;

    let rest = api.withdraw(&token, Some("wd-2"), &withdrawal("USD", "1000")).await;
    assert_eq!(rest.status(), StatusCode::CREATED);
    let rest: Value = rest.json().await.unwrap();
    let short = api.withdraw(&token, Some("wd-3"), &withdrawal("USD", "100")).await;
    assert_eq!(
        expect_problem(short, 422, "insufficient_funds").await["available"],
        "0.00"
    );

    let paid = api
        .internal(
            &format!("/internal/withdrawals/{}/paid", part["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(paid.json::<Value>().await.unwrap()["status"], "paid");
    let returned = api
        .internal(
            &format!("/internal/withdrawals/{}/returned", rest["id"].as_str().unwrap()),
            json!({ "reason": "account closed" }),
        )
        .await;
    assert_eq!(returned.json::<Value>().await.unwrap()["status"], "returned");
    let again = api
        .internal(
            &format!("/internal/withdrawals/{}/paid", rest["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    expect_problem(again, 409, "withdrawal_already_settled").await;

    let usd = &api.get(&token, "/v1/account").await["balances"]["USD"];
    assert_eq!(
        (usd["available"].as_str(), usd["in_transit"].as_str()),
        (Some("1000.00"), Some("0.00"))
    );

    let listed = api.get(&token, "/v1/withdrawals?limit=1").await;
    assert_eq!(listed["items"][0]["id"], rest["id"]);
    let cursor = listed["next_cursor"].as_str().unwrap().to_owned();
    let older = api
        .get(&token, &format!("/v1/withdrawals?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(older["items"][0]["id"], part["id"]);
    assert_eq!(older["next_cursor"], Value::Null);
    assert_eq!(
        api.get(&token, &format!("/v1/withdrawals/{}", part["id"].as_str().unwrap()))
            .await["status"],
        "paid"
    );

    let ledger = api.get(&token, "/v1/account/transactions?currency=USD&limit=100").await;
    let types: Vec<&str> = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    let count = |t: &str| types.iter().filter(|x| **x == t).count();
    assert_eq!(types.len(), 11, "{types:?}");
    assert_eq!(types.last(), Some(&"collection"), "oldest last");
    assert_eq!(
        (
            count("collection"),
            count("collection_settled"),
            count("withdrawal"),
            count("withdrawal_paid"),
            count("withdrawal_fee"),
            count("withdrawal_returned")
        ),
        (1, 2, 4, 1, 1, 2)
    );
    let sum = |bucket: &str| -> i64 {
        ledger["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["bucket"] == bucket)
            .map(|e| e["amount"].as_str().unwrap().replace('.', "").parse::<i64>().unwrap())
            .sum()
    };
    assert_eq!((sum("available"), sum("pending"), sum("in_transit")), (100_000, 0, 0));

    let report: Value = api
        .client
        .post(api.gw.url("/dev/reconcile"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["accounts_checked"], 1);
    assert_eq!(report["discrepancies"], json!([]));
    assert_eq!(
        report["settled"],
        json!({ "count": 0, "amounts": { "USD": "0.00", "CNY": "0.00" } })
    );
    api.0.gw.stop().await;
}

async fn bad_money_requests_get_their_documented_errors_and_change_nothing(adapter: Adapter) {
    let api = Api::start(adapter).await;
    let token = api.active_member("seller-2").await;
    let other = api.active_member("seller-3").await;
    api.internal(
        "/internal/collections",
        json!({ "collection_id": "c", "member_id": "seller-2", "currency": "CNY", "amount": "100" }),
    )
    .await;
    api.settle().await;
    let before = api.get(&token, "/v1/account").await;

    expect_problem(
        api.withdraw(&token, None, &withdrawal("CNY", "10")).await,
        400,
        "idempotency_key_required",
    )
    .await;
    expect_problem(
        api.withdraw(&token, Some(&"k".repeat(256)), &withdrawal("CNY", "10"))
            .await,
        400,
        "invalid_idempotency_key",
    )
    .await;
    for (amount, code) in [
        (json!("-1"), "invalid_amount"),
        (json!("0"), "invalid_amount"),
        (json!("0.00"), "invalid_amount"),
        (json!("1e3"), "invalid_amount"),
        (json!("10.001"), "invalid_amount"),
        (json!("1000000000000"), "invalid_amount"),
        (json!(10), "invalid_amount"),
        (json!(10.5), "invalid_amount"),
    ] {
        let mut body = withdrawal("CNY", "1");
        body["amount"] = amount.clone();
        expect_problem(api.withdraw(&token, Some("k"), &body).await, 422, code).await;
    }
    let mut body = withdrawal("CNY", "1");
    body["amount"] = json!(true);
    expect_problem(api.withdraw(&token, Some("k"), &body).await, 400, "invalid_request").await;
    expect_problem(
        api.withdraw(&token, Some("k"), &withdrawal("EUR", "10")).await,
        422,
        "unsupported_currency",
    )
    .await;
    expect_problem(
        api.withdraw(&token, Some("k"), &withdrawal("usd", "10")).await,
        422,
        "unsupported_currency",
    )
    .await;
    let mut body = withdrawal("CNY", "10");
    body["bank_account"]["account_number"] = json!("12");
    expect_problem(
        api.withdraw(&token, Some("k"), &body).await,
        422,
        "invalid_bank_account",
    )
    .await;
    let mut body = withdrawal("CNY", "10");
    body["note"] = json!("x");
    expect_problem(api.withdraw(&token, Some("k"), &body).await, 400, "invalid_request").await;
    let mut body = withdrawal("CNY", "10");
    body["bank_account"]["iban"] = json!("x");
    expect_problem(api.withdraw(&token, Some("k"), &body).await, 400, "invalid_request").await;
    let mut body = withdrawal("CNY", "10");
    body["payment_password"] = json!("Wrong-Pass-1");
    let wrong = expect_problem(
        api.withdraw(&token, Some("k"), &body).await,
        403,
        "payment_password_incorrect",
    )
    .await;
    assert_eq!(wrong["attempts_left"], 4);
    assert!(!wrong.to_string().contains("Wrong-Pass-1"));
    expect_problem(
        api.withdraw(&token, Some("k"), &withdrawal("CNY", "100.01")).await,
        422,
        "insufficient_funds",
    )
    .await;

    // Another member's withdrawal is not found, and lists are per member.
    let mine: Value = api
        .withdraw(&token, Some("k"), &withdrawal("CNY", "1"))
        .await
        .json()
        .await
        .unwrap();
    let response = api
        .client
        .get(api.gw.url(&format!("/v1/withdrawals/{}", mine["id"].as_str().unwrap())))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    expect_problem(response, 404, "withdrawal_not_found").await;
    assert_eq!(api.get(&other, "/v1/withdrawals").await["items"], json!([]));
    let huge = format!("/v1/withdrawals/wd_{}", "x".repeat(5000));
    let response = api
        .client
        .get(api.gw.url(&huge))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_problem(response, 404, "withdrawal_not_found").await;
    for query in ["limit=0", "limit=101", "limit=x", "cursor=not-a-cursor"] {
        let response = api
            .client
            .get(api.gw.url(&format!("/v1/withdrawals?{query}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        expect_problem(response, 400, "invalid_request").await;
    }
    let response = api
        .client
        .get(api.gw.url("/v1/account/transactions?currency=JPY"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_problem(response, 422, "unsupported_currency").await;

    // Internal routes: validation, unknown references.
    let bad_collections = [
        (
            json!({ "collection_id": "c2", "member_id": "seller-2", "currency": "CNY" }),
            400,
            "invalid_request",
        ),
        (
            json!({ "collection_id": "c2", "member_id": "seller-2", "currency": "CNY", "amount": 5 }),
            422,
            "invalid_amount",
        ),
        (
            json!({ "collection_id": "c2", "member_id": "seller-2", "currency": "GBP", "amount": "5" }),
            422,
            "unsupported_currency",
        ),
        (
            json!({ "collection_id": "c2", "member_id": "nobody", "currency": "CNY", "amount": "5" }),
            404,
            "member_not_found",
        ),
        (
            json!({ "collection_id": "c 2", "member_id": "seller-2", "currency": "CNY", "amount": "5" }),
            400,
            "invalid_request",
        ),
        (
            json!({ "collection_id": "c2", "member_id": "seller-2", "currency": "CNY", "amount": "5", "available_at": "tomorrow" }),
            400,
            "invalid_request",
        ),
    ];
    for (body, status, code) in bad_collections {
        expect_problem(api.internal("/internal/collections", body).await, status, code).await;
    }
    expect_problem(
        api.internal(
            "/internal/refunds",
            json!({ "refund_id": "r", "collection_id": "nope", "amount": "1" }),
        )
        .await,
        404,
        "collection_not_found",
    )
    .await;
    let exceeds = api
        .internal(
            "/internal/refunds",
            json!({ "refund_id": "r", "collection_id": "c", "amount": "100.01" }),
        )
        .await;
    assert_eq!(
        expect_problem(exceeds, 422, "refund_exceeds_collection").await["refundable"],
        "100.00"
    );
    expect_problem(
        api.internal("/internal/withdrawals/wd_nope/paid", json!({})).await,
        404,
        "withdrawal_not_found",
    )
    .await;
    expect_problem(
        api.internal("/internal/withdrawals/wd_nope/returned", json!({})).await,
        400,
        "invalid_request",
    )
    .await;
    let no_key = api
        .client
        .post(api.gw.url("/internal/collections"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(no_key, 403, "forbidden").await;

    let after = api.get(&token, "/v1/account").await;
    assert_eq!(
        after["balances"]["CNY"]["available"], "99.00",
        "only the one valid withdrawal moved money"
    );
    assert_eq!(before["balances"]["USD"], after["balances"]["USD"]);
    api.0.gw.stop().await;
}

for_each_adapter!(
    collect_settle_withdraw_pay_and_return_over_http,
    bad_money_requests_get_their_documented_errors_and_change_nothing,
);
