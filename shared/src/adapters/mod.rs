//! Adapters: the ports implemented for AWS (DynamoDB, SNS, EventBridge) and for the local gateway
//! (embedded SQLite store, SMS outbox).

#[cfg(feature = "aws")]
pub mod dynamodb;
#[cfg(feature = "aws")]
pub mod eventbridge;
pub mod local_files;
#[cfg(feature = "aws")]
pub mod s3;
#[cfg(feature = "aws")]
pub mod sns;
#[cfg(feature = "embedded")]
pub mod sqlite;
