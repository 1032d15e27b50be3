//! The dependencies every route runs with, built once per process (per Lambda container).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::alerts::{AlertSink, LogAlerts};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::event_bus::{EventBus, NoEventBus};
use crate::fees::FeeSchedule;
use crate::files::{ExportFiles, NoFiles};
use crate::fx::FxSettings;
use crate::member::MemberId;
use crate::sms::SmsSender;
use crate::store::Store;
use crate::verification::CodeHasher;

/// Ports and settings of one process.
pub struct App {
    pub store: Arc<dyn Store>,
    pub sms: Arc<dyn SmsSender>,
    pub clock: Arc<dyn Clock>,
    /// Only in the processes that hash SMS codes: in AWS the key is a secret that only
    /// the send-code and confirm-code functions may read.
    pub code_hasher: Option<CodeHasher>,
    /// The withdrawal fee schedule (published by `GET /v1/fees`).
    pub fees: FeeSchedule,
    /// FX markups and the staleness limit of reference rates.
    pub fx: FxSettings,
    pub alerts: Arc<dyn AlertSink>,
    /// Where statement exports are written and signed (only the export functions have one).
    pub files: Arc<dyn ExportFiles>,
    /// Where outbox events are published: only the publisher has a real one.
    pub events: Arc<dyn EventBus>,
    /// Members this process has seen exist (see [`KnownMembers`]).
    pub known_members: Arc<KnownMembers>,
}

/// Members this process has seen exist. Members are never deleted, so once seen a member
/// exists for good: a big seller's collections check the member once per process instead
/// of once per collection — a check on the member's profile in every commit would be the
/// one item all of that seller's collections write (see `ledger::PENDING_SHARDS`).
#[derive(Debug, Default)]
pub struct KnownMembers(Mutex<HashSet<MemberId>>);

impl KnownMembers {
    /// Past this many members the set starts again (a process serves a few sellers at a
    /// time; memory stays bounded whatever it serves).
    const CAPACITY: usize = 10_000;

    pub fn contains(&self, member_id: &MemberId) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(member_id)
    }

    pub fn insert(&self, member_id: &MemberId) {
        let mut known = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() >= Self::CAPACITY {
            known.clear();
        }
        known.insert(member_id.clone());
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("fees", &self.fees)
            .field("fx", &self.fx)
            .finish_non_exhaustive()
    }
}

/// A setting that is missing or malformed: names the variable and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Least length of the code-hashing secret, in bytes.
pub const MIN_CODE_SECRET_BYTES: usize = 32;

/// Settings of a process that serves every route (the local gateway, tests, benches).
/// The Lambdas build theirs per function (`function_config`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub code_hasher_key: Vec<u8>,
    pub fees: FeeSchedule,
    pub fx: FxSettings,
}

impl Settings {
    /// Settings with the contract's default fees and FX settings.
    pub fn new(code_hasher_key: Vec<u8>) -> Result<Settings, ConfigError> {
        if code_hasher_key.len() < MIN_CODE_SECRET_BYTES {
            return Err(ConfigError(format!(
                "the SMS code secret must be at least {MIN_CODE_SECRET_BYTES} bytes"
            )));
        }
        Ok(Settings {
            code_hasher_key,
            fees: FeeSchedule::default(),
            fx: FxSettings::default(),
        })
    }

    pub fn with_fees(mut self, fees: FeeSchedule) -> Settings {
        self.fees = fees;
        self
    }

    pub fn with_fx(mut self, fx: FxSettings) -> Settings {
        self.fx = fx;
        self
    }
}

impl App {
    pub fn new(store: Arc<dyn Store>, sms: Arc<dyn SmsSender>, clock: Arc<dyn Clock>, settings: Settings) -> App {
        App {
            store,
            sms,
            clock,
            code_hasher: Some(CodeHasher::new(settings.code_hasher_key)),
            fees: settings.fees,
            fx: settings.fx,
            alerts: Arc::new(LogAlerts),
            files: Arc::new(NoFiles),
            events: Arc::new(NoEventBus),
            known_members: Arc::default(),
        }
    }

    /// The same app, keeping statement exports in `files`.
    pub fn with_files(mut self, files: Arc<dyn ExportFiles>) -> App {
        self.files = files;
        self
    }

    /// The same app, publishing events to `events`.
    pub fn with_event_bus(mut self, events: Arc<dyn EventBus>) -> App {
        self.events = events;
        self
    }

    /// The same app, alerting through `alerts`.
    pub fn with_alerts(mut self, alerts: Arc<dyn AlertSink>) -> App {
        self.alerts = alerts;
        self
    }

    /// The SMS code hasher; a function deployed without the code secret cannot hash codes
    /// (the deployment tests make sure the ones that do have it).
    pub fn code_hasher(&self) -> Result<&CodeHasher, ApiError> {
        self.code_hasher.as_ref().ok_or_else(|| {
            tracing::error!("this function has no SMS code secret: check CODE_SECRET_ARN in template.yaml");
            ApiError::Internal
        })
    }

    pub fn now(&self) -> crate::clock::Timestamp {
        self.clock.now()
    }
}
