//! Local-only routes for development and black-box tests (`/dev/...`), and static files
//! for the web client. None of this exists in `template.yaml`.

use fund_account::activation;
use fund_account::error::ApiError;
use fund_account::http::Reply;
use fund_account::member::{MemberId, PhcHash};
use fund_account::password::{self, PaymentPassword};
use fund_account::phone::PhoneNumber;
use http::request::Parts;
use http::{Method, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::{into_hyper, issue_token, Gateway, HttpResponse, TOKEN_TTL_SECONDS};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMember {
    member_id: String,
    login_password: String,
    #[serde(default)]
    phone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    member_id: String,
    login_password: String,
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let request = lambda_http::Request::new(lambda_http::Body::Binary(body.to_vec()));
    fund_account::http::json_body(&request)
}

fn query_value(parts: &Parts, name: &str) -> Option<String> {
    let query = parts.uri.query()?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name)
            .then(|| fund_account::routes::percent_decode(&value.replace('+', " ")))
            .flatten()
    })
}

pub(crate) async fn handle(gateway: &Gateway, parts: &Parts, body: &[u8]) -> HttpResponse {
    let outcome = match (&parts.method, parts.uri.path()) {
        (&Method::POST, "/dev/members") => create_member(gateway, body).await,
        (&Method::POST, "/dev/login") => login(gateway, body).await,
        (&Method::GET, "/dev/sms") => sms(gateway, parts).await,
        (&Method::POST, "/dev/reconcile") => reconcile(gateway).await,
        (_, "/dev/members" | "/dev/login" | "/dev/sms" | "/dev/reconcile") => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::RouteNotFound),
    };
    into_hyper(fund_account::http::respond(&ulid::Ulid::new().to_string(), outcome))
}

/// `POST /dev/members`: what the marketplace's member sync would send, with the login
/// password hashed here as the marketplace would hash it.
async fn create_member(gateway: &Gateway, body: &[u8]) -> Result<Reply, ApiError> {
    let request: NewMember = decode(body)?;
    let member_id = MemberId::parse(&request.member_id).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let phone = request
        .phone
        .as_deref()
        .map(PhoneNumber::parse)
        .transpose()
        .map_err(|_| ApiError::InvalidPhone)?;
    if request.login_password.is_empty() {
        return Err(ApiError::InvalidRequest("login_password must not be empty".to_owned()));
    }
    let hash = password::hash_payment_password(PaymentPassword::new(request.login_password))
        .await
        .map_err(|_| ApiError::Internal)?;
    let member = activation::sync_member(&gateway.app, &member_id, PhcHash::new(hash), phone).await?;
    Ok(Reply::json(
        StatusCode::CREATED,
        json!({
            "member_id": member.member_id.as_str(),
            "status": member.status.as_str(),
            "phone": member.phone.as_ref().map(|p| p.masked()),
            "created_at": member.created_at.to_rfc3339(),
        }),
    ))
}

/// `POST /dev/login`: checks the login password against the member's argon2 hash and
/// issues a one-hour token.
async fn login(gateway: &Gateway, body: &[u8]) -> Result<Reply, ApiError> {
    let request: Login = decode(body)?;
    let Ok(member_id) = MemberId::parse(&request.member_id) else {
        return Err(ApiError::InvalidCredentials);
    };
    let Some(state) = gateway.app.store.member_state(&member_id).await? else {
        return Err(ApiError::InvalidCredentials);
    };
    let hash = state.member.login_password_hash.as_str().to_owned();
    let valid = password::verify_password(PaymentPassword::new(request.login_password), hash)
        .await
        .map_err(|_| ApiError::Internal)?;
    if !valid {
        return Err(ApiError::InvalidCredentials);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0);
    let token = issue_token(&gateway.config.jwt_secret, member_id.as_str(), now).map_err(|_| ApiError::Internal)?;
    Ok(Reply::ok(
        json!({ "access_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL_SECONDS }),
    ))
}

/// `GET /dev/sms?phone=`: what the outbox "sent", newest first.
async fn sms(gateway: &Gateway, parts: &Parts) -> Result<Reply, ApiError> {
    let Some(outbox) = &gateway.outbox else {
        return Err(ApiError::InvalidRequest(
            "SMS goes to SNS in this configuration; there is no outbox".to_owned(),
        ));
    };
    let phone = query_value(parts, "phone");
    let messages = outbox.messages(phone, 100).await?;
    let items: Vec<_> = messages
        .into_iter()
        .map(|m| json!({ "phone": m.phone, "message": m.message, "sent_at": m.sent_at.to_rfc3339() }))
        .collect();
    Ok(Reply::ok(json!({ "items": items })))
}

/// `POST /dev/reconcile`: the scheduled function, once, now; answers its report.
async fn reconcile(gateway: &Gateway) -> Result<Reply, ApiError> {
    let report =
        fund_account::reconciliation::run(&gateway.app, fund_account::reconciliation::RunOptions::full()).await?;
    Ok(Reply::ok(report.to_json()))
}

/// A file of the web client, if one matches (`/` is `index.html`).
pub(crate) async fn static_file(gateway: &Gateway, path: &str) -> Option<HttpResponse> {
    let root = gateway.config.web_dir.clone()?;
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() { "index.html" } else { relative };
    if relative.split('/').any(|part| part == ".." || part.starts_with('.')) {
        return None;
    }
    let file = root.join(relative);
    let bytes = tokio::fs::read(&file).await.ok()?;
    let content_type = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    let mut response = http::Response::new(Full::new(Bytes::from(bytes)));
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    Some(response)
}
