//! `GET /v1/fees`, `POST /v1/withdrawals/preview`, `PUT /internal/fx-rates/{pair}`,
//! `POST /v1/fx/quotes`, `POST|GET /v1/conversions` and `GET /internal/platform/balances`.

use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::App;
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::exchange::{self, Fixed, Preview, QuoteRequest, RateUpdate};
use crate::fees::percent_text;
use crate::fx::{shown, Conversion, Mid, Pair, Quote, ReferenceRate};
use crate::http::{
    currency, currency_or, idempotency_key, json_body, member_caller, page_json, page_request, path_param,
    require_internal_caller, MoneyField, Reply,
};
use crate::ids::QuoteId;

pub(super) async fn fees(app: &App, req: Request) -> Result<Reply, ApiError> {
    member_caller(&req)?;
    Ok(Reply::ok(app.fees.view()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    currency: String,
    amount: MoneyField,
    #[serde(default)]
    payout_currency: Option<String>,
}

fn preview_view(p: &Preview) -> Value {
    json!({
        "currency": p.currency.code(),
        "amount": p.amount.to_string(),
        "fee": p.fee.to_string(),
        "net_amount": p.net_amount.to_string(),
        "payout_currency": p.payout_currency.code(),
        "payout_amount": p.payout_amount.to_string(),
        "rate": p.quote.as_ref().map(|q| shown(q.rate, 6)),
        "quote_id": p.quote.as_ref().map(|q| q.id.as_str()),
        "expires_at": p.quote.as_ref().map(|q| q.expires_at.to_rfc3339()),
    })
}

pub(super) async fn preview(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    let body: PreviewBody = json_body(&req)?;
    let amount = body.amount.positive()?;
    let currency = currency(&body.currency)?;
    let payout_currency = currency_or(body.payout_currency.as_deref(), currency)?;
    let preview = exchange::preview(app, &member_id, currency, amount, payout_currency).await?;
    Ok(Reply::ok(preview_view(&preview)))
}

/// A rate field: the contract wants a string; a number is `invalid_rate`, not a 400.
#[derive(Deserialize)]
#[serde(untagged)]
enum RateField {
    Text(String),
    Number(#[expect(dead_code, reason = "only its presence matters: a number is refused")] serde_json::Number),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateBody {
    mid: RateField,
    as_of: String,
    #[serde(default)]
    confirm_jump: bool,
}

fn rate_view(rate: &ReferenceRate) -> Value {
    json!({
        "pair": rate.pair,
        "mid": shown(rate.mid.as_decimal(), 8),
        "as_of": rate.as_of.to_rfc3339(),
        "received_at": rate.received_at.to_rfc3339(),
    })
}

pub(super) async fn put_rate(app: &App, req: Request) -> Result<Reply, ApiError> {
    require_internal_caller(&req)?;
    let pair_text = path_param(&req, "pair")?;
    let body: RateBody = json_body(&req)?;
    let pair = Pair::parse(&pair_text)?;
    let mid = match &body.mid {
        RateField::Text(text) => Mid::parse(text)?,
        RateField::Number(_) => return Err(ApiError::InvalidRate),
    };
    let as_of = Timestamp::parse_rfc3339(&body.as_of)
        .ok_or_else(|| ApiError::InvalidAsOf("as_of must be an RFC 3339 time".to_owned()))?;
    let rate = exchange::put_rate(
        app,
        RateUpdate {
            pair,
            mid,
            as_of,
            confirm_jump: body.confirm_jump,
        },
    )
    .await?;
    Ok(Reply::ok(rate_view(&rate)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuoteBody {
    sell_currency: String,
    buy_currency: String,
    #[serde(default)]
    sell_amount: Option<MoneyField>,
    #[serde(default)]
    buy_amount: Option<MoneyField>,
}

fn quote_view(q: &Quote) -> Value {
    json!({
        "id": q.id.as_str(),
        "sell_currency": q.sell_currency.code(),
        "buy_currency": q.buy_currency.code(),
        "sell_amount": q.sell_amount.to_string(),
        "buy_amount": q.buy_amount.to_string(),
        "rate": shown(q.rate, 6),
        "mid_rate": shown(q.mid_rate, 8),
        "markup_percent": percent_text(q.markup_percent),
        "created_at": q.created_at.to_rfc3339(),
        "expires_at": q.expires_at.to_rfc3339(),
    })
}

pub(super) async fn create_quote(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    let body: QuoteBody = json_body(&req)?;
    let fixed = match (&body.sell_amount, &body.buy_amount) {
        (Some(sell), None) => Fixed::Sell(sell.positive()?),
        (None, Some(buy)) => Fixed::Buy(buy.positive()?),
        _ => {
            return Err(ApiError::InvalidRequest(
                "give exactly one of sell_amount and buy_amount".to_owned(),
            ))
        }
    };
    let (sell, buy) = (currency(&body.sell_currency)?, currency(&body.buy_currency)?);
    Pair::new(sell, buy)?;
    let quote = exchange::create_quote(app, &member_id, QuoteRequest { sell, buy, fixed }).await?;
    Ok(Reply::json(StatusCode::CREATED, quote_view(&quote)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConversionBody {
    quote_id: String,
}

fn conversion_view(c: &Conversion) -> Value {
    json!({
        "id": c.id.as_str(),
        "quote_id": c.quote_id.as_str(),
        "sell_currency": c.sell_currency.code(),
        "sell_amount": c.sell_amount.to_string(),
        "buy_currency": c.buy_currency.code(),
        "buy_amount": c.buy_amount.to_string(),
        "rate": shown(c.rate, 6),
        "created_at": c.created_at.to_rfc3339(),
    })
}

pub(super) async fn create_conversion(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    let key = idempotency_key(&req)?;
    let body: ConversionBody = json_body(&req)?;
    // A quote id of any other shape names no quote: not found, without a store call.
    let quote_id = QuoteId::parse(&body.quote_id).ok_or(ApiError::QuoteNotFound)?;
    let created = exchange::convert(app, &member_id, &key, &quote_id).await?;
    let reply = Reply::json(StatusCode::CREATED, conversion_view(&created.conversion));
    Ok(if created.replayed {
        reply.with_header("idempotent-replayed", "true")
    } else {
        reply
    })
}

pub(super) async fn list_conversions(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    let page = page_request(&req)?;
    let conversions = exchange::conversions(app, &member_id, &page).await?;
    Ok(Reply::ok(page_json(&conversions, |c| c.id.as_str(), conversion_view)))
}

pub(super) async fn platform_balances(app: &App, req: Request) -> Result<Reply, ApiError> {
    require_internal_caller(&req)?;
    let balances = exchange::platform_balances(app).await?;
    let accounts: Vec<Value> = balances
        .iter()
        .map(|b| {
            json!({
                "account": b.account.as_str(),
                "currency": b.currency.code(),
                "balance": b.balance.to_string(),
            })
        })
        .collect();
    Ok(Reply::ok(json!({ "accounts": accounts })))
}
