//! Test support, by concern:
//!
//! - [`apps`]: apps under test on either store adapter (`for_each_adapter!`), a manual
//!   clock, SMS to a readable outbox, members made as the marketplace would.
//! - [`emulator`]: moto's server (from the project's `.venv`) and SDK clients pointed at it.
//! - [`gateway`]: the local gateway running in the test process, on either store.
//! - [`faults`]: AWS behaviour the emulator lacks, injected through the store port.
//! - [`fixtures`]: record builders for store-level tests.
//! - [`http`]: the one check of a problem+json answer.

use std::path::PathBuf;

pub mod apps;
pub mod emulator;
pub mod faults;
pub mod fixtures;
pub mod gateway;
pub mod http;

pub use apps::*;
pub use emulator::*;
pub use faults::*;
pub use gateway::*;
pub use http::*;

/// 2026-01-01T00:00:00Z: where manual clocks start.
pub const T0: i64 = 1_767_225_600_000;

/// The project root (the workspace).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `events/<name>.json`, the API Gateway (or schedule) event `sam local invoke` uses.
pub fn event(name: &str) -> serde_json::Value {
    let path = project_root().join(format!("events/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("events/{name}.json: {e}"))
}
