//! `POST /internal/collections`, `POST /internal/refunds` and the member's
//! `GET /v1/account/transactions`.

use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::App;
use crate::clock::Timestamp;
use crate::collection::{self, NewCollection, NewRefund};
use crate::error::ApiError;
use crate::http::{
    currency, json_body, member_caller, page_json, page_request, query_param, require_internal_caller, MoneyField,
    Reply,
};
use crate::ids::ExternalId;
use crate::ledger::LedgerEntry;
use crate::member::MemberId;
use crate::records::{Collection, Refund};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCollection {
    collection_id: String,
    member_id: String,
    currency: String,
    amount: MoneyField,
    #[serde(default)]
    available_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRefund {
    refund_id: String,
    collection_id: String,
    amount: MoneyField,
}

fn external_id(name: &str, id: &str) -> Result<ExternalId, ApiError> {
    ExternalId::parse(id).ok_or_else(|| {
        ApiError::InvalidRequest(format!(
            "{name} must be 1 to 128 characters of letters, digits, '.', '_', ':', '-'"
        ))
    })
}

/// The collection as its creation answered: a repeat gets the first result again.
fn collection_created_view(c: &Collection) -> Value {
    json!({
        "collection_id": c.collection_id,
        "member_id": c.member_id.as_str(),
        "currency": c.currency.code(),
        "amount": c.amount.to_string(),
        "status": "pending",
        "available_at": c.available_at.to_rfc3339(),
        "created_at": c.created_at.to_rfc3339(),
    })
}

fn refund_view(r: &Refund) -> Value {
    json!({
        "refund_id": r.refund_id,
        "collection_id": r.collection_id,
        "member_id": r.member_id.as_str(),
        "currency": r.currency.code(),
        "amount": r.amount.to_string(),
        "taken_from": r.taken_from.as_str(),
        "created_at": r.created_at.to_rfc3339(),
    })
}

fn ledger_view(e: &LedgerEntry) -> Value {
    json!({
        "id": e.id,
        "type": e.entry_type.as_str(),
        "currency": e.currency.code(),
        "bucket": e.bucket.as_str(),
        "amount": e.amount.to_string(),
        "reference": e.reference,
        "created_at": e.created_at.to_rfc3339(),
    })
}

fn created_or_repeat(created: bool, body: Value) -> Reply {
    Reply::json(if created { StatusCode::CREATED } else { StatusCode::OK }, body)
}

pub(super) async fn create_collection(app: &App, req: Request) -> Result<Reply, ApiError> {
    require_internal_caller(&req)?;
    let body: CreateCollection = json_body(&req)?;
    let collection_id = external_id("collection_id", &body.collection_id)?;
    let member_id = MemberId::parse(&body.member_id).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let available_at = body
        .available_at
        .as_deref()
        .map(|text| {
            Timestamp::parse_rfc3339(text)
                .ok_or_else(|| ApiError::InvalidRequest("available_at must be an RFC 3339 time".to_owned()))
        })
        .transpose()?;
    let amount = body.amount.positive()?;
    let currency = currency(&body.currency)?;
    let request = NewCollection {
        collection_id,
        member_id,
        currency,
        amount,
        available_at,
    };
    let outcome = collection::collect(app, request).await?;
    Ok(created_or_repeat(
        outcome.created,
        collection_created_view(&outcome.record),
    ))
}

pub(super) async fn create_refund(app: &App, req: Request) -> Result<Reply, ApiError> {
    require_internal_caller(&req)?;
    let body: CreateRefund = json_body(&req)?;
    let refund_id = external_id("refund_id", &body.refund_id)?;
    let collection_id = external_id("collection_id", &body.collection_id)?;
    let amount = body.amount.positive()?;
    let outcome = collection::refund(
        app,
        NewRefund {
            refund_id,
            collection_id,
            amount,
        },
    )
    .await?;
    Ok(created_or_repeat(outcome.created, refund_view(&outcome.record)))
}

pub(super) async fn transactions(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    let page = page_request(&req)?;
    let currency = query_param(&req, "currency").map(|c| currency(&c)).transpose()?;
    let found = app.store.ledger(&member_id, currency, &page).await?;
    Ok(Reply::ok(page_json(&found, |e| e.id.as_str(), ledger_view)))
}
