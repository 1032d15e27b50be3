//! The AWS set-up of a deployed function: SDK clients, the code secret from Secrets
//! Manager, and the [`App`] they make. Only the Lambda entry (and the tests that build
//! functions as deployed) reach this; the domain never does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_config::SdkConfig;

use crate::alerts::{AlertSink, LogAlerts};
use crate::app::{App, ConfigError, MIN_CODE_SECRET_BYTES};
use crate::clock::SystemClock;
use crate::event_bus::{EventBus, NoEventBus};
use crate::fees::FeeSchedule;
use crate::files::{ExportFiles, NoFiles};
use crate::function_config::{fees_from, fx_from, required, vars, Env, Function};
use crate::fx::FxSettings;
use crate::routes::{handlers, Handler, Route};
use crate::sms::{NoSms, SmsSender};
use crate::verification::CodeHasher;

/// How a function sends SMS. Chosen where the function is declared (below), as a
/// function pointer, so that one which sends none never references the SNS client and the
/// linker leaves it out of the binary.
pub type SmsWiring = fn(&SdkConfig) -> Arc<dyn SmsSender>;

/// How a function publishes events, given its bus.
pub type EventBusWiring = fn(&SdkConfig, String) -> Arc<dyn EventBus>;

/// How a function raises alerts, given its topic.
pub type AlertWiring = fn(&SdkConfig, String) -> Arc<dyn AlertSink>;

/// How a function keeps statement exports, given its bucket. Only the functions that
/// write or sign them name one, so the others never reference the S3 client.
pub type FilesWiring = fn(&SdkConfig, String) -> Arc<dyn ExportFiles>;

/// Exports in an S3 bucket. Path-style addresses where the endpoint is set by hand (an
/// emulator on a loopback address has no bucket subdomains); AWS's own, virtual-hosted.
pub fn files_in_s3(aws: &SdkConfig, bucket: String) -> Arc<dyn ExportFiles> {
    let config = aws_sdk_s3::config::Builder::from(aws)
        .force_path_style(aws.endpoint_url().is_some())
        .build();
    Arc::new(crate::adapters::s3::S3Files::new(
        aws_sdk_s3::Client::from_conf(config),
        bucket,
    ))
}

/// How a function reads the SMS code key, given the secret's ARN. Only the functions that
/// hash codes name one, so the others never reference the Secrets Manager client.
pub type CodeSecretWiring = for<'a> fn(&'a SdkConfig, &'a str) -> SecretFetch<'a>;

/// The code key being read (boxed, so that the wiring can be a plain function pointer).
pub type SecretFetch<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, ConfigError>> + Send + 'a>>;

/// SMS through SNS `Publish`.
pub fn sms_through_sns(aws: &SdkConfig) -> Arc<dyn SmsSender> {
    Arc::new(crate::adapters::sns::SnsSmsSender::new(aws_sdk_sns::Client::new(aws)))
}

/// No SMS: every send fails loudly (see [`NoSms`]).
pub fn no_sms(_aws: &SdkConfig) -> Arc<dyn SmsSender> {
    Arc::new(NoSms)
}

/// Events put on an EventBridge bus.
pub fn events_through_eventbridge(aws: &SdkConfig, bus_name: String) -> Arc<dyn EventBus> {
    Arc::new(crate::adapters::eventbridge::EventBridgeBus::new(
        aws_sdk_eventbridge::Client::new(aws),
        bus_name,
    ))
}

/// Alerts published to an SNS topic.
pub fn alerts_through_sns(aws: &SdkConfig, topic_arn: String) -> Arc<dyn AlertSink> {
    Arc::new(crate::adapters::sns::SnsTopicAlerts::new(
        aws_sdk_sns::Client::new(aws),
        topic_arn,
    ))
}

