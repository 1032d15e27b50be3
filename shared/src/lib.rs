//! The seller fund account: domain rules, ports and adapters, shared by every Lambda
//! function and the local gateway. Dependencies point down through five layers
//! (`docs/architecture.md`; `tests/architecture.rs` checks them):
//!
//! - Values: [`money`], [`clock`], [`ids`], [`phone`], [`member`], [`records`],
//!   [`ledger`], [`password`], [`verification`], [`error`], [`fees`], [`fx`], [`events`].
//! - Ports: [`store::Store`], [`sms::SmsSender`], [`alerts::AlertSink`],
//!   [`event_bus::EventBus`].
//! - Operations: [`activation`], [`withdrawal`], [`collection`], [`exchange`],
//!   [`reconciliation`], [`statement`], [`export`], [`publisher`], over
//!   [`app::App`] (the ports of a process) and [`retry`].
//! - Adapters: [`adapters`] (DynamoDB, SNS, SQLite, outbox).
//! - Edge: [`http`] (callers, decoding, problem+json), [`routes`] (one handler and its
//!   views per resource), [`lambda`] (the Lambda entry point and its AWS set-up),
//!   [`function_config`].

pub mod activation;
pub mod adapters;
pub mod alerts;
pub mod app;
pub mod clock;
pub mod collection;
pub mod error;
pub mod event_bus;
pub mod events;
pub mod exchange;
pub mod export;
pub mod fees;
pub mod files;
pub mod function_config;
pub mod fx;
pub mod http;
pub mod ids;
pub mod lambda;
pub mod ledger;
pub mod member;
pub mod money;
pub mod password;
pub mod phone;
pub mod publisher;
pub mod reconciliation;
pub mod records;
pub mod retry;
pub mod routes;
pub mod sms;
pub mod statement;
pub mod store;
pub mod verification;
pub mod withdrawal;
