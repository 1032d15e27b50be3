//! Every answer the API can refuse with, and the one place each maps to HTTP.

use http::StatusCode;
use serde_json::{json, Map, Value};

use crate::clock::Timestamp;
use crate::money::Amount;

/// A refusal (4xx) or a fault (5xx), as the contract names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthorized,
    #[error("member id or password is wrong")]
    InvalidCredentials,
    #[error("caller is not allowed to use this route")]
    Forbidden,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("request body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("no route for this method and path")]
    RouteNotFound,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("the Idempotency-Key header is required")]
    IdempotencyKeyRequired,
    #[error("Idempotency-Key must be 1 to 255 printable ASCII characters")]
    InvalidIdempotencyKey,
    #[error("{0}")]
    InvalidAmount(String),
    #[error("currency must be USD or CNY")]
    UnsupportedCurrency,
    #[error("bank_account needs holder_name and bank_name (1 to 140 characters) and an account_number of 4 to 34 letters and digits")]
    InvalidBankAccount,
    #[error("phone must be in E.164 form, e.g. +8613800000000")]
    InvalidPhone,
    #[error("login_password_hash must be an argon2id PHC string")]
    InvalidPasswordHash,
    #[error("{0}")]
    PaymentPasswordTooWeak(String),
    #[error("the payment password must differ from the login password")]
    PaymentPasswordSameAsLogin,
    #[error("member not found")]
    MemberNotFound,
    #[error("withdrawal not found")]
    WithdrawalNotFound,
    #[error("collection not found")]
    CollectionNotFound,
    #[error("the account is already active")]
    AlreadyActive,
    #[error("no activation is waiting for an SMS code")]
    NoPendingActivation,
    #[error("no code has been sent; request one first")]
    NoCodeSent,
    #[error("the code has expired; request a new one")]
    CodeExpired,
    #[error("the code is wrong")]
    CodeIncorrect { attempts_left: u32 },
    #[error("too many wrong tries; request a new code")]
    CodeAttemptsExhausted,
    #[error("a code was sent less than 60 seconds ago")]
    CodeResendTooSoon { retry_after_seconds: i64 },
    #[error("at most 5 codes may be sent in an hour")]
    CodeSendLimit { retry_after_seconds: i64 },
    #[error("at most 10 payment passwords may be tried in an hour")]
    ActivationAttemptLimit { retry_after_seconds: i64 },
    #[error("the account is not active; activate it first")]
    AccountNotActive,
    #[error("the payment password is wrong")]
    PaymentPasswordIncorrect { attempts_left: u32 },
    #[error("withdrawals are locked after 5 wrong payment passwords")]
    PaymentPasswordLocked { locked_until: Timestamp },
    #[error("the amount is more than the available balance")]
    InsufficientFunds { available: Amount },
    #[error("the amount must be more than the withdrawal fee")]
    AmountBelowFee { fee: Amount },
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("collection_id was already used with different values")]
    CollectionConflict,
    #[error("refund_id was already used with different values")]
    RefundConflict,
    #[error("refunds would exceed the collection")]
    RefundExceedsCollection { refundable: Amount },
    #[error("the withdrawal already has the other outcome")]
    WithdrawalAlreadySettled,
    #[error("the platform does not pay out this currency to a bank in that currency")]
    UnsupportedPayout,
    #[error("a withdrawal in another currency needs the quote_id of its preview")]
    QuoteRequired,
    #[error("the quote was made for other values or another use")]
    QuoteMismatch,
    #[error("quote not found")]
    QuoteNotFound,
    #[error("the quote has been used")]
    QuoteUsed,
    #[error("the quote has expired; ask for a new one")]
    QuoteExpired,
    #[error("at most 10 unexpired, unused quotes may be held at once")]
    QuoteLimit { retry_after_seconds: i64 },
    #[error("sell and buy currencies must differ")]
    InvalidCurrencyPair,
    #[error("mid must be a positive decimal string with at most 8 fraction digits")]
    InvalidRate,
    #[error("{0}")]
    InvalidAsOf(String),
    #[error("{0}")]
    StaleRate(String),
    #[error("{0}")]
    RateOutOfBand(String),
    #[error("no current reference rate for this pair; try again shortly")]
    FxRateUnavailable,
    #[error("{0}")]
    InvalidRange(String),
    #[error("format must be csv")]
    UnsupportedFormat,
    #[error("export not found")]
    ExportNotFound,
    #[error("the SMS could not be sent; try again shortly")]
    SmsUnavailable,
    #[error("a dependency is unavailable; try again shortly")]
    ServiceUnavailable,
    /// Another transaction touched the same items at the same moment (DynamoDB's
    /// `TransactionConflict`). `retry::retrying` retries it; a client sees it (as 503
    /// `service_unavailable`) only when it outlasts every attempt.
    #[error("the store was busy with the same items; try again shortly")]
    Contention,
    #[error("internal error")]
    Internal,
}

