//! Adapters: the ports implemented for AWS (DynamoDB, SNS) and for the local gateway
//! (embedded SQLite store, SMS outbox).

#[cfg(feature = "aws")]
pub mod dynamodb;
#[cfg(feature = "aws")]
pub mod sns;
#[cfg(feature = "embedded")]
pub mod sqlite;
