//! Adapters: the ports implemented for AWS (DynamoDB, SNS) and for the local gateway
//! (embedded SQLite store, SMS outbox).

#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod local_files;
#[cfg(feature = "aws")]
pub mod s3;
#[cfg(feature = "aws")]
pub mod sns;
#[cfg(feature = "embedded")]
pub mod sqlite;