/// A deployed function: which it is, the handler it serves (none for the schedule), and
/// the AWS clients it links. Each `functions/<name>/src/main.rs` names its own constant.
#[derive(Clone, Copy)]
pub struct Deployment {
    pub function: Function,
    pub handler: Option<Handler>,
    pub sms: SmsWiring,
    pub alerts: Option<AlertWiring>,
    pub code_secret: Option<CodeSecretWiring>,
    pub files: Option<FilesWiring>,
    pub events: Option<EventBusWiring>,
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployment")
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

const fn http(route: Route, handler: Handler) -> Deployment {
    Deployment {
        function: Function::Http(route),
        handler: Some(handler),
        sms: no_sms,
        alerts: None,
        code_secret: None,
        files: None,
        events: None,
    }
}

pub const GET_ACCOUNT: Deployment = http(Route::GetAccount, handlers::GET_ACCOUNT);
pub const ACTIVATE: Deployment = http(Route::Activate, handlers::ACTIVATE);
pub const SEND_CODE: Deployment = Deployment {
    sms: sms_through_sns,
    code_secret: Some(code_secret_from_secrets_manager),
    ..http(Route::SendCode, handlers::SEND_CODE)
};
pub const CONFIRM_CODE: Deployment = Deployment {
    code_secret: Some(code_secret_from_secrets_manager),
    ..http(Route::ConfirmCode, handlers::CONFIRM_CODE)
};
pub const MEMBER_SYNC: Deployment = http(Route::MemberSync, handlers::MEMBER_SYNC);
pub const WITHDRAW: Deployment = http(Route::Withdraw, handlers::WITHDRAW);
pub const GET_WITHDRAWAL: Deployment = http(Route::GetWithdrawal, handlers::GET_WITHDRAWAL);
pub const LIST_WITHDRAWALS: Deployment = http(Route::ListWithdrawals, handlers::LIST_WITHDRAWALS);
pub const LIST_TRANSACTIONS: Deployment = http(Route::ListTransactions, handlers::LIST_TRANSACTIONS);
pub const CREATE_COLLECTION: Deployment = http(Route::CreateCollection, handlers::CREATE_COLLECTION);
pub const CREATE_REFUND: Deployment = http(Route::CreateRefund, handlers::CREATE_REFUND);
pub const WITHDRAWAL_PAID: Deployment = http(Route::WithdrawalPaid, handlers::WITHDRAWAL_PAID);
pub const WITHDRAWAL_RETURNED: Deployment = http(Route::WithdrawalReturned, handlers::WITHDRAWAL_RETURNED);
pub const GET_FEES: Deployment = http(Route::GetFees, handlers::GET_FEES);
pub const PREVIEW_WITHDRAWAL: Deployment = http(Route::PreviewWithdrawal, handlers::PREVIEW_WITHDRAWAL);
pub const PUT_FX_RATE: Deployment = http(Route::PutFxRate, handlers::PUT_FX_RATE);
pub const CREATE_QUOTE: Deployment = http(Route::CreateQuote, handlers::CREATE_QUOTE);
pub const CREATE_CONVERSION: Deployment = http(Route::CreateConversion, handlers::CREATE_CONVERSION);
pub const LIST_CONVERSIONS: Deployment = http(Route::ListConversions, handlers::LIST_CONVERSIONS);
pub const PLATFORM_BALANCES: Deployment = http(Route::PlatformBalances, handlers::PLATFORM_BALANCES);
pub const GET_STATEMENT: Deployment = http(Route::GetStatement, handlers::GET_STATEMENT);
pub const CREATE_EXPORT: Deployment = http(Route::CreateExport, handlers::CREATE_EXPORT);
pub const GET_EXPORT: Deployment = Deployment {
    files: Some(files_in_s3),
    ..http(Route::GetExport, handlers::GET_EXPORT)
};
pub const RECONCILE: Deployment = Deployment {
    function: Function::Reconcile,
    handler: None,
    sms: no_sms,
    alerts: Some(alerts_through_sns),
    code_secret: None,
    files: None,
    events: None,
};
pub const EXPORT_STATEMENT: Deployment = Deployment {
    function: Function::ExportStatement,
    handler: None,
    sms: no_sms,
    alerts: None,
    code_secret: None,
    files: Some(files_in_s3),
    events: None,
};
pub const PUBLISH_EVENTS: Deployment = Deployment {
    function: Function::PublishEvents,
    handler: None,
    sms: sms_through_sns,
    alerts: None,
    code_secret: None,
    files: None,
    events: Some(events_through_eventbridge),
};

/// Every deployed function, as `template.yaml` deploys them.
pub const ALL: &[Deployment] = &[
    GET_ACCOUNT,
    ACTIVATE,
    SEND_CODE,
    CONFIRM_CODE,
    MEMBER_SYNC,
    WITHDRAW,
    GET_WITHDRAWAL,
    LIST_WITHDRAWALS,
    LIST_TRANSACTIONS,
    CREATE_COLLECTION,
    CREATE_REFUND,
    WITHDRAWAL_PAID,
    WITHDRAWAL_RETURNED,
    GET_FEES,
    PREVIEW_WITHDRAWAL,
    PUT_FX_RATE,
    CREATE_QUOTE,
    CREATE_CONVERSION,
    LIST_CONVERSIONS,
    PLATFORM_BALANCES,
    GET_STATEMENT,
    CREATE_EXPORT,
    GET_EXPORT,
    RECONCILE,
    EXPORT_STATEMENT,
    PUBLISH_EVENTS,
];

/// The deployment of `function` (for the tests, which start functions as deployed).
pub fn deployment(function: Function) -> Option<&'static Deployment> {
    ALL.iter().find(|d| d.function == function)
}

/// What a deployed function reads from its environment, checked: everything [`connect`]
/// needs besides the AWS configuration. Reading it does no I/O, so it stays in the cold
/// start (a missing or bad setting fails it, naming the variable) while the SDK work can
/// wait (see `lambda::run`).
#[derive(Debug, Clone)]
pub struct Settings {
    table: String,
    code_secret_id: Option<String>,
    fees: FeeSchedule,
    fx: FxSettings,
    alert_topic: Option<String>,
    export_bucket: Option<String>,
    event_bus: Option<String>,
}

