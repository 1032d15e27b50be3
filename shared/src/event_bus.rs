//! The event bus port: where the marketplace's events go (EventBridge in AWS, a table of
//! the embedded database locally).

use async_trait::async_trait;

use crate::events::OutboxEvent;

/// The `Source` of every event this service puts.
pub const EVENT_SOURCE: &str = "fund-account";

/// Putting failed; the event may or may not have been accepted (consumers de-duplicate
/// on its `id`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event not published: {0}")]
pub struct EventBusError(pub String);

#[async_trait]
pub trait EventBus: Send + Sync {
    /// Puts one sequenced event (`OutboxEvent::published` is its detail, its type the
    /// detail-type). Succeeds only if the bus accepted it.
    async fn put(&self, event: &OutboxEvent) -> Result<(), EventBusError>;
}

/// The bus of a process that publishes nothing: every put fails loudly.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEventBus;

#[async_trait]
impl EventBus for NoEventBus {
    async fn put(&self, _event: &OutboxEvent) -> Result<(), EventBusError> {
        tracing::error!("this process publishes no events: check its event bus wiring");
        Err(EventBusError("this process publishes no events".to_owned()))
    }
}
