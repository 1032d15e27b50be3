//! After a movement: its outbox event published to the bus, in order per member, and its
//! SMS sent, once. Shared by the `publish-events` Lambda (fed by the DynamoDB Stream) and
//! the local gateway (fed by the embedded store's stream table).
//!
//! For one outbox item, [`publish`]:
//! 1. gives the event its per-member `sequence` if it has none: one commit puts the
//!    member's counter at its read version + 1 and the outbox item at its read version with
//!    the sequence, so a redelivered record finds and reuses it (a sequence never changes);
//! 2. puts the event on the bus (at least once: consumers de-duplicate on `id`);
//! 3. delivers the notification, if the movement has one: claimed by a conditional write
//!    (a lease), sent, then deleted. A send that fails puts it back with a backoff for
//!    [`sweep_notifications`]; an SMS problem never fails the event's record.
//!
//! Exactly once, except one window no design closes without the SMS provider's help: a
//! crash (or a store outage outlasting the delete's retries) after SNS accepted a message
//! and before its notification is deleted sends it again once the lease runs out.

use crate::app::App;
use crate::error::ApiError;
use crate::event_bus::{EventBus, EventBusError};
use crate::events::{self, Notification, NotificationState, OutboxEvent, SequenceCounter, NOTIFY_SHARDS};
use crate::member::MemberId;
use crate::retry::{commit, Backoff, Commit};
use crate::store::{Doc, DocKey, Expect, PageRequest, Write};

/// How long a claimed notification is its sender's before another may take it: far above
/// an SNS call's timeout, so a live sender is never overtaken.
pub const NOTIFICATION_LEASE_SECONDS: i64 = 5 * 60;
/// The longest wait between two tries of one SMS.
pub const MAX_SMS_BACKOFF_SECONDS: i64 = 60 * 60;
/// Notifications one sweep looks at, at most (it runs every few minutes).
pub const SWEEP_LIMIT: usize = 500;
/// Tries of the delete that closes a sent notification.
const DELETE_TRIES: u64 = 5;
/// Notifications read per page of a sweep.
const SWEEP_PAGE: usize = 100;

/// Why an outbox item was not published; its record is retried.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("store: {0}")]
    Store(ApiError),
    #[error(transparent)]
    Bus(#[from] EventBusError),
}

impl From<ApiError> for PublishError {
    fn from(error: ApiError) -> PublishError {
        PublishError::Store(error)
    }
}

impl From<crate::store::StoreError> for PublishError {
    fn from(error: crate::store::StoreError) -> PublishError {
        PublishError::Store(error.into())
    }
}

/// What became of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// None there: never one, or already sent.
    Done,
    /// Sent now and deleted.
    Sent,
    /// No phone is bound: dropped (logged).
    Dropped,
    /// Not due yet, or another sender holds it.
    NotDue,
    /// The send failed: back to pending, due after a backoff.
    Failed,
}

/// What [`publish`] did with one outbox item.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The event as put on the bus (`None`: the item is gone, nothing to publish).
    pub event: Option<OutboxEvent>,
    pub sms: Delivery,
}

/// Publishes the outbox item at `key` (see the module's steps). An `Err` means the event
/// may not be on the bus: the caller retries the record.
pub async fn publish(app: &App, bus: &dyn EventBus, key: &DocKey) -> Result<Published, PublishError> {
    let Some(event) = sequenced(app, key).await? else {
        tracing::warn!(partition = %key.partition, sort = %key.sort, "outbox item gone: nothing to publish");
        return Ok(Published {
            event: None,
            sms: Delivery::Done,
        });
    };
    bus.put(&event).await?;
    tracing::info!(
        event_id = %event.id,
        event_type = event.event_type.as_str(),
        sequence = event.sequence,
        "event published"
    );
    let sms = if event.event_type.notifies() {
        let notification = events::keys::notification(&event.member_id, &key.sort).into();
        match deliver(app, &notification).await {
            Ok(delivery) => delivery,
            // The sweep takes it from here; the event itself is published.
            Err(error) => {
                tracing::warn!(error = %error, "notification not delivered now; the sweep retries it");
                Delivery::NotDue
            }
        }
    } else {
        Delivery::Done
    };
    Ok(Published {
        event: Some(event),
        sms,
    })
}

