//! The HTTP edge shared by every route: who is calling, request decoding within the
//! contract's limits, and problem+json responses with `x-request-id`.

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::member::MemberId;

/// Largest request body the contract accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A successful answer: status, JSON body and extra headers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: Vec<(HeaderName, String)>,
}

impl Reply {
    pub fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            body,
            headers: Vec::new(),
        }
    }

    pub fn ok(body: Value) -> Reply {
        Reply::json(StatusCode::OK, body)
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((HeaderName::from_static(name), value.into()));
        self
    }
}

/// The request id API Gateway assigned, or a fresh one when there is none.
pub fn request_id(req: &Request) -> String {
    let from_context = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    from_context
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| ulid::Ulid::new().to_string())
}

/// The member calling a `/v1` route: the `sub` claim the JWT authorizer verified. Never
/// read from a header, path or body.
pub fn member_caller(req: &Request) -> Result<MemberId, ApiError> {
    let sub = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .and_then(|jwt| jwt.claims.get("sub"))
            .cloned(),
        _ => None,
    };
    sub.and_then(|s| MemberId::parse(&s).ok()).ok_or(ApiError::Unauthorized)
}

/// Checks that an `/internal` route was called with an IAM identity (API Gateway's IAM
/// authorization fills it in; nothing else does).
pub fn require_internal_caller(req: &Request) -> Result<(), ApiError> {
    let has_identity = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.iam.as_ref())
            .is_some_and(|iam| iam.user_arn.is_some() || iam.caller_id.is_some() || iam.access_key.is_some()),
        _ => false,
    };
    if has_identity {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Decodes a JSON body: at most 64 KiB, no unknown fields (the request types say
/// `deny_unknown_fields`), every required field present with its JSON type. An empty
/// body reads as `{}`. The error names the field, never its value (it may be a secret).
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    // Through `Value` first: serde's derived structs would also accept a JSON array.
    let value: Value =
        serde_json::from_slice(bytes).map_err(|_| ApiError::InvalidRequest("body is not valid JSON".to_owned()))?;
    if !value.is_object() {
        return Err(ApiError::InvalidRequest("body must be a JSON object".to_owned()));
    }
    let value: T = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ApiError::InvalidRequest(describe_json_error(&path, &inner))
    })?;
    Ok(value)
}

fn describe_json_error(path: &str, error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => "body is not valid JSON".to_owned(),
        Category::Data => {
            let message = error.to_string();
            // serde's own messages for these two name only fields, never values.
            if message.starts_with("unknown field") || message.starts_with("missing field") {
                let without_position = message.split(" at line").next().unwrap_or(&message);
                return without_position.to_owned();
            }
            if path.is_empty() || path == "." {
                "body must be a JSON object of the documented shape".to_owned()
            } else {
                format!("field `{path}` has the wrong JSON type or value")
            }
        }
    }
}

/// A single query parameter, if present.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_owned)
}

/// A path parameter the route declares.
pub fn path_param(req: &Request, name: &str) -> Result<String, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
        .ok_or(ApiError::RouteNotFound)
}

/// Turns a route's outcome into the HTTP response, logging it without any secret.
pub fn respond(request_id: &str, outcome: Result<Reply, ApiError>) -> Response<Body> {
    let (status, body, headers, content_type) = match outcome {
        Ok(reply) => (reply.status, reply.body, reply.headers, "application/json"),
        Err(error) => {
            let mut headers = Vec::new();
            if let Some(seconds) = error.retry_after_seconds() {
                headers.push((RETRY_AFTER, seconds.to_string()));
            }
            if error.status().is_server_error() {
                tracing::error!(request_id, code = error.code(), "request failed");
            } else {
                tracing::info!(
                    request_id,
                    code = error.code(),
                    status = error.status().as_u16(),
                    "request refused"
                );
            }
            (error.status(), error.problem(), headers, "application/problem+json")
        }
    };
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        h.insert(HeaderName::from_static("x-request-id"), value);
    }
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            h.insert(name, value);
        }
    }
    response
}

