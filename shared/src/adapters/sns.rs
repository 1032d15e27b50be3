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
