//! Local-only routes for development and black-box tests (`/dev/...`), and static files
//! for the web client. None of this exists in `template.yaml`.
//!
//! The `/dev` routes create members and mint tokens, so they answer only a local client
//! (see [`guard_caller`] and [`guard_body`]): a web page elsewhere must not reach them
//! through the developer's browser, neither by a cross-site "simple" request (a form
//! or `text/plain` POST needs no CORS preflight) nor by DNS rebinding (a foreign name
//! that resolves to 127.0.0.1).

use fund_account::activation;
use fund_account::error::ApiError;
use fund_account::http::Reply;
use fund_account::member::{MemberId, PhcHash};
use fund_account::password::{self, PaymentPassword};
use fund_account::phone::PhoneNumber;
use http::header::{CONTENT_TYPE, HOST, ORIGIN};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::{into_hyper, issue_token, problem, Gateway, HttpResponse, TOKEN_TTL_SECONDS};

/// The local-only routes and the one method each serves.
const DEV_ROUTES: &[(&str, Method)] = &[
    ("/dev/members", Method::POST),
    ("/dev/login", Method::POST),
    ("/dev/sms", Method::GET),
    ("/dev/events", Method::GET),
    ("/dev/reconcile", Method::POST),
];

/// Where signed download URLs of statement exports point (`/dev/files/<key>`).
const FILES_PREFIX: &str = "/dev/files/";

/// Whether `path` is in the local-only space (`/dev` and everything under it).
pub(crate) fn is_dev_path(path: &str) -> bool {
    path == "/dev" || path.starts_with("/dev/")
}

/// Whether a `Host` value names this machine's loopback interface: `localhost`, an
/// IPv4 loopback address (`127.0.0.1`) or `[::1]`, with or without a port.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let (name, port) = if host.starts_with('[') {
        let Some(end) = host.find(']') else { return false };
        let rest = &host[end + 1..];
        let port = if rest.is_empty() {
            None
        } else {
            match rest.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            }
        };
        (&host[..=end], port)
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok());
    let name_ok = if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
    } else {
        name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
    };
    port_ok && name_ok
}

/// The one value of a header, or `Err` when it is repeated or not visible ASCII.
fn single_header<'a>(parts: &'a Parts, name: &http::header::HeaderName) -> Result<Option<&'a str>, ()> {
    let mut values = parts.headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    first.map(|v| v.to_str().map_err(|_| ())).transpose()
}

/// The first half of the `/dev` guard, before the body is read: the `Host` must be a
/// loopback name or address (DNS rebinding), and an `Origin`, when sent, must be this
/// very origin (`http://` + the `Host`; `null` is foreign). Else the
/// `403 forbidden` to answer.
pub(crate) fn guard_caller(parts: &Parts) -> Option<HttpResponse> {
    let forbidden = |why: &str| {
        tracing::info!(path = parts.uri.path(), why, "/dev request refused");
        Some(problem(ApiError::Forbidden))
    };
    let host = match single_header(parts, &HOST) {
        Ok(Some(host)) => host.to_owned(),
        Ok(None) => match parts.uri.authority() {
            Some(authority) => authority.as_str().to_owned(),
            None => return forbidden("no Host"),
        },
        Err(()) => return forbidden("malformed Host"),
    };
    if !is_loopback_host(&host) {
        return forbidden("Host is not a loopback name or address");
    }
    let same_origin = |origin: &str| {
        origin
            .strip_prefix("http://")
            .is_some_and(|o| o.eq_ignore_ascii_case(&host))
    };
    match single_header(parts, &ORIGIN) {
        Ok(None) => None,
        Ok(Some(origin)) if same_origin(origin) => None,
        _ => forbidden("Origin is not this gateway"),
    }
}

/// Whether a `Content-Type` is JSON: `application/json`, at most with
/// `charset=utf-8`.
pub(crate) fn is_json_content_type(value: &str) -> bool {
    let mut pieces = value.split(';');
    let essence = pieces.next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        && pieces.all(|parameter| {
            let parameter = parameter.trim();
            parameter.is_empty()
                || parameter.split_once('=').is_some_and(|(name, value)| {
                    name.trim().eq_ignore_ascii_case("charset")
                        && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
                })
        })
}

