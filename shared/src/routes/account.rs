//! `GET /v1/account`.

use lambda_http::Request;
use serde_json::{json, Map, Value};

use crate::activation;
use crate::app::App;
use crate::error::ApiError;
use crate::http::{member_caller, Reply};
use crate::ledger::Balances;
use crate::money::Currency;

pub(super) fn balances_json(balances: &Balances) -> Value {
    let mut map = Map::new();
    for currency in Currency::ALL {
        let b = balances.get(currency);
        map.insert(
            currency.code().to_owned(),
            json!({
                "available": b.available.to_string(),
                "pending": b.pending.to_string(),
                "in_transit": b.in_transit.to_string(),
            }),
        );
    }
    Value::Object(map)
}

pub(super) async fn get_account(app: &App, req: Request) -> Result<Reply, ApiError> {
    let member_id = member_caller(&req)?;
    let state = activation::account(app, &member_id).await?;
    let member = &state.member;
    Ok(Reply::ok(json!({
        "member_id": member.member_id.as_str(),
        "status": member.status.as_str(),
        "phone": member.phone.as_ref().map(|p| p.masked()),
        "balances": balances_json(&state.balances),
    })))
}
