//! The SMS port: how verification codes reach a phone.

use async_trait::async_trait;
use serde::Serialize;

use crate::clock::Timestamp;
use crate::phone::PhoneNumber;

/// Sending failed; the message may not have been delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sms not sent: {0}")]
pub struct SmsError(pub String);

#[async_trait]
pub trait SmsSender: Send + Sync {
    /// Sends `message` to `phone`. Implementations never log the message text.
    async fn send(&self, phone: &PhoneNumber, message: &str, now: Timestamp) -> Result<(), SmsError>;
}

/// The SMS port of a function that sends none: every send fails (a 503 and an error log,
/// never a silent drop), so a wiring mistake shows at once. It lets such a function leave
/// the SNS client out of its binary.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSms;

#[async_trait]
impl SmsSender for NoSms {
    async fn send(&self, _phone: &PhoneNumber, _message: &str, _now: Timestamp) -> Result<(), SmsError> {
        tracing::error!("this function sends no SMS: check its SMS wiring in lambda::aws");
        Err(SmsError("this function sends no SMS".to_owned()))
    }
}

/// A message the local outbox holds, as `GET /dev/sms` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxMessage {
    pub phone: String,
    pub message: String,
    pub sent_at: Timestamp,
}

/// The text of a verification SMS, in both languages the sellers read.
pub fn verification_message(code: &str, valid_minutes: i64) -> String {
    format!(
        "[Fund Account] Your verification code is {code}, valid for {valid_minutes} minutes. \
         【资金账户】您的验证码为 {code}，{valid_minutes} 分钟内有效。"
    )
}
