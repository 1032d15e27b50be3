//! What each deployed function reads from its environment (the [`App`] is built from it
//! at the Lambda entry, `lambda::aws`).
//!
//! Every function is given only the settings it uses (`template.yaml` declares them per
//! function) and fails its cold start, naming the variable, when one is missing. The
//! deployment tests build every function from exactly the environment the template gives
//! it and check that each variable declared is read and each variable read is declared.

use crate::app::ConfigError;
use crate::fees::FeeSchedule;
use crate::fx::FxSettings;
use crate::routes::Route;

/// A deployed function: one per route, the scheduled reconciliation, and the event
/// publisher (the table's stream, and the SMS sweep on a schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Http(Route),
    Reconcile,
    /// Writes statement exports, on the table's stream.
    ExportStatement,
    PublishEvents,
}

/// The names of the variables the functions read.
pub mod vars {
    /// The DynamoDB table (every function).
    pub const TABLE_NAME: &str = "TABLE_NAME";
    /// The Secrets Manager secret holding the SMS code HMAC key (the functions that hash
    /// codes). The key itself is never in an environment variable.
    pub const CODE_SECRET_ARN: &str = "CODE_SECRET_ARN";
    /// The withdrawal fee schedule, a JSON array of rows (the functions that charge or
    /// show fees).
    pub const FEE_SCHEDULE: &str = "FEE_SCHEDULE";
    /// FX markups per pair, a JSON object (the functions that lock quotes).
    pub const FX_MARKUP_PERCENT: &str = "FX_MARKUP_PERCENT";
    /// How old a reference rate may be, in seconds, before quotes stop.
    pub const FX_RATE_MAX_AGE_SECONDS: &str = "FX_RATE_MAX_AGE_SECONDS";
    /// The reconciliation alert topic (the reconcile function).
    pub const ALERT_TOPIC_ARN: &str = "ALERT_TOPIC_ARN";
    /// The bucket statement exports are written to and downloaded from (the functions
    /// that write or sign exports).
    pub const EXPORT_BUCKET: &str = "EXPORT_BUCKET";
    /// The EventBridge bus the marketplace's events go to (the publisher).
    pub const EVENT_BUS_NAME: &str = "EVENT_BUS_NAME";
    /// The log filter (every function).
    pub const RUST_LOG: &str = "RUST_LOG";
}

impl Function {
    /// Every function `template.yaml` deploys.
    pub fn all() -> impl Iterator<Item = Function> {
        Route::ALL.iter().copied().map(Function::Http).chain([
            Function::Reconcile,
            Function::ExportStatement,
            Function::PublishEvents,
        ])
    }

