//! Builds the API Gateway HTTP API (v2.0) event for a request, with the authorizer
//! context API Gateway would add, and converts it with `lambda_http`.

use std::collections::HashMap;

use base64::Engine;
use fund_account::error::ApiError;
use fund_account::routes::Route;
use http::request::Parts;
use http::HeaderMap;
use serde_json::{json, Value};

use crate::TOKEN_ISSUER;

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// The JWT authorizer: a valid, unexpired HS256 token's claims, or no authorizer at all
/// (the handler then answers 401, as API Gateway would refuse the call).
pub fn jwt_authorizer(headers: &HeaderMap, secret: &[u8]) -> Option<Value> {
    let token = bearer_token(headers)?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&[TOKEN_ISSUER]);
    validation.set_required_spec_claims(&["exp", "sub", "iss"]);
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<HashMap<String, Value>>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret),
        &validation,
    )
    .ok()?;
    // API Gateway hands claims over as strings.
    let claims: HashMap<String, String> = data
        .claims
        .into_iter()
        .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
        .collect();
    Some(json!({ "jwt": { "claims": claims, "scopes": null } }))
}

/// IAM authorization stand-in: the right `x-internal-key` yields the IAM identity of a
/// local internal service.
pub fn iam_authorizer(headers: &HeaderMap, internal_key: &str) -> Option<Value> {
    let given = headers.get("x-internal-key")?.to_str().ok()?;
    let matches: bool = constant_time_eq(given.as_bytes(), internal_key.as_bytes());
    matches.then(|| {
        json!({ "iam": {
            "accessKey": "LOCALACCESSKEY",
            "accountId": "000000000000",
            "callerId": "LOCALCALLER",
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": "arn:aws:iam::000000000000:user/local-internal-service",
            "userId": "LOCALCALLER"
        }})
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `lambda_http::Request` the Lambda would receive for this HTTP request.
pub fn lambda_request(
    parts: &Parts,
    body: &[u8],
    route: Route,
    path_params: Vec<(String, String)>,
    authorizer: Option<Value>,
) -> Result<lambda_http::Request, ApiError> {
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        headers.insert(name.as_str().to_owned(), json!(values.join(",")));
    }
    let (body_text, base64_encoded) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let route_key = format!("{} {}", route.method(), route.path());
    let mut context = json!({
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": "127.0.0.1",
        "domainPrefix": "local",
        "http": {
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
        },
        "requestId": ulid::Ulid::new().to_string(),
        "routeKey": route_key,
        "stage": "$default",
        "timeEpoch": now,
    });
    if let Some(authorizer) = authorizer {
        context["authorizer"] = authorizer;
    }
    let path_parameters: serde_json::Map<String, Value> =
        path_params.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "pathParameters": path_parameters,
        "requestContext": context,
        "body": body_text,
        "isBase64Encoded": base64_encoded,
    });
    lambda_http::request::from_str(&event.to_string())
        .map_err(|_| ApiError::InvalidRequest("the request could not be read".to_owned()))
}