/// The second half of the `/dev` guard: a non-empty body must be declared JSON, else
/// `415 unsupported_media_type` (a `text/plain` or form POST is what a foreign page can
/// send without a CORS preflight). A request without a body passes.
pub(crate) fn guard_body(parts: &Parts, body_is_empty: bool) -> Option<HttpResponse> {
    if body_is_empty {
        return None;
    }
    match single_header(parts, &CONTENT_TYPE) {
        Ok(Some(value)) if is_json_content_type(value) => None,
        _ => {
            tracing::info!(path = parts.uri.path(), "/dev request refused: body is not JSON");
            Some(unsupported_media_type())
        }
    }
}

/// `415 unsupported_media_type` as a problem document, shaped as the handlers shape
/// theirs (the error type has no such refusal: only the local gateway makes it).
fn unsupported_media_type() -> HttpResponse {
    let status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    let body = json!({
        "type": "urn:fund-account:problem:unsupported_media_type",
        "title": status.canonical_reason().unwrap_or("Unsupported Media Type"),
        "status": status.as_u16(),
        "detail": "the body must be JSON, sent with content-type: application/json",
        "code": "unsupported_media_type",
    });
    let mut response = http::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    if let Ok(id) = HeaderValue::from_str(&ulid::Ulid::new().to_string()) {
        headers.insert("x-request-id", id);
    }
    response
}

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

/// Serves a `/dev` request that passed the guard.
pub(crate) async fn handle(gateway: &Gateway, parts: &Parts, body: &[u8]) -> HttpResponse {
    let request_id = ulid::Ulid::new().to_string();
    let outcome = match (&parts.method, parts.uri.path()) {
        (&Method::POST, "/dev/members") => create_member(gateway, body).await,
        (&Method::POST, "/dev/login") => login(gateway, body).await,
        (&Method::GET, "/dev/sms") => sms(gateway, parts).await,
        (&Method::GET, "/dev/events") => events(gateway, parts).await,
        (&Method::POST, "/dev/reconcile") => reconcile(gateway).await,
        (&Method::GET, path) if path.starts_with(FILES_PREFIX) => return download(gateway, parts).await,
        (_, path) => {
            let allowed: Vec<Method> = DEV_ROUTES
                .iter()
                .filter(|(route, _)| *route == path)
                .map(|(_, method)| method.clone())
                .collect();
            return into_hyper(if allowed.is_empty() {
                fund_account::http::respond(&request_id, Err(ApiError::RouteNotFound))
            } else {
                fund_account::http::method_not_allowed(&request_id, &allowed)
            });
        }
    };
    into_hyper(fund_account::http::respond(&request_id, outcome))
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

/// `GET /dev/events?member_id=`: what the local bus received, oldest first by `sequence`
/// (one per event `id`).
async fn events(gateway: &Gateway, parts: &Parts) -> Result<Reply, ApiError> {
    let Some(bus) = &gateway.events else {
        return Err(ApiError::InvalidRequest(
            "events are published only over the embedded store; there is no local bus".to_owned(),
        ));
    };
    let items = bus.events(query_value(parts, "member_id"), 1000).await?;
    Ok(Reply::ok(json!({ "items": items })))
}

/// `POST /dev/reconcile`: the scheduled function, once, now; answers its report.
async fn reconcile(gateway: &Gateway) -> Result<Reply, ApiError> {
    let report =
        fund_account::reconciliation::run(&gateway.app, fund_account::reconciliation::RunOptions::full()).await?;
    Ok(Reply::ok(report.to_json()))
}

/// `GET /dev/files/<key>?name=&expires=&signature=`: a statement export, by the signed
/// URL `GET /v1/statements/exports/{id}` gave (the local stand-in for a presigned S3
/// URL: no token, and only until it expires). A bad or expired signature is `403`,
/// like S3's.
async fn download(gateway: &Gateway, parts: &Parts) -> HttpResponse {
    let key = parts.uri.path().trim_start_matches(FILES_PREFIX);
    let name = query_value(parts, "name").unwrap_or_default();
    let expires = query_value(parts, "expires")
        .and_then(|e| e.parse::<i64>().ok())
        .unwrap_or(0);
    let signature = query_value(parts, "signature").unwrap_or_default();
    let now = gateway.app.now();
    let Some(path) = gateway.files.verified_path(key, expires, &name, &signature, now) else {
        return problem(ApiError::Forbidden);
    };
    let Ok(bytes) = tokio::fs::read(&path).await else {
        return problem(ApiError::RouteNotFound);
    };
    let mut response = http::Response::new(Full::new(Bytes::from(bytes)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    // Only names the signature covers, and only the characters an export name has.
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            headers.insert(http::header::CONTENT_DISPOSITION, value);
        }
    }
    response
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
