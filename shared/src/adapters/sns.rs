//! The SMS port over Amazon SNS: `Publish` straight to a phone number.

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;

use crate::clock::Timestamp;
use crate::phone::PhoneNumber;
use crate::sms::{SmsError, SmsSender};

#[derive(Debug, Clone)]
pub struct SnsSmsSender {
    client: aws_sdk_sns::Client,
}

impl SnsSmsSender {
    pub fn new(client: aws_sdk_sns::Client) -> SnsSmsSender {
        SnsSmsSender { client }
    }
}

#[async_trait]
impl SmsSender for SnsSmsSender {
    async fn send(&self, phone: &PhoneNumber, message: &str, _now: Timestamp) -> Result<(), SmsError> {
        // Verification codes are time-critical: ask SNS for the transactional route.
        let sms_type = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("Transactional")
            .build()
            .map_err(|e| SmsError(e.to_string()))?;
        self.client
            .publish()
            .phone_number(phone.e164())
            .message(message)
            .message_attributes("AWS.SNS.SMS.SMSType", sms_type)
            .send()
            .await
            .map_err(|e| SmsError(aws_sdk_sns::error::DisplayErrorContext(&e).to_string()))?;
        tracing::info!(phone = %phone.masked(), "sms published through SNS");
        Ok(())
    }
}

/// Reconciliation alerts to an SNS topic (e-mail, chat or paging subscribe to it).
#[derive(Debug, Clone)]
pub struct SnsTopicAlerts {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsTopicAlerts {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> SnsTopicAlerts {
        SnsTopicAlerts {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl crate::alerts::AlertSink for SnsTopicAlerts {
    async fn alert(&self, subject: &str, message: &str) -> Result<(), crate::alerts::AlertError> {
        // SNS subjects are at most 100 characters.
        let subject: String = subject.chars().take(100).collect();
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map_err(|e| crate::alerts::AlertError(aws_sdk_sns::error::DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }
}
