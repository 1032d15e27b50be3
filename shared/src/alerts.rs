//! The alert port: where reconciliation tells people that the books are off.

use async_trait::async_trait;

/// Publishing an alert failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("alert not published: {0}")]
pub struct AlertError(pub String);

#[async_trait]
pub trait AlertSink: Send + Sync {
    async fn alert(&self, subject: &str, message: &str) -> Result<(), AlertError>;
}

/// Alerts as error-level log lines only: for processes with no alert topic configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogAlerts;

#[async_trait]
impl AlertSink for LogAlerts {
    async fn alert(&self, subject: &str, message: &str) -> Result<(), AlertError> {
        tracing::error!(subject, message, "ALERT");
        Ok(())
    }
}