/// How a refusal or fault is answered: its status, its contract code, the extra member
/// of its problem document, and the `Retry-After` seconds where the contract gives them.
struct Answer {
    status: StatusCode,
    code: &'static str,
    member: Option<(&'static str, Value)>,
    retry_after: Option<i64>,
}

impl Answer {
    fn new(status: StatusCode, code: &'static str) -> Answer {
        Answer {
            status,
            code,
            member: None,
            retry_after: None,
        }
    }

    fn with(mut self, name: &'static str, value: Value) -> Answer {
        self.member = Some((name, value));
        self
    }

    /// A wait the client is told about both in the header and in `retry_after`.
    fn retry_in(self, seconds: i64) -> Answer {
        let seconds = seconds.max(1);
        Answer {
            retry_after: Some(seconds),
            ..self.with("retry_after", json!(seconds))
        }
    }

    /// A transient fault: try again in a second.
    fn transient(mut self) -> Answer {
        self.retry_after = Some(1);
        self
    }
}

impl ApiError {
    /// The one table of answers: every variant's status, code and extras, side by side.
    fn answer(&self) -> Answer {
        use ApiError::*;
        use StatusCode as S;
        match self {
            Unauthorized => Answer::new(S::UNAUTHORIZED, "unauthorized"),
            InvalidCredentials => Answer::new(S::UNAUTHORIZED, "invalid_credentials"),
            Forbidden => Answer::new(S::FORBIDDEN, "forbidden"),
            InvalidRequest(_) => Answer::new(S::BAD_REQUEST, "invalid_request"),
            PayloadTooLarge => Answer::new(S::PAYLOAD_TOO_LARGE, "payload_too_large"),
            RouteNotFound => Answer::new(S::NOT_FOUND, "route_not_found"),
            MethodNotAllowed => Answer::new(S::METHOD_NOT_ALLOWED, "method_not_allowed"),
            IdempotencyKeyRequired => Answer::new(S::BAD_REQUEST, "idempotency_key_required"),
            InvalidIdempotencyKey => Answer::new(S::BAD_REQUEST, "invalid_idempotency_key"),
            InvalidAmount(_) => Answer::new(S::UNPROCESSABLE_ENTITY, "invalid_amount"),
            UnsupportedCurrency => Answer::new(S::UNPROCESSABLE_ENTITY, "unsupported_currency"),
            InvalidPhone => Answer::new(S::UNPROCESSABLE_ENTITY, "invalid_phone"),
            InvalidBankAccount => Answer::new(S::UNPROCESSABLE_ENTITY, "invalid_bank_account"),
            InvalidPasswordHash => Answer::new(S::UNPROCESSABLE_ENTITY, "invalid_password_hash"),
            PaymentPasswordTooWeak(_) => Answer::new(S::UNPROCESSABLE_ENTITY, "payment_password_too_weak"),
            PaymentPasswordSameAsLogin => Answer::new(S::UNPROCESSABLE_ENTITY, "payment_password_same_as_login"),
            MemberNotFound => Answer::new(S::NOT_FOUND, "member_not_found"),
            WithdrawalNotFound => Answer::new(S::NOT_FOUND, "withdrawal_not_found"),
            CollectionNotFound => Answer::new(S::NOT_FOUND, "collection_not_found"),
            AlreadyActive => Answer::new(S::CONFLICT, "already_active"),
            NoPendingActivation => Answer::new(S::CONFLICT, "no_pending_activation"),
            NoCodeSent => Answer::new(S::CONFLICT, "no_code_sent"),
            CodeExpired => Answer::new(S::GONE, "code_expired"),
            CodeIncorrect { attempts_left } => {
                Answer::new(S::UNPROCESSABLE_ENTITY, "code_incorrect").with("attempts_left", json!(attempts_left))
            }
            CodeAttemptsExhausted => Answer::new(S::TOO_MANY_REQUESTS, "code_attempts_exhausted"),
            CodeResendTooSoon { retry_after_seconds } => {
                Answer::new(S::TOO_MANY_REQUESTS, "code_resend_too_soon").retry_in(*retry_after_seconds)
            }
            CodeSendLimit { retry_after_seconds } => {
                Answer::new(S::TOO_MANY_REQUESTS, "code_send_limit").retry_in(*retry_after_seconds)
            }
            ActivationAttemptLimit { retry_after_seconds } => {
                Answer::new(S::TOO_MANY_REQUESTS, "activation_attempt_limit").retry_in(*retry_after_seconds)
            }
            AccountNotActive => Answer::new(S::CONFLICT, "account_not_active"),
            PaymentPasswordIncorrect { attempts_left } => {
                Answer::new(S::FORBIDDEN, "payment_password_incorrect").with("attempts_left", json!(attempts_left))
            }
            PaymentPasswordLocked { locked_until } => {
                Answer::new(S::LOCKED, "payment_password_locked").with("locked_until", json!(locked_until.to_rfc3339()))
            }
            InsufficientFunds { available } => Answer::new(S::UNPROCESSABLE_ENTITY, "insufficient_funds")
                .with("available", json!(available.to_string())),
            AmountBelowFee { fee } => {
                Answer::new(S::UNPROCESSABLE_ENTITY, "amount_below_fee").with("fee", json!(fee.to_string()))
            }
            IdempotencyKeyReused => Answer::new(S::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            CollectionConflict => Answer::new(S::CONFLICT, "collection_conflict"),
            RefundConflict => Answer::new(S::CONFLICT, "refund_conflict"),
            RefundExceedsCollection { refundable } => Answer::new(S::UNPROCESSABLE_ENTITY, "refund_exceeds_collection")
                .with("refundable", json!(refundable.to_string())),
            WithdrawalAlreadySettled => Answer::new(S::CONFLICT, "withdrawal_already_settled"),
            UnsupportedPayout => Answer::new(S::UNPROCESSABLE_ENTITY, "unsupported_payout"),
            QuoteRequired => Answer::new(S::UNPROCESSABLE_ENTITY, "quote_required"),
            QuoteMismatch => Answer::new(S::UNPROCESSABLE_ENTITY, "quote_mismatch"),
            QuoteNotFound => Answer::new(S::NOT_FOUND, "quote_not_found"),
            QuoteUsed => Answer::new(S::CONFLICT, "quote_used"),
            QuoteExpired => Answer::new(S::GONE, "quote_expired"),
            QuoteLimit { retry_after_seconds } => {
                Answer::new(S::TOO_MANY_REQUESTS, "quote_limit").retry_in(*retry_after_seconds)
            }
            InvalidCurrencyPair => Answer::new(S::UNPROCESSABLE_ENTITY, "invalid_currency_pair"),
            InvalidRate => Answer::new(S::UNPROCESSABLE_ENTITY, "invalid_rate"),
            InvalidAsOf(_) => Answer::new(S::UNPROCESSABLE_ENTITY, "invalid_as_of"),
            StaleRate(_) => Answer::new(S::CONFLICT, "stale_rate"),
            RateOutOfBand(_) => Answer::new(S::CONFLICT, "rate_out_of_band"),
            // The treasury feed is minutes behind, not a second: ask again in a minute.
            FxRateUnavailable => Answer::new(S::SERVICE_UNAVAILABLE, "fx_rate_unavailable").retry_in(60),
            InvalidRange(_) => Answer::new(S::UNPROCESSABLE_ENTITY, "invalid_range"),
            UnsupportedFormat => Answer::new(S::UNPROCESSABLE_ENTITY, "unsupported_format"),
            ExportNotFound => Answer::new(S::NOT_FOUND, "export_not_found"),
            SmsUnavailable => Answer::new(S::SERVICE_UNAVAILABLE, "sms_unavailable").transient(),
            ServiceUnavailable | Contention => Answer::new(S::SERVICE_UNAVAILABLE, "service_unavailable").transient(),
            Internal => Answer::new(S::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.answer().status
    }

    /// The stable machine-readable name of the contract.
    pub fn code(&self) -> &'static str {
        self.answer().code
    }

    /// Seconds for a `Retry-After` header, where the contract gives one.
    pub fn retry_after_seconds(&self) -> Option<i64> {
        self.answer().retry_after
    }

    /// The RFC 9457 problem document. Carries no secret: every field is built here.
    pub fn problem(&self) -> Value {
        let answer = self.answer();
        let mut body = Map::new();
        body.insert(
            "type".to_owned(),
            json!(format!("urn:fund-account:problem:{}", answer.code)),
        );
        body.insert(
            "title".to_owned(),
            json!(answer.status.canonical_reason().unwrap_or("Error")),
        );
        body.insert("status".to_owned(), json!(answer.status.as_u16()));
        body.insert("detail".to_owned(), json!(self.to_string()));
        body.insert("code".to_owned(), json!(answer.code));
        if let Some((name, value)) = answer.member {
            body.insert(name.to_owned(), value);
        }
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> Vec<ApiError> {
        use ApiError::*;
        let amount = Amount::parse_request("1.00").unwrap();
        vec![
            Unauthorized,
            InvalidCredentials,
            Forbidden,
            InvalidRequest("x".to_owned()),
            PayloadTooLarge,
            RouteNotFound,
            MethodNotAllowed,
            IdempotencyKeyRequired,
            InvalidIdempotencyKey,
            InvalidAmount("x".to_owned()),
            UnsupportedCurrency,
            InvalidBankAccount,
            InvalidPhone,
            InvalidPasswordHash,
            PaymentPasswordTooWeak("x".to_owned()),
            PaymentPasswordSameAsLogin,
            MemberNotFound,
            WithdrawalNotFound,
            CollectionNotFound,
            AlreadyActive,
            NoPendingActivation,
            NoCodeSent,
            CodeExpired,
            CodeIncorrect { attempts_left: 2 },
            CodeAttemptsExhausted,
            CodeResendTooSoon { retry_after_seconds: 0 },
            CodeSendLimit {
                retry_after_seconds: 30,
            },
            ActivationAttemptLimit {
                retry_after_seconds: 60,
            },
            AccountNotActive,
            PaymentPasswordIncorrect { attempts_left: 0 },
            PaymentPasswordLocked {
                locked_until: Timestamp::from_unix_millis(0),
            },
            InsufficientFunds { available: amount },
            AmountBelowFee { fee: amount },
            IdempotencyKeyReused,
            CollectionConflict,
            RefundConflict,
            RefundExceedsCollection { refundable: amount },
            WithdrawalAlreadySettled,
            UnsupportedPayout,
            QuoteRequired,
            QuoteMismatch,
            QuoteNotFound,
            QuoteUsed,
            QuoteExpired,
            QuoteLimit {
                retry_after_seconds: 60,
            },
            InvalidCurrencyPair,
            InvalidRate,
            InvalidAsOf("x".to_owned()),
            StaleRate("x".to_owned()),
            RateOutOfBand("x".to_owned()),
            FxRateUnavailable,
            InvalidRange("x".to_owned()),
            UnsupportedFormat,
            ExportNotFound,
            SmsUnavailable,
            ServiceUnavailable,
            Contention,
            Internal,
        ]
    }

    #[test]
    fn each_code_names_one_refusal_and_a_problem_carries_it() {
        let mut codes = std::collections::HashMap::new();
        for error in every_variant() {
            let problem = error.problem();
            assert_eq!(problem["code"], error.code());
            assert_eq!(problem["status"], error.status().as_u16());
            assert_eq!(problem["type"], format!("urn:fund-account:problem:{}", error.code()));
            assert_eq!(problem["detail"], error.to_string());
            if let Some(previous) = codes.insert(error.code(), error.clone()) {
                // A conflict the retries outlasted is, to the client, the service being busy.
                assert_eq!(
                    (previous, error),
                    (ApiError::ServiceUnavailable, ApiError::Contention),
                    "one code, two meanings"
                );
            }
        }
    }

    #[test]
    fn a_wait_is_in_the_header_and_in_the_body_and_at_least_a_second() {
        let soon = ApiError::CodeResendTooSoon { retry_after_seconds: 0 };
        assert_eq!(soon.retry_after_seconds(), Some(1));
        assert_eq!(soon.problem()["retry_after"], 1);
        let limit = ApiError::CodeSendLimit {
            retry_after_seconds: 30,
        };
        assert_eq!(
            (limit.retry_after_seconds(), limit.problem()["retry_after"].as_i64()),
            (Some(30), Some(30))
        );
        let busy = ApiError::Contention;
        assert_eq!((busy.status().as_u16(), busy.retry_after_seconds()), (503, Some(1)));
        assert!(
            busy.problem().get("retry_after").is_none(),
            "a transient fault only sets the header"
        );
        assert_eq!(
            ApiError::InsufficientFunds {
                available: Amount::ZERO
            }
            .problem()["available"],
            "0.00"
        );
        assert_eq!(ApiError::Internal.retry_after_seconds(), None);
    }
}