impl Settings {
    /// The settings `deployment` uses, from `env`; only those (the fee schedule is parsed
    /// only by the functions that charge or show fees).
    pub fn read(deployment: &Deployment, env: &dyn Env) -> Result<Settings, ConfigError> {
        let function = deployment.function;
        let table = required(env, vars::TABLE_NAME, "the DynamoDB table's name")?;
        let code_secret_id = match deployment.code_secret {
            Some(_) => Some(required(env, vars::CODE_SECRET_ARN, "the ARN of the SMS code secret")?),
            None => None,
        };
        let fees = if function.uses_fee_schedule() {
            fees_from(env)?
        } else {
            FeeSchedule::default()
        };
        let fx = if function.locks_quotes() {
            fx_from(env)?
        } else {
            FxSettings::default()
        };
        let alert_topic = match deployment.alerts {
            Some(_) => Some(required(
                env,
                vars::ALERT_TOPIC_ARN,
                "the ARN of the reconciliation alert topic",
            )?),
            None => None,
        };
        let export_bucket = match deployment.files {
            Some(_) => Some(required(
                env,
                vars::EXPORT_BUCKET,
                "the statement export bucket's name",
            )?),
            None => None,
        };
        let event_bus = match deployment.events {
            Some(_) => Some(required(env, vars::EVENT_BUS_NAME, "the EventBridge bus's name")?),
            None => None,
        };
        Ok(Settings {
            table,
            code_secret_id,
            fees,
            fx,
            alert_topic,
            export_bucket,
            event_bus,
        })
    }
}

/// Builds a deployed function's app from `env`, with AWS clients from `aws`: [`Settings`]
/// then [`connect`].
pub async fn build_app(deployment: &Deployment, env: &dyn Env, aws: &SdkConfig) -> Result<App, ConfigError> {
    connect(deployment, Settings::read(deployment, env)?, aws).await
}

/// The app of a deployed function with checked `settings`, with AWS clients from `aws`.
/// Only the code secret is fetched here (one Secrets Manager call, in the functions that
/// hash codes); every other client connects lazily on its first request.
pub async fn connect(deployment: &Deployment, settings: Settings, aws: &SdkConfig) -> Result<App, ConfigError> {
    let store = crate::adapters::dynamodb::DynamoStore::new(aws_sdk_dynamodb::Client::new(aws), settings.table);
    let code_hasher = match (deployment.code_secret, settings.code_secret_id) {
        (Some(fetch), Some(secret_id)) => Some(CodeHasher::new(fetch(aws, &secret_id).await?)),
        _ => None,
    };
    let alerts: Arc<dyn AlertSink> = match (deployment.alerts, settings.alert_topic) {
        (Some(through), Some(topic)) => through(aws, topic),
        _ => Arc::new(LogAlerts),
    };
    let files: Arc<dyn ExportFiles> = match (deployment.files, settings.export_bucket) {
        (Some(wiring), Some(bucket)) => wiring(aws, bucket),
        _ => Arc::new(NoFiles),
    };
    let events: Arc<dyn EventBus> = match (deployment.events, settings.event_bus) {
        (Some(through), Some(bus)) => through(aws, bus),
        _ => Arc::new(NoEventBus),
    };
    Ok(App {
        store: Arc::new(store),
        sms: (deployment.sms)(aws),
        clock: Arc::new(SystemClock),
        code_hasher,
        fees: settings.fees,
        fx: settings.fx,
        alerts,
        files,
        events,
        known_members: Arc::default(),
    })
}

/// The SMS code key from Secrets Manager: one `GetSecretValue` at cold start.
pub fn code_secret_from_secrets_manager<'a>(aws: &'a SdkConfig, secret_id: &'a str) -> SecretFetch<'a> {
    Box::pin(fetch_code_secret(aws, secret_id))
}

async fn fetch_code_secret(aws: &SdkConfig, secret_id: &str) -> Result<Vec<u8>, ConfigError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_function_is_deployed_once_with_the_clients_it_needs_and_no_others() {
        let functions: Vec<Function> = ALL.iter().map(|d| d.function).collect();
        assert_eq!(functions, Function::all().collect::<Vec<_>>());
        for deployment in ALL {
            let function = deployment.function;
            let sends = std::ptr::fn_addr_eq(deployment.sms, sms_through_sns as SmsWiring);
            assert_eq!(sends, function.sends_sms(), "{function:?}: SMS through SNS");
            assert_eq!(
                deployment.alerts.is_some(),
                function.raises_alerts(),
                "{function:?}: alerts"
            );
            assert_eq!(
                deployment.code_secret.is_some(),
                function.hashes_codes(),
                "{function:?}: the code secret"
            );
            assert_eq!(
                deployment.files.is_some(),
                function.uses_export_files(),
                "{function:?}: the export bucket"
            );
            assert_eq!(
                deployment.events.is_some(),
                function.publishes_events(),
                "{function:?}: the event bus"
            );
            match function {
                Function::Http(route) => {
                    let handler = deployment.handler.unwrap_or_else(|| panic!("{route:?} has a handler"));
                    assert!(
                        std::ptr::fn_addr_eq(handler, route.handler()),
                        "{route:?} serves its own handler"
                    );
                }
                Function::Reconcile | Function::ExportStatement | Function::PublishEvents => {
                    assert!(deployment.handler.is_none())
                }
            }
        }
    }
}
