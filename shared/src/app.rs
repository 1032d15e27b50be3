//! The dependencies every route runs with, built once per process (per Lambda container).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::alerts::{AlertSink, LogAlerts};
use crate::clock::{Clock, SystemClock};
use crate::error::ApiError;
use crate::money::{Amount, Currency};
use crate::sms::SmsSender;
use crate::store::{Store, StoreError};
use crate::verification::CodeHasher;

/// Withdrawal fees per currency, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    pub usd: Amount,
    pub cny: Amount,
}

impl Default for Fees {
    fn default() -> Fees {
        Fees {
            usd: Amount::parse_request("15.00").unwrap_or(Amount::ZERO),
            cny: Amount::ZERO,
        }
    }
}

impl Fees {
    pub fn for_currency(&self, currency: Currency) -> Amount {
        match currency {
            Currency::Usd => self.usd,
            Currency::Cny => self.cny,
        }
    }
}

/// Ports and settings of one process.
pub struct App {
    pub store: Arc<dyn Store>,
    pub sms: Arc<dyn SmsSender>,
    pub clock: Arc<dyn Clock>,
    pub code_hasher: CodeHasher,
    pub fees: Fees,
    pub alerts: Arc<dyn AlertSink>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("fees", &self.fees).finish_non_exhaustive()
    }
}

/// A setting that is missing or malformed: names the variable and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Least length of the code-hashing secret, in bytes.
pub const MIN_CODE_SECRET_BYTES: usize = 32;

/// Settings read from the environment, shared by the Lambdas and the local gateway.
#[derive(Debug, Clone)]
pub struct Settings {
    pub code_hasher_key: Vec<u8>,
    pub fees: Fees,
}

impl Settings {
    /// Reads `CODE_HMAC_SECRET` (at least 32 bytes) and the optional
    /// `WITHDRAWAL_FEE_USD` / `WITHDRAWAL_FEE_CNY` (defaults 15.00 and 0.00).
    pub fn from_env() -> Result<Settings, ConfigError> {
        let secret = std::env::var("CODE_HMAC_SECRET")
            .map_err(|_| ConfigError("set CODE_HMAC_SECRET to a random string of at least 32 bytes".to_owned()))?;
        Settings::new(
            secret.into_bytes(),
            fee_from_env("WITHDRAWAL_FEE_USD")?,
            fee_from_env("WITHDRAWAL_FEE_CNY")?,
        )
    }

    pub fn new(
        code_hasher_key: Vec<u8>,
        usd_fee: Option<Amount>,
        cny_fee: Option<Amount>,
    ) -> Result<Settings, ConfigError> {
        if code_hasher_key.len() < MIN_CODE_SECRET_BYTES {
            return Err(ConfigError(format!(
                "CODE_HMAC_SECRET must be at least {MIN_CODE_SECRET_BYTES} bytes"
            )));
        }
        let defaults = Fees::default();
        Ok(Settings {
            code_hasher_key,
            fees: Fees {
                usd: usd_fee.unwrap_or(defaults.usd),
                cny: cny_fee.unwrap_or(defaults.cny),
            },
        })
    }
}

fn fee_from_env(name: &str) -> Result<Option<Amount>, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(text) => Amount::parse_request(&text)
            .map(Some)
            .map_err(|_| ConfigError(format!("{name} must be a decimal amount such as 15.00"))),
    }
}

impl App {
    pub fn new(store: Arc<dyn Store>, sms: Arc<dyn SmsSender>, clock: Arc<dyn Clock>, settings: Settings) -> App {
        App {
            store,
            sms,
            clock,
            code_hasher: CodeHasher::new(settings.code_hasher_key),
            fees: settings.fees,
            alerts: Arc::new(LogAlerts),
        }
    }

    /// The same app, alerting through `alerts`.
    pub fn with_alerts(mut self, alerts: Arc<dyn AlertSink>) -> App {
        self.alerts = alerts;
        self
    }

    /// The Lambda wiring: DynamoDB (`TABLE_NAME`) and SNS from one SDK config, the
    /// system clock. Nothing here calls AWS: credentials and connections are made lazily
    /// on the first request, keeping cold start short.
    #[cfg(feature = "aws")]
    pub async fn from_aws_env() -> Result<App, ConfigError> {
        let settings = Settings::from_env()?;
        let table = std::env::var("TABLE_NAME")
            .map_err(|_| ConfigError("set TABLE_NAME to the DynamoDB table's name".to_owned()))?;
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let store = crate::adapters::dynamodb::DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table);
        let sms = crate::adapters::sns::SnsSmsSender::new(aws_sdk_sns::Client::new(&config));
        Ok(App::new(
            Arc::new(store),
            Arc::new(sms),
            Arc::new(SystemClock),
            settings,
        ))
    }

    pub fn now(&self) -> crate::clock::Timestamp {
        self.clock.now()
    }
}

/// What one optimistic attempt at an operation came to.
pub enum Attempt<T> {
    Done(T),
    /// Another writer got there first: read again and retry.
    Retry,
}

/// Most attempts an operation makes against write conflicts before answering 503.
pub const MAX_ATTEMPTS: u32 = 30;

/// Runs `attempt` until it is done, retrying conflicts with jittered backoff, so that
/// concurrency is never the client's problem.
pub async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, ApiError>>,
{
    for n in 0..MAX_ATTEMPTS {
        match attempt().await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Retry => {
                let cap_ms = 2u64.saturating_pow(n.min(7)).min(100);
                let jitter_ms = rand::random::<u64>() % (cap_ms + 1);
                tokio::time::sleep(Duration::from_millis(jitter_ms)).await;
            }
        }
    }
    tracing::error!("operation gave up after {MAX_ATTEMPTS} conflicting attempts");
    Err(ApiError::ServiceUnavailable)
}

/// Maps a commit outcome for [`retrying`]: contention retries; a failed condition is
/// handed to `on_condition` (with the index of the failed write) to decide.
pub fn settle_commit<T>(
    result: Result<(), StoreError>,
    done: impl FnOnce() -> T,
    on_condition: impl FnOnce(usize) -> Result<Attempt<T>, ApiError>,
) -> Result<Attempt<T>, ApiError> {
    match result {
        Ok(()) => Ok(Attempt::Done(done())),
        Err(StoreError::Contention) => Ok(Attempt::Retry),
        Err(StoreError::ConditionFailed { write_index }) => on_condition(write_index),
        Err(other) => Err(other.into()),
    }
}