/// `405 method_not_allowed` with the `Allow` header RFC 9110 asks for: the methods the
/// path serves, e.g. `GET, POST`.
pub fn method_not_allowed(request_id: &str, allowed: &[http::Method]) -> Response<Body> {
    let mut response = respond(request_id, Err(ApiError::MethodNotAllowed));
    if let Ok(value) = HeaderValue::from_str(&allow_header(allowed)) {
        response.headers_mut().insert(http::header::ALLOW, value);
    }
    response
}

/// The value of an `Allow` header: the methods sorted by name, without repeats.
pub fn allow_header(allowed: &[http::Method]) -> String {
    let mut names: Vec<&str> = allowed.iter().map(http::Method::as_str).collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

/// A money field as requests carry it: the contract wants a string; a JSON number is an
/// `invalid_amount` (422), any other type a malformed request (400).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum MoneyField {
    Text(String),
    Number(serde_json::Number),
}

impl MoneyField {
    /// A positive amount, or the contract's 422.
    pub fn positive(&self) -> Result<crate::money::Amount, ApiError> {
        match self {
            MoneyField::Text(text) => {
                crate::money::Amount::parse_positive(text).map_err(|e| ApiError::InvalidAmount(format!("amount: {e}")))
            }
            MoneyField::Number(_) => Err(ApiError::InvalidAmount(
                "amount must be a JSON string such as \"10.50\", not a number".to_owned(),
            )),
        }
    }
}

/// The `Idempotency-Key` header: required (`400 idempotency_key_required`) and
/// well-formed (`400 invalid_idempotency_key`).
pub fn idempotency_key(req: &Request) -> Result<crate::records::IdempotencyKey, ApiError> {
    match req.headers().get("idempotency-key") {
        None => Err(ApiError::IdempotencyKeyRequired),
        Some(value) => {
            crate::records::IdempotencyKey::parse(value.to_str().map_err(|_| ApiError::InvalidIdempotencyKey)?)
        }
    }
}

/// A currency code, or `422 unsupported_currency`.
pub fn currency(code: &str) -> Result<crate::money::Currency, ApiError> {
    crate::money::Currency::parse(code).map_err(|_| ApiError::UnsupportedCurrency)
}

/// An optional currency field (`payout_currency`): `default` when left out (or null),
/// else `422 unsupported_currency` unless it is one.
pub fn currency_or(code: Option<&str>, default: crate::money::Currency) -> Result<crate::money::Currency, ApiError> {
    code.map_or(Ok(default), currency)
}

/// Most items a list page returns, and the default.
pub const MAX_PAGE_LIMIT: usize = 100;
pub const DEFAULT_PAGE_LIMIT: usize = 20;
const CURSOR_PREFIX: &str = "c1:";

/// `limit` (1 to 100, default 20) and `cursor` of a list route.
pub fn page_request(req: &Request) -> Result<crate::store::PageRequest, ApiError> {
    let limit = match query_param(req, "limit") {
        None => DEFAULT_PAGE_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::InvalidRequest(format!("limit must be a whole number from 1 to {MAX_PAGE_LIMIT}"))
            })?,
    };
    let before = query_param(req, "cursor")
        .filter(|c| !c.is_empty())
        .map(|c| decode_cursor(&c))
        .transpose()?;
    Ok(crate::store::PageRequest { limit, before })
}

/// An opaque cursor for the item a page ended with.
pub fn encode_cursor(last_id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{last_id}"))
}

/// The item id an [`encode_cursor`] cursor names, or `400 invalid_request`.
pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    use base64::Engine;
    let invalid = || ApiError::InvalidRequest("cursor is not one this API returned".to_owned());
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let id = text.strip_prefix(CURSOR_PREFIX).ok_or_else(invalid)?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(invalid());
    }
    Ok(id.to_owned())
}

/// A list page as the contract shows it: `{"items", "next_cursor"}`.
pub fn page_json<T>(page: &crate::store::Page<T>, id: impl Fn(&T) -> &str, view: impl Fn(&T) -> Value) -> Value {
    let next_cursor = if page.more {
        page.items.last().map(|last| encode_cursor(id(last)))
    } else {
        None
    };
    serde_json::json!({
        "items": page.items.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })
}
