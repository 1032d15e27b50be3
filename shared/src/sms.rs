//! The SMS port: how verification codes reach a phone.

use async_trait::async_trait;
use serde::Serialize;

use crate::clock::Timestamp;
use crate::events::{EventType, OutboxEvent};
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

/// The text of a withdrawal's SMS, built from its event when it is sent: the amount, the
/// status and the account's last 4 digits, in both languages. `None` for events that
/// notify no one.
pub fn movement_message(event: &OutboxEvent) -> Option<String> {
    let text = |name: &str| event.detail.get(name).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let (amount, currency, last4) = (text("amount"), text("currency"), text("account_last4"));
    let id = text("withdrawal_id");
    let message = match event.event_type {
        EventType::WithdrawalCreated => format!(
            "【资金账户】您的提现 {amount} {currency} 已受理，将转入尾号 {last4} 的账户。\
             [Fund Account] Your withdrawal of {amount} {currency} to the account ending {last4} \
             is being processed. ({id})"
        ),
        EventType::WithdrawalPaid => format!(
            "【资金账户】您的提现 {amount} {currency} 已支付至尾号 {last4} 的账户。\
             [Fund Account] Your withdrawal of {amount} {currency} was paid to the account \
             ending {last4}. ({id})"
        ),
        EventType::WithdrawalReturned => format!(
            "【资金账户】您的提现 {amount} {currency} 被尾号 {last4} 的账户退回，款项已退回余额。\
             [Fund Account] Your withdrawal of {amount} {currency} to the account ending {last4} \
             was returned; the money is back in your balance. ({id})"
        ),
        _ => return None,
    };
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::MemberId;

    fn event(event_type: EventType) -> OutboxEvent {
        OutboxEvent {
            id: "ev_1".to_owned(),
            event_type,
            member_id: MemberId::parse("m1").unwrap(),
            time: Timestamp::from_unix_millis(0),
            detail: serde_json::json!({
                "withdrawal_id": "wd_1", "amount": "250.00", "currency": "USD", "account_last4": "2233",
            }),
            sequence: None,
        }
    }

    #[test]
    fn a_withdrawals_sms_says_the_amount_and_the_last_4_digits_in_both_languages() {
        for (event_type, chinese, english) in [
            (EventType::WithdrawalCreated, "已受理", "is being processed"),
            (EventType::WithdrawalPaid, "已支付", "was paid"),
            (EventType::WithdrawalReturned, "退回", "was returned"),
        ] {
            let text = movement_message(&event(event_type)).unwrap();
            for part in [chinese, english, "250.00 USD", "2233", "【资金账户】", "[Fund Account]"] {
                assert!(text.contains(part), "{part} in {text}");
            }
        }
        assert_eq!(movement_message(&event(EventType::CollectionCreated)), None);
    }
}
