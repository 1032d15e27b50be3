//! The seller fund account: domain rules, ports and adapters, shared by every Lambda
//! function and the local gateway.
//!
//! - Domain: [`money`], [`member`], [`activation`], [`verification`], [`password`],
//!   [`ledger`], [`records`].
//! - Ports: [`store::Store`], [`sms::SmsSender`], [`clock::Clock`].
//! - Adapters: [`adapters`] (DynamoDB, SNS, SQLite, outbox).
//! - Edge: [`http`] (callers, decoding, problem+json), [`routes`] (one handler per route),
//!   [`lambda`] (the Lambda entry point).

pub mod activation;
pub mod adapters;
pub mod alerts;
pub mod app;
pub mod clock;
pub mod collection;
pub mod error;
pub mod function_config;
pub mod http;
pub mod ids;
pub mod lambda;
pub mod ledger;
pub mod member;
pub mod money;
pub mod password;
pub mod phone;
pub mod reconciliation;
pub mod records;
pub mod retry;
pub mod routes;
pub mod sms;
pub mod store;
pub mod verification;
pub mod withdrawal;
