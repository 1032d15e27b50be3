//! What each deployed function reads from its environment (the [`App`] is built from it
//! at the Lambda entry, `lambda::aws`).
//!
//! Every function is given only the settings it uses (`template.yaml` declares them per
//! function) and fails its cold start, naming the variable, when one is missing. The
//! deployment tests build every function from exactly the environment the template gives
//! it and check that each variable declared is read and each variable read is declared.

use crate::app::{ConfigError, Fees};
use crate::routes::Route;

/// A deployed function: one per route, and the scheduled reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Http(Route),
    Reconcile,
}

/// The names of the variables the functions read.
pub mod vars {
    /// The DynamoDB table (every function).
    pub const TABLE_NAME: &str = "TABLE_NAME";
    /// The Secrets Manager secret holding the SMS code HMAC key (the functions that hash
    /// codes). The key itself is never in an environment variable.
    pub const CODE_SECRET_ARN: &str = "CODE_SECRET_ARN";
    /// The withdrawal fees (the function that creates withdrawals).
    pub const WITHDRAWAL_FEE_USD: &str = "WITHDRAWAL_FEE_USD";
    pub const WITHDRAWAL_FEE_CNY: &str = "WITHDRAWAL_FEE_CNY";
    /// The reconciliation alert topic (the reconcile function).
    pub const ALERT_TOPIC_ARN: &str = "ALERT_TOPIC_ARN";
    /// The log filter (every function).
    pub const RUST_LOG: &str = "RUST_LOG";
}

impl Function {
    /// Every function `template.yaml` deploys.
    pub fn all() -> impl Iterator<Item = Function> {
        Route::ALL
            .iter()
            .copied()
            .map(Function::Http)
            .chain([Function::Reconcile])
    }

    /// The function's crate and binary (`BuildProperties.Binary` in the template).
    pub fn binary(self) -> &'static str {
        match self {
            Function::Http(route) => route.function(),
            Function::Reconcile => "reconcile",
        }
    }

    /// Whether the function sends SMS (and so links the SNS client).
    pub fn sends_sms(self) -> bool {
        self == Function::Http(Route::SendCode)
    }

    /// Whether the function hashes SMS codes, and so needs the code secret.
    pub fn hashes_codes(self) -> bool {
        matches!(self, Function::Http(Route::SendCode | Route::ConfirmCode))
    }

    /// Whether the function charges withdrawal fees.
    pub fn charges_fees(self) -> bool {
        matches!(self, Function::Http(Route::Withdraw))
    }

    /// Whether the function raises reconciliation alerts.
    pub fn raises_alerts(self) -> bool {
        self == Function::Reconcile
    }
}

/// Where settings come from: the process environment in Lambda, a map in tests.
pub trait Env: Send + Sync {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

pub(crate) fn required(env: &dyn Env, name: &str, what: &str) -> Result<String, ConfigError> {
    env.var(name)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ConfigError(format!("set {name} to {what}")))
}

/// The fees of the function that charges them: both variables required, so a template
/// that forgets one fails the cold start instead of charging a built-in default.
pub fn fees_from(env: &dyn Env) -> Result<Fees, ConfigError> {
    let fee = |name: &str| {
        let text = required(env, name, "a decimal amount such as 15.00")?;
        crate::money::Amount::parse_request(&text)
            .map_err(|_| ConfigError(format!("{name} must be a decimal amount such as 15.00, not {text:?}")))
    };
    Ok(Fees {
        usd: fee(vars::WITHDRAWAL_FEE_USD)?,
        cny: fee(vars::WITHDRAWAL_FEE_CNY)?,
    })
}
