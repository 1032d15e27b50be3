//! The event bus port over EventBridge `PutEvents`.

use async_trait::async_trait;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

use crate::event_bus::{EventBus, EventBusError, EVENT_SOURCE};
use crate::events::OutboxEvent;

/// Puts events on one bus: `Source` [`EVENT_SOURCE`], `DetailType` the event's type,
/// `Detail` the event as consumers see it (`OutboxEvent::published`).
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: Client, bus_name: impl Into<String>) -> EventBridgeBus {
        EventBridgeBus {
            client,
            bus_name: bus_name.into(),
        }
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn put(&self, event: &OutboxEvent) -> Result<(), EventBusError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(EVENT_SOURCE)
            .detail_type(event.event_type.as_str())
            .detail(event.published().to_string())
            .resources(format!("member/{}", event.member_id))
            .build();
        let output = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| EventBusError(DisplayErrorContext(&e).to_string()))?;
        // PutEvents answers 200 even when an entry failed: each entry says for itself.
        if output.failed_entry_count() > 0 {
            let reason = output
                .entries()
                .iter()
                .find_map(|e| {
                    e.error_code()
                        .map(|code| format!("{code}: {}", e.error_message().unwrap_or("")))
                })
                .unwrap_or_else(|| "an entry failed".to_owned());
            return Err(EventBusError(reason));
        }
        Ok(())
    }
}
