//! What each deployed function reads from its environment, and the [`App`] built from it.
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

    /// Whether the function hashes SMS codes, and so needs the code secret.
    pub fn hashes_codes(self) -> bool {
        matches!(self, Function::Http(Route::SendCode | Route::ConfirmCode))
    }

    /// Whether the function charges withdrawal fees.
    pub fn charges_fees(self) -> bool {
        matches!(self, Function::Http(Route::CreateWithdrawal))
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

fn required(env: &dyn Env, name: &str, what: &str) -> Result<String, ConfigError> {
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

#[cfg(feature = "aws")]
mod aws {
    use std::sync::Arc;

    use super::{required, vars, Env, Function};
    use crate::alerts::{AlertSink, LogAlerts};
    use crate::app::{App, ConfigError, Fees, MIN_CODE_SECRET_BYTES};
    use crate::clock::SystemClock;
    use crate::verification::CodeHasher;

    /// Builds `function`'s app from `env`, with AWS clients from `aws`. Only the code
    /// secret is fetched here (one Secrets Manager call, in the functions that hash
    /// codes); every other client connects lazily on its first request.
    pub async fn build_app(function: Function, env: &dyn Env, aws: &aws_config::SdkConfig) -> Result<App, ConfigError> {
        let table = required(env, vars::TABLE_NAME, "the DynamoDB table's name")?;
        let store = crate::adapters::dynamodb::DynamoStore::new(aws_sdk_dynamodb::Client::new(aws), table);
        let sns = aws_sdk_sns::Client::new(aws);
        let code_hasher = if function.hashes_codes() {
            let secret_id = required(env, vars::CODE_SECRET_ARN, "the ARN of the SMS code secret")?;
            Some(CodeHasher::new(fetch_code_secret(aws, &secret_id).await?))
        } else {
            None
        };
        let fees = if function.charges_fees() {
            super::fees_from(env)?
        } else {
            Fees::default()
        };
        let alerts: Arc<dyn AlertSink> = if function.raises_alerts() {
            let topic = required(env, vars::ALERT_TOPIC_ARN, "the ARN of the reconciliation alert topic")?;
            Arc::new(crate::adapters::sns::SnsTopicAlerts::new(sns.clone(), topic))
        } else {
            Arc::new(LogAlerts)
        };
        Ok(App {
            store: Arc::new(store),
            sms: Arc::new(crate::adapters::sns::SnsSmsSender::new(sns)),
            clock: Arc::new(SystemClock),
            code_hasher,
            fees,
            alerts,
        })
    }

    async fn fetch_code_secret(aws: &aws_config::SdkConfig, secret_id: &str) -> Result<Vec<u8>, ConfigError> {
        let output = aws_sdk_secretsmanager::Client::new(aws)
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| {
                ConfigError(format!(
                    "reading the SMS code secret {secret_id}: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                ))
            })?;
        let secret = output
            .secret_string
            .ok_or_else(|| ConfigError(format!("the SMS code secret {secret_id} has no string value")))?;
        if secret.len() < MIN_CODE_SECRET_BYTES {
            return Err(ConfigError(format!(
                "the SMS code secret {secret_id} must be at least {MIN_CODE_SECRET_BYTES} bytes"
            )));
        }
        Ok(secret.into_bytes())
    }
}

#[cfg(feature = "aws")]
pub use aws::build_app;
