//! `POST /v1/activation`, `/v1/activation/code` and `/v1/activation/confirm`.

use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::json;

use crate::activation::{self, Activation};
use crate::app::App;
use crate::error::ApiError;
use crate::http::{json_body, member_caller, Reply};
use crate::password::PaymentPassword;
use crate::verification::SmsCode;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPassword {
    payment_password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendCode {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmCode {
    code: String,
}

pub(super) async fn activate(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    let body: SetPassword = json_body(&req)?;
    let password = PaymentPassword::new(body.payment_password);
    match activation::set_payment_password(app, &member_id, password).await? {
        Activation::Active => Ok(Reply::ok(json!({ "status": "active" }))),
        Activation::PendingVerification { phone } => Ok(Reply::json(
            StatusCode::ACCEPTED,
            json!({ "status": "pending_verification", "phone": phone.masked() }),
        )),
    }
}

pub(super) async fn send_code(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    let SendCode {} = json_body(&req)?;
    let sent = activation::send_code(app, &member_id).await?;
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        json!({
            "phone": sent.phone.masked(),
            "expires_at": sent.expires_at.to_rfc3339(),
            "resend_after": sent.resend_after.to_rfc3339(),
        }),
    ))
}

pub(super) async fn confirm_code(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    let body: ConfirmCode = json_body(&req)?;
    let code =
        SmsCode::parse(&body.code).map_err(|_| ApiError::InvalidRequest("code must be exactly 6 digits".to_owned()))?;
    activation::confirm_code(app, &member_id, &code).await?;
    Ok(Reply::ok(json!({ "status": "active" })))
}
