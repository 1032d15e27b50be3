//! The AWS set-up of a deployed function: SDK clients, the code secret from Secrets
//! Manager, and the [`App`] they make. Only the Lambda entry (and the tests that build
//! functions as deployed) reach this; the domain never does.

use std::sync::Arc;

use crate::alerts::{AlertSink, LogAlerts};
use crate::app::{App, ConfigError, Fees, MIN_CODE_SECRET_BYTES};
use crate::clock::SystemClock;
use crate::function_config::{fees_from, required, vars, Env, Function};
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
        fees_from(env)?
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
