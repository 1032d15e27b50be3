//! Events for the marketplace and SMS notifications to the seller, as a money movement
//! records them: in the movement's own commit (a transactional outbox, see
//! `store::Write::transaction`), published and sent after it (`publisher`).
//!
//! | record | partition | sort | written by |
//! |---|---|---|---|
//! | outbox event | `OUTBOX#<member>` | `<transaction id>` | the movement's commit (absent) |
//! | notification | `NOTIFY#<nn>` | `<transaction id>` | the movement's commit (withdrawals) |
//! | sequence counter | `EVENTSEQ#<member>` | `counter` | the publisher |
//!
//! An event carries ids, amounts, currencies, status and an account's last 4 digits:
//! never names, full account numbers or phone numbers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::member::MemberId;

/// How long an outbox item is kept after its commit: far beyond the stream's 24 hours, so
/// a redelivered record always finds it (and its sequence).
pub const OUTBOX_TTL_SECONDS: i64 = 7 * 24 * 60 * 60;

/// Notification partitions: spread so that the sweep's reads and the claims of one busy
/// seller do not all land on one key.
pub const NOTIFY_SHARDS: u32 = 16;

/// What happened, as consumers name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "collection.created")]
    CollectionCreated,
    #[serde(rename = "collection.settled")]
    CollectionSettled,
    #[serde(rename = "refund.created")]
    RefundCreated,
    #[serde(rename = "withdrawal.created")]
    WithdrawalCreated,
    #[serde(rename = "withdrawal.paid")]
    WithdrawalPaid,
    #[serde(rename = "withdrawal.returned")]
    WithdrawalReturned,
    #[serde(rename = "conversion.created")]
    ConversionCreated,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::CollectionCreated,
        EventType::CollectionSettled,
        EventType::RefundCreated,
        EventType::WithdrawalCreated,
        EventType::WithdrawalPaid,
        EventType::WithdrawalReturned,
        EventType::ConversionCreated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CollectionCreated => "collection.created",
            EventType::CollectionSettled => "collection.settled",
            EventType::RefundCreated => "refund.created",
            EventType::WithdrawalCreated => "withdrawal.created",
            EventType::WithdrawalPaid => "withdrawal.paid",
            EventType::WithdrawalReturned => "withdrawal.returned",
            EventType::ConversionCreated => "conversion.created",
        }
    }

    /// Whether the seller gets an SMS for it: a withdrawal created, paid or returned.
    pub fn notifies(self) -> bool {
        matches!(
            self,
            EventType::WithdrawalCreated | EventType::WithdrawalPaid | EventType::WithdrawalReturned
        )
    }
}

/// The event a movement carries into its commit (see `ledger::Transaction::event`).
#[derive(Debug, Clone, PartialEq)]
pub struct MovementEvent {
    pub event_type: EventType,
    /// Ids, amounts, currencies, status, last 4 digits: nothing that names a person.
    pub detail: Value,
}

/// An event as the outbox keeps it. `sequence` is given by the publisher, once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// `ev_` + the transaction's ULID: the same on every delivery.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub member_id: MemberId,
    pub time: Timestamp,
    pub detail: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
}

impl OutboxEvent {
    /// The event of transaction `transaction_id`, not yet sequenced.
    pub fn new(transaction_id: &str, member_id: &MemberId, event: &MovementEvent, now: Timestamp) -> OutboxEvent {
        OutboxEvent {
            id: event_id(transaction_id),
            event_type: event.event_type,
            member_id: member_id.clone(),
            time: now,
            detail: event.detail.clone(),
            sequence: None,
        }
    }

    /// The event as consumers see it: `{"id", "type", "member_id", "sequence", "time", "detail"}`.
    pub fn published(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "type": self.event_type.as_str(),
            "member_id": self.member_id.as_str(),
            "sequence": self.sequence,
            "time": self.time.to_rfc3339(),
            "detail": self.detail,
        })
    }
}

/// Where a notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationState {
    /// Waiting to be sent at or after `due_at`.
    Pending,
    /// Claimed by a sender until `due_at` (its lease); after that anyone may claim it.
    Sending,
}

/// An SMS still to be sent for a movement; deleted once sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub event: OutboxEvent,
    pub state: NotificationState,
    pub attempts: u32,
    pub due_at: Timestamp,
}

impl Notification {
    /// Whether a sender may claim it at `now`: pending and due, or its lease run out.
    pub fn claimable(&self, now: Timestamp) -> bool {
        self.due_at <= now
    }
}

/// The per-member sequence counter's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SequenceCounter {
    pub last: u64,
}

/// `ev_` + the transaction's ULID.
pub fn event_id(transaction_id: &str) -> String {
    format!("ev_{}", transaction_id.strip_prefix("lt_").unwrap_or(transaction_id))
}

/// The keys of the records above, as (partition, sort) (a `store::DocKey` converts from it).
pub mod keys {
    use crate::member::MemberId;

    type DocKey = (String, String);

    pub const OUTBOX_PREFIX: &str = "OUTBOX#";
    pub const NOTIFY_PREFIX: &str = "NOTIFY#";

    pub fn outbox(member_id: &MemberId, transaction_id: &str) -> DocKey {
        (format!("{OUTBOX_PREFIX}{member_id}"), transaction_id.to_owned())
    }

    pub fn notification_partition(shard: u32) -> String {
        format!("{NOTIFY_PREFIX}{shard:02}")
    }

    pub fn notification(member_id: &MemberId, transaction_id: &str) -> DocKey {
        let shard = crate::ids::stable_hash(member_id.as_str()) % super::NOTIFY_SHARDS;
        (notification_partition(shard), transaction_id.to_owned())
    }

    pub fn sequence(member_id: &MemberId) -> DocKey {
        (format!("EVENTSEQ#{member_id}"), "counter".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_have_their_contract_names_and_withdrawals_notify() {
        for event_type in EventType::ALL {
            assert_eq!(serde_json::to_value(event_type).unwrap(), event_type.as_str());
        }
        let notifying: Vec<&str> = EventType::ALL
            .iter()
            .filter(|t| t.notifies())
            .map(|t| t.as_str())
            .collect();
        assert_eq!(
            notifying,
            ["withdrawal.created", "withdrawal.paid", "withdrawal.returned"]
        );
        assert_eq!(event_id("lt_01ABC"), "ev_01ABC");
    }
}