/// The outbox event at `key` with its sequence, assigned now if it has none.
async fn sequenced(app: &App, key: &DocKey) -> Result<Option<OutboxEvent>, PublishError> {
    let member_id = key
        .partition
        .strip_prefix(events::keys::OUTBOX_PREFIX)
        .and_then(|id| MemberId::parse(id).ok())
        .ok_or(PublishError::Store(ApiError::Internal))?;
    let counter_key: DocKey = events::keys::sequence(&member_id).into();
    let mut backoff = Backoff::new();
    loop {
        // One consistent read of the item and the member's counter.
        let mut found = app.store.docs(&[key.clone(), counter_key.clone()]).await?.into_iter();
        let (Some(Some(outbox)), Some(counter)) = (found.next(), found.next()) else {
            return Ok(None);
        };
        let mut event: OutboxEvent = outbox.parse()?;
        if event.sequence.is_some() {
            return Ok(Some(event));
        }
        let (last, counter_expect, counter_version) = match &counter {
            Some(doc) => (
                doc.parse::<SequenceCounter>()?.last,
                Expect::Version(doc.version),
                doc.version,
            ),
            None => (0, Expect::Absent, 0),
        };
        let next = last + 1;
        event.sequence = Some(next);
        let mut item = Doc::new(outbox.key.clone(), outbox.version + 1, &event)?;
        item.expires_at = outbox.expires_at;
        let writes = vec![
            Write::PutDoc {
                doc: Doc::new(
                    counter_key.clone(),
                    counter_version + 1,
                    &SequenceCounter { last: next },
                )?,
                expect: counter_expect,
            },
            Write::PutDoc {
                doc: item,
                expect: Expect::Version(outbox.version),
            },
        ];
        match commit(&*app.store, writes).await? {
            Commit::Applied => return Ok(Some(event)),
            // Another publisher moved the counter or sequenced this item: read again.
            Commit::Contended | Commit::Refused(_) => backoff.wait().await?,
        }
    }
}

/// Delivers the notification at `key`, if it is there and due: claim, send, delete.
pub async fn deliver(app: &App, key: &DocKey) -> Result<Delivery, ApiError> {
    match app.store.docs(std::slice::from_ref(key)).await?.pop().flatten() {
        Some(doc) => deliver_doc(app, doc).await,
        None => Ok(Delivery::Done),
    }
}

