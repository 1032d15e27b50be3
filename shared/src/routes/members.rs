//! `PUT /internal/members/{member_id}`.

use lambda_http::Request;
use serde::Deserialize;
use serde_json::json;

use crate::activation;
use crate::app::App;
use crate::error::ApiError;
use crate::http::{json_body, path_param, require_internal_caller, Reply};
use crate::member::{MemberId, PhcHash};
use crate::password::is_argon2id_phc;
use crate::phone::PhoneNumber;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberSync {
    login_password_hash: String,
    /// Omitted or null: no bound phone.
    #[serde(default)]
    phone: Option<String>,
}

pub(super) async fn sync(app: &App, req: Request) -> Result<Reply, ApiError> {
    require_internal_caller(&req)?;
    let member_id =
        MemberId::parse(&path_param(&req, "member_id")?).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let body: MemberSync = json_body(&req)?;
    if !is_argon2id_phc(&body.login_password_hash) {
        return Err(ApiError::InvalidPasswordHash);
    }
    let phone = body
        .phone
        .as_deref()
        .map(PhoneNumber::parse)
        .transpose()
        .map_err(|_| ApiError::InvalidPhone)?;
    let member = activation::sync_member(app, &member_id, PhcHash::new(body.login_password_hash), phone).await?;
    Ok(Reply::ok(json!({
        "member_id": member.member_id.as_str(),
        "status": member.status.as_str(),
        "phone": member.phone.as_ref().map(|p| p.masked()),
        "created_at": member.created_at.to_rfc3339(),
        "updated_at": member.updated_at.to_rfc3339(),
    })))
}