    /// The function's crate and binary (`BuildProperties.Binary` in the template).
    pub fn binary(self) -> &'static str {
        match self {
            Function::Http(route) => route.function(),
            Function::Reconcile => "reconcile",
            Function::ExportStatement => "export-statement",
            Function::PublishEvents => "publish-events",
        }
    }

    /// Whether the function sends SMS (and so links the SNS client).
    pub fn sends_sms(self) -> bool {
        matches!(self, Function::Http(Route::SendCode) | Function::PublishEvents)
    }

    /// Whether the function publishes events (and so links the EventBridge client).
    pub fn publishes_events(self) -> bool {
        self == Function::PublishEvents
    }

    /// Whether the function hashes SMS codes, and so needs the code secret.
    pub fn hashes_codes(self) -> bool {
        matches!(self, Function::Http(Route::SendCode | Route::ConfirmCode))
    }

    /// Whether the function charges or shows withdrawal fees, and so reads the schedule.
    pub fn uses_fee_schedule(self) -> bool {
        matches!(
            self,
            Function::Http(Route::Withdraw | Route::PreviewWithdrawal | Route::GetFees)
        )
    }

    /// Whether the function locks FX quotes, and so reads the markups and staleness limit.
    pub fn locks_quotes(self) -> bool {
        matches!(self, Function::Http(Route::PreviewWithdrawal | Route::CreateQuote))
    }

    /// Whether the function writes or signs statement exports, and so reads the bucket.
    pub fn uses_export_files(self) -> bool {
        matches!(self, Function::ExportStatement | Function::Http(Route::GetExport))
    }

    /// The function's `MemorySize` in `template.yaml` (MB), chosen by the memory model of
    /// issue 14 (`infra/bench/src/memory.rs`, numbers in docs/PERFORMANCE.md): Lambda's
    /// CPU share grows with memory up to one vCPU at 1,769 MB. The deployment tests hold
    /// the template to this table.
    pub fn memory_mb(self) -> u32 {
        match self {
            Function::ExportStatement | Function::Reconcile => 512,
            Function::Http(_) | Function::PublishEvents => 256,
        }
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

/// The fee schedule of a function that charges or shows fees: required, so a template
/// that forgets it fails the cold start instead of charging a built-in default.
pub fn fees_from(env: &dyn Env) -> Result<FeeSchedule, ConfigError> {
    let text = required(env, vars::FEE_SCHEDULE, "the fee schedule, a JSON array of fee rows")?;
    FeeSchedule::parse(&text).map_err(|e| ConfigError(e.0))
}

/// The FX settings of a function that locks quotes: both variables required.
pub fn fx_from(env: &dyn Env) -> Result<FxSettings, ConfigError> {
    let markups = required(
        env,
        vars::FX_MARKUP_PERCENT,
        "the markups, e.g. {\"USD-CNY\": \"0.50\"}",
    )?;
    let age = required(env, vars::FX_RATE_MAX_AGE_SECONDS, "seconds, e.g. 300")?;
    let max_rate_age_seconds = age
        .parse::<i64>()
        .ok()
        .filter(|s| (1..=86_400).contains(s))
        .ok_or_else(|| {
            ConfigError(format!(
                "{} must be 1 to 86400 seconds, not {age:?}",
                vars::FX_RATE_MAX_AGE_SECONDS
            ))
        })?;
    Ok(FxSettings {
        markups: FxSettings::parse_markups(&markups).map_err(ConfigError)?,
        max_rate_age_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vars(Vec<(&'static str, &'static str)>);

    impl Env for Vars {
        fn var(&self, name: &str) -> Option<String> {
            self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn a_bad_fee_schedule_fails_the_cold_start_naming_the_field() {
        let negative =
            r#"[{"currency":"USD","payout_currency":"USD","fixed":"-1","percent":"0","min":"0","max":null}]"#;
        let error = fees_from(&Vars(vec![(vars::FEE_SCHEDULE, negative)])).unwrap_err();
        assert!(error.0.contains("FEE_SCHEDULE[0].fixed"), "{error}");
        let inverted = r#"[{"currency":"USD","payout_currency":"CNY","fixed":"0","percent":"1","min":"9","max":"8"}]"#;
        let error = fees_from(&Vars(vec![(vars::FEE_SCHEDULE, inverted)])).unwrap_err();
        assert!(error.0.contains("FEE_SCHEDULE[0].max"), "{error}");
        let error = fees_from(&Vars(vec![])).unwrap_err();
        assert!(error.0.contains(vars::FEE_SCHEDULE), "{error}");
        let good = fees_from(&Vars(vec![(vars::FEE_SCHEDULE, crate::fees::DEFAULT_SCHEDULE_JSON)]));
        assert_eq!(good, Ok(FeeSchedule::default()));
    }

    #[test]
    fn fx_settings_are_required_and_checked() {
        let markups = r#"{"USD-CNY": "0.75"}"#;
        let settings = fx_from(&Vars(vec![
            (vars::FX_MARKUP_PERCENT, markups),
            (vars::FX_RATE_MAX_AGE_SECONDS, "120"),
        ]))
        .unwrap();
        assert_eq!(settings.max_rate_age_seconds, 120);
        use crate::money::Currency::{Cny, Usd};
        assert_eq!(settings.markup(Usd, Cny).as_decimal().to_string(), "0.7500");
        assert_eq!(
            settings.markup(Cny, Usd),
            crate::fx::Markup::DEFAULT,
            "unset pairs: 0.50 %"
        );
        for (markups, age, named) in [
            (r#"{"USD-EUR": "1"}"#, "120", "FX_MARKUP_PERCENT.USD-EUR"),
            (r#"{"USD-CNY": "100"}"#, "120", "FX_MARKUP_PERCENT.USD-CNY"),
            (markups, "0", vars::FX_RATE_MAX_AGE_SECONDS),
            (markups, "soon", vars::FX_RATE_MAX_AGE_SECONDS),
        ] {
            let error = fx_from(&Vars(vec![
                (vars::FX_MARKUP_PERCENT, markups),
                (vars::FX_RATE_MAX_AGE_SECONDS, age),
            ]))
            .unwrap_err();
            assert!(error.0.contains(named), "{error}");
        }
    }
}
