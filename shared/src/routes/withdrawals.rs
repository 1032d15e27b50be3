//! `POST /v1/withdrawals`, `GET /v1/withdrawals/{id}`, `GET /v1/withdrawals`, and the
//! payout processor's `POST /internal/withdrawals/{id}/paid|returned`.

use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::App;
use crate::error::ApiError;
use crate::fx::shown;
use crate::http::{
    currency, currency_or, idempotency_key, json_body, member_caller, page_json, page_request, path_param,
    require_internal_caller, MoneyField, Reply,
};
use crate::ids::{QuoteId, WithdrawalId};
use crate::password::PaymentPassword;
use crate::records::{BankAccount, Withdrawal};
use crate::withdrawal::{self, Payout, WithdrawalRequest};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BankAccountBody {
    holder_name: String,
    account_number: String,
    bank_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWithdrawal {
    currency: String,
    amount: MoneyField,
    payment_password: String,
    bank_account: BankAccountBody,
    #[serde(default)]
    payout_currency: Option<String>,
    #[serde(default)]
    quote_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Returned {
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Paid {}

/// The withdrawal as responses show it: the account number reduced to its last 4.
fn withdrawal_view(w: &Withdrawal) -> Value {
    let mut view = json!({
        "id": w.id,
        "currency": w.currency.code(),
        "amount": w.amount.to_string(),
        "fee": w.fee.to_string(),
        "net_amount": w.net_amount.to_string(),
        "status": w.status.as_str(),
        "bank_account": {
            "holder_name": w.bank_account.holder_name,
            "bank_name": w.bank_account.bank_name,
            "account_last4": w.bank_account.last4(),
        },
        "payout_currency": w.payout.as_ref().map_or(w.currency, |p| p.currency).code(),
        "payout_amount": w.payout.as_ref().map_or(w.net_amount, |p| p.amount).to_string(),
        "rate": w.payout.as_ref().map(|p| shown(p.rate, 6)),
        "quote_id": w.payout.as_ref().map(|p| p.quote_id.as_str()),
        "created_at": w.created_at.to_rfc3339(),
        "updated_at": w.updated_at.to_rfc3339(),
    });
    if let Some(reason) = &w.return_reason {
        view["return_reason"] = json!(reason);
    }
    view
}

/// Longest return reason kept.
const MAX_REASON_CHARS: usize = 500;

pub(super) async fn create(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    let key = idempotency_key(&req)?;
    let body: CreateWithdrawal = json_body(&req)?;
    let amount = body.amount.positive()?;
    let currency = currency(&body.currency)?;
    let payout_currency = currency_or(body.payout_currency.as_deref(), currency)?;
    // A quote id of any other shape names no quote: not found, without a store call.
    let quote_id = body
        .quote_id
        .as_deref()
        .map(|id| QuoteId::parse(id).ok_or(ApiError::QuoteNotFound))
        .transpose()?;
    let bank_account = BankAccount::parse(
        body.bank_account.holder_name,
        body.bank_account.account_number,
        body.bank_account.bank_name,
    )?;
    let request = WithdrawalRequest {
        key,
        currency,
        amount,
        password: PaymentPassword::new(body.payment_password),
        bank_account,
        payout_currency,
        quote_id,
    };
    let created = withdrawal::withdraw(app, &member_id, request).await?;
    // A replay shows the withdrawal as it was created, so its body is the first one's.
    let reply = Reply::json(StatusCode::CREATED, withdrawal_view(&created.withdrawal));
    Ok(if created.replayed {
        reply.with_header("idempotent-replayed", "true")
    } else {
        reply
    })
}

/// The `{id}` of the path: anything that is not a withdrawal id's shape is "not found",
/// without a store call.
fn withdrawal_id(req: &Request) -> Result<WithdrawalId, ApiError> {
    WithdrawalId::parse(&path_param(req, "id")?).ok_or(ApiError::WithdrawalNotFound)
}

pub(super) async fn get(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    let id = withdrawal_id(&req)?;
    let found = withdrawal::member_withdrawal(app, &member_id, &id).await?;
    Ok(Reply::ok(withdrawal_view(&found)))
}

pub(super) async fn list(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    let page = page_request(&req)?;
    let found = app.store.withdrawals(&member_id, &page).await?;
    Ok(Reply::ok(page_json(&found, |w| w.id.as_str(), withdrawal_view)))
}

pub(super) async fn paid(app: &App, req: Request) -> Result<Reply, ApiError> {
    require_internal_caller(&req)?;
    let Paid {} = json_body(&req)?;
    let id = withdrawal_id(&req)?;
    let settled = withdrawal::report_payout(app, &id, Payout::Paid).await?;
    Ok(Reply::ok(withdrawal_view(&settled)))
}

pub(super) async fn returned(app: &App, req: Request) -> Result<Reply, ApiError> {
    require_internal_caller(&req)?;
    let body: Returned = json_body(&req)?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::InvalidRequest(format!(
            "reason must be 1 to {MAX_REASON_CHARS} characters"
        )));
    }
    let id = withdrawal_id(&req)?;
    let settled = withdrawal::report_payout(
        app,
        &id,
        Payout::Returned {
            reason: reason.to_owned(),
        },
    )
    .await?;
    Ok(Reply::ok(withdrawal_view(&settled)))
}
