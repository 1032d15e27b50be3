//! The table's DynamoDB Stream and its two readers, with one reader of a record's keys
//! and one way to report failed records: the publisher (each new outbox item published,
//! see `publisher`; and its scheduled SMS sweep) and `export-statement` (each new export
//! written, see `export`).

use std::collections::HashSet;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

use crate::app::App;
use crate::events::keys::OUTBOX_PREFIX;
use crate::publisher;
use crate::store::DocKey;

/// What the scheduled event asks the publisher for.
pub const SWEEP_MODE: &str = "sweep-notifications";

/// An input the function does not take (the publisher: a stream event or
/// `{"mode": "sweep-notifications"}`; `export-statement`: a stream event).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an input this function takes: {0}")]
pub struct UnknownInput(pub String);

/// Runs one invocation: a stream batch answers its partial-batch response, the sweep its
/// report.
pub async fn handle(app: &App, payload: serde_json::Value) -> Result<serde_json::Value, UnknownInput> {
    if payload.get("Records").is_some() {
        let event: Event = serde_json::from_value(payload).map_err(|e| UnknownInput(e.to_string()))?;
        let response = publish_batch(app, &event).await;
        return serde_json::to_value(response).map_err(|e| UnknownInput(e.to_string()));
    }
    match payload.get("mode").and_then(|m| m.as_str()) {
        Some(SWEEP_MODE) => match publisher::sweep_notifications(app).await {
            Ok(report) => Ok(report.to_json()),
            // A store outage: the next scheduled sweep tries again.
            Err(error) => Err(UnknownInput(format!("the sweep failed: {error:?}"))),
        },
        _ => Err(UnknownInput("neither Records nor a known mode".to_owned())),
    }
}

/// The key of the item a record inserted, if its partition key starts with `prefix`
/// (each event source's filter passes only its own inserts; anything else is ignored here
/// too). The one reader of a stream record's keys for both of the stream's functions.
pub fn inserted_key(record: &EventRecord, prefix: &str) -> Option<DocKey> {
    if record.event_name != "INSERT" {
        return None;
    }
    let text = |name: &str| match record.change.keys.get(name) {
        Some(serde_dynamo::AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    };
    let partition = text("PK").filter(|pk| pk.starts_with(prefix))?;
    Some(DocKey::new(partition, text("SK")?))
}

/// The key of the outbox item a record inserted, if it is one.
pub fn outbox_key(record: &EventRecord) -> Option<DocKey> {
    inserted_key(record, OUTBOX_PREFIX)
}

/// A record reported failed by its `SequenceNumber`: Lambda retries from there. (Without a
/// sequence number Lambda retries the whole batch: still correct.)
fn failure(record: &EventRecord) -> DynamoDbBatchItemFailure {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = Some(record.change.sequence_number.clone().unwrap_or_default());
    failure
}

/// The `export-statement` function: writes each export a stream batch inserted, and
/// reports the ones that failed (Lambda retries them, then sends them to the function's
/// failure queue). An input that is no stream event fails the invocation.
pub async fn export_batch(app: &App, payload: serde_json::Value) -> Result<serde_json::Value, UnknownInput> {
    let event: Event = serde_json::from_value(payload).map_err(|e| UnknownInput(e.to_string()))?;
    let mut response = DynamoDbEventResponse::default();
    for record in &event.records {
        let Some(key) = inserted_key(record, crate::export::PARTITION_PREFIX) else {
            continue;
        };
        let Some((member_id, export_id)) = crate::export::named_by(&key) else {
            tracing::warn!(partition = %key.partition, sort = %key.sort, "a stream record that names no export: skipped");
            continue;
        };
        if let Err(error) = crate::export::run(app, &member_id, &export_id).await {
            tracing::error!(export_id = %export_id, error = %error, "export failed; Lambda retries it");
            response.batch_item_failures.push(failure(record));
        }
    }
    serde_json::to_value(response).map_err(|e| UnknownInput(e.to_string()))
}

/// Publishes each outbox record of a batch, in order, and reports the failed ones by
/// their `SequenceNumber`. Once a member's record fails, that member's later records in
/// the batch are not tried and are reported too, so that no later event of the member is
/// sequenced before it. (Lambda then retries from the lowest failed sequence number: the
/// records after it, of any member, come again and are published again with the same
/// `id` and `sequence`.)
pub async fn publish_batch(app: &App, event: &Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let mut failed_members: HashSet<String> = HashSet::new();
    for record in &event.records {
        let Some(key) = outbox_key(record) else {
            continue;
        };
        let failed = if failed_members.contains(&key.partition) {
            true
        } else {
            match publisher::publish(app, &*app.events, &key).await {
                Ok(_) => false,
                Err(error) => {
                    tracing::error!(error = %error, partition = %key.partition, sort = %key.sort, "outbox record not published");
                    true
                }
            }
        };
        if failed {
            failed_members.insert(key.partition.clone());
            response.batch_item_failures.push(failure(record));
        }
    }
    response
}
