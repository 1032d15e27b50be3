//! `GET /v1/statements`, `POST /v1/statements/exports` and
//! `GET /v1/statements/exports/{id}`.

use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::App;
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::export::{self, Export, ExportView};
use crate::http::{currency, decode_cursor, encode_cursor, json_body, member_caller, path_param, query_param, Reply};
use crate::ids::ExportId;
use crate::ledger::Balance;
use crate::statement::{self, Statement, StatementRange, Totals, DEFAULT_LINES, MAX_LINES};

fn balance_view(balance: &Balance) -> Value {
    json!({
        "available": balance.available.to_string(),
        "pending": balance.pending.to_string(),
        "in_transit": balance.in_transit.to_string(),
    })
}

fn totals_view(totals: &Totals) -> Value {
    json!({
        "collected": totals.collected.to_string(),
        "refunded": totals.refunded.to_string(),
        "withdrawn": totals.withdrawn.to_string(),
        "fees": totals.fees.to_string(),
        "converted_in": totals.converted_in.to_string(),
        "converted_out": totals.converted_out.to_string(),
    })
}

fn statement_view(statement: &Statement) -> Value {
    let lines: Vec<Value> = statement
        .lines
        .iter()
        .map(|l| {
            let (line, change, after) = (&l.line, &l.line.change, &l.after);
            json!({
                "id": line.id,
                "time": line.time.to_rfc3339(),
                "type": line.line_type.as_str(),
                "reference": line.reference,
                "description": line.description(),
                "available_change": change.available.to_string(),
                "pending_change": change.pending.to_string(),
                "in_transit_change": change.in_transit.to_string(),
                "available_after": after.available.to_string(),
                "pending_after": after.pending.to_string(),
                "in_transit_after": after.in_transit.to_string(),
            })
        })
        .collect();
    json!({
        "currency": statement.range.currency.code(),
        "from": statement.range.from.to_rfc3339(),
        "to": statement.range.to.to_rfc3339(),
        "opening": balance_view(&statement.opening),
        "closing": balance_view(&statement.closing),
        "totals": totals_view(&statement.totals),
        "lines": lines,
        "next_cursor": statement.next_after.as_deref().map(encode_cursor),
    })
}

/// `from` or `to`: required, RFC 3339 (`400 invalid_request` otherwise).
fn instant(name: &str, text: Option<&str>) -> Result<Timestamp, ApiError> {
    let text = text.ok_or_else(|| ApiError::InvalidRequest(format!("{name} is required")))?;
    Timestamp::parse_rfc3339_rounding_up(text)
        .ok_or_else(|| ApiError::InvalidRequest(format!("{name} must be an RFC 3339 time")))
}

/// The request's currency, `from` and `to` in the contract's order of checks: presence
/// and form (400) before the currency and the range (422).
fn range(currency_text: Option<&str>, from: Option<&str>, to: Option<&str>) -> Result<StatementRange, ApiError> {
    let currency_text = currency_text.ok_or_else(|| ApiError::InvalidRequest("currency is required".to_owned()))?;
    let (from, to) = (instant("from", from)?, instant("to", to)?);
    StatementRange::new(currency(currency_text)?, from, to)
}

pub(super) async fn get(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    let param = |name| query_param(&req, name);
    let limit = match param("limit") {
        None => DEFAULT_LINES,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LINES).contains(n))
            .ok_or_else(|| ApiError::InvalidRequest(format!("limit must be a whole number from 1 to {MAX_LINES}")))?,
    };
    let after = param("cursor")
        .filter(|c| !c.is_empty())
        .map(|c| decode_cursor(&c))
        .transpose()?;
    let range = range(
        param("currency").as_deref(),
        param("from").as_deref(),
        param("to").as_deref(),
    )?;
    let statement = statement::statement(app, &member_id, range, limit, after).await?;
    Ok(Reply::ok(statement_view(&statement)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportBody {
    currency: String,
    from: String,
    to: String,
    format: String,
}

fn export_view(view: &ExportView) -> Value {
    let export: &Export = &view.export;
    json!({
        "id": export.id.as_str(),
        "status": export.status.as_str(),
        "currency": export.currency.code(),
        "from": export.from.to_rfc3339(),
        "to": export.to.to_rfc3339(),
        "format": "csv",
        "lines": export.lines,
        "sha256": export.sha256,
        "download_url": view.download.as_ref().map(|(url, _)| url),
        "expires_at": view.download.as_ref().map(|(_, at)| at.to_rfc3339()),
        "created_at": export.created_at.to_rfc3339(),
    })
}

pub(super) async fn create_export(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    let body: ExportBody = json_body(&req)?;
    let range = range(Some(&body.currency), Some(&body.from), Some(&body.to))?;
    if body.format != "csv" {
        return Err(ApiError::UnsupportedFormat);
    }
    let export = export::request(app, &member_id, range).await?;
    let location = format!("/v1/statements/exports/{}", export.id);
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        export_view(&ExportView { export, download: None }),
    )
    .with_header("location", location))
}

pub(super) async fn get_export(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    // A malformed id names no export: not found, without a store call.
    let id = ExportId::parse(&path_param(&req, "id")?).ok_or(ApiError::ExportNotFound)?;
    let view = export::view(app, &member_id, &id).await?;
    Ok(Reply::ok(export_view(&view)))
}