async fn deliver_doc(app: &App, doc: Doc) -> Result<Delivery, ApiError> {
    let now = app.now();
    let notification: Notification = doc.parse()?;
    if !notification.claimable(now) {
        return Ok(Delivery::NotDue);
    }
    // The claim: only one sender gets past this commit for this version.
    let claimed = Notification {
        state: NotificationState::Sending,
        attempts: notification.attempts + 1,
        due_at: now.plus_seconds(NOTIFICATION_LEASE_SECONDS),
        ..notification
    };
    let claimed_version = doc.version + 1;
    let claim = vec![Write::PutDoc {
        doc: Doc::new(doc.key.clone(), claimed_version, &claimed)?,
        expect: Expect::Version(doc.version),
    }];
    if commit(&*app.store, claim).await? != Commit::Applied {
        return Ok(Delivery::NotDue);
    }
    let done = || Write::DeleteDoc {
        key: doc.key.clone(),
        expect: Expect::Version(claimed_version),
    };
    let event = &claimed.event;
    let phone = app.store.member_phone(&event.member_id).await?;
    let (Some(phone), Some(message)) = (phone, crate::sms::movement_message(event)) else {
        tracing::info!(event_id = %event.id, "no phone bound: the notification is dropped");
        commit(&*app.store, vec![done()]).await?;
        return Ok(Delivery::Dropped);
    };
    match app.sms.send(&phone, &message, now).await {
        Ok(()) => {
            tracing::info!(event_id = %event.id, phone = %phone.masked(), "notification sent");
            // The delete is what makes the send once: it is retried through the store's
            // blips (a delete that landed and lost its answer fails its condition on the
            // retry, which is as good). Only a crash, or an outage longer than the tries,
            // leaves the notification to be sent again when its lease runs out.
            let mut tries: u64 = 0;
            loop {
                tries += 1;
                match commit(&*app.store, vec![done()]).await {
                    Ok(Commit::Applied | Commit::Refused(_)) => break,
                    Ok(Commit::Contended) | Err(_) if tries < DELETE_TRIES => {
                        tokio::time::sleep(std::time::Duration::from_millis(50 * tries)).await;
                    }
                    Ok(Commit::Contended) | Err(_) => {
                        tracing::error!(event_id = %event.id, "sent, but the notification was not deleted: it goes again when its lease runs out");
                        break;
                    }
                }
            }
            Ok(Delivery::Sent)
        }
        Err(error) => {
            let wait = sms_backoff_seconds(claimed.attempts);
            tracing::warn!(event_id = %event.id, error = %error, attempts = claimed.attempts, wait, "sms failed; retried later");
            let pending = Notification {
                state: NotificationState::Pending,
                due_at: now.plus_seconds(wait),
                ..claimed
            };
            let put_back = vec![Write::PutDoc {
                doc: Doc::new(doc.key.clone(), claimed_version + 1, &pending)?,
                expect: Expect::Version(claimed_version),
            }];
            // If this fails too, the lease runs out and the sweep takes it all the same.
            let _ = commit(&*app.store, put_back).await;
            Ok(Delivery::Failed)
        }
    }
}

/// Seconds before the next try after `attempts` tries: 30 s doubling, at most an hour.
pub fn sms_backoff_seconds(attempts: u32) -> i64 {
    30_i64
        .saturating_mul(2_i64.saturating_pow(attempts.saturating_sub(1).min(20)))
        .min(MAX_SMS_BACKOFF_SECONDS)
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub looked_at: usize,
    pub sent: usize,
    pub dropped: usize,
    pub failed: usize,
}

impl SweepReport {
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "looked_at": self.looked_at,
            "sent": self.sent,
            "dropped": self.dropped,
            "failed": self.failed,
        })
    }
}

/// Retries every notification that is due (pending past its backoff, or claimed by a
/// sender whose lease ran out): "retried until sent", without ever failing an event's
/// record for an SMS problem. Looks at most [`SWEEP_LIMIT`] notifications.
pub async fn sweep_notifications(app: &App) -> Result<SweepReport, ApiError> {
    let mut report = SweepReport::default();
    for shard in 0..NOTIFY_SHARDS {
        let partition = events::keys::notification_partition(shard);
        let mut before = None;
        loop {
            let page = app
                .store
                .doc_page(
                    &partition,
                    &PageRequest {
                        limit: SWEEP_PAGE,
                        before: before.clone(),
                    },
                )
                .await?;
            for doc in page.items {
                if report.looked_at >= SWEEP_LIMIT {
                    return Ok(report);
                }
                report.looked_at += 1;
                before = Some(doc.key.sort.clone());
                match deliver_doc(app, doc).await {
                    Ok(Delivery::Sent) => report.sent += 1,
                    Ok(Delivery::Dropped) => report.dropped += 1,
                    Ok(Delivery::Failed) => report.failed += 1,
                    Ok(Delivery::Done | Delivery::NotDue) => {}
                    Err(error) => {
                        report.failed += 1;
                        tracing::warn!(error = %error, "sweep: a notification was not delivered");
                    }
                }
            }
            if !page.more {
                break;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_sms_waits_longer_each_time_up_to_an_hour() {
        let waits: Vec<i64> = (1..=9).map(sms_backoff_seconds).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(sms_backoff_seconds(u32::MAX), MAX_SMS_BACKOFF_SECONDS);
    }
}
