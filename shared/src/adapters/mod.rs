//! Adapters: the ports implemented for AWS (DynamoDB, SNS, EventBridge) and for the local gateway
//! (embedded SQLite store, SMS outbox).

#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod local_files;
#[cfg(feature = "aws")]
pub mod s3;
#[cfg(feature = "aws")]
pub mod eventbridge;
#[cfg(feature = "aws")]
pub mod sns;
#[cfg(feature = "embedded")]
pub mod sqlite;
