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
    #[error("a request with this Idempotency-Key is still being processed")]
    RequestInProgress,
    #[error("collection_id was already used with different values")]
    CollectionConflict,
    #[error("refund_id was already used with different values")]
    RefundConflict,
    #[error("refunds would exceed the collection")]
    RefundExceedsCollection { refundable: Amount },
    #[error("the withdrawal already has the other outcome")]
    WithdrawalAlreadySettled,
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

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            Unauthorized | InvalidCredentials => StatusCode::UNAUTHORIZED,
            Forbidden | PaymentPasswordIncorrect { .. } => StatusCode::FORBIDDEN,
            InvalidRequest(_) | IdempotencyKeyRequired | InvalidIdempotencyKey => StatusCode::BAD_REQUEST,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RouteNotFound | MemberNotFound | WithdrawalNotFound | CollectionNotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            InvalidAmount(_)
            | UnsupportedCurrency
            | InvalidPhone
            | InvalidBankAccount
            | InvalidPasswordHash
            | PaymentPasswordTooWeak(_)
            | PaymentPasswordSameAsLogin
            | CodeIncorrect { .. }
            | InsufficientFunds { .. }
            | AmountBelowFee { .. }
            | IdempotencyKeyReused
            | RefundExceedsCollection { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AlreadyActive
            | NoPendingActivation
            | NoCodeSent
            | AccountNotActive
            | RequestInProgress
            | CollectionConflict
            | RefundConflict
            | WithdrawalAlreadySettled => StatusCode::CONFLICT,
            CodeExpired => StatusCode::GONE,
            PaymentPasswordLocked { .. } => StatusCode::LOCKED,
            CodeAttemptsExhausted | CodeResendTooSoon { .. } | CodeSendLimit { .. } | ActivationAttemptLimit { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            SmsUnavailable | ServiceUnavailable | Contention => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable name of the contract.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            Unauthorized => "unauthorized",
            InvalidCredentials => "invalid_credentials",
            Forbidden => "forbidden",
            InvalidRequest(_) => "invalid_request",
            PayloadTooLarge => "payload_too_large",
            RouteNotFound => "route_not_found",
            MethodNotAllowed => "method_not_allowed",
            IdempotencyKeyRequired => "idempotency_key_required",
            InvalidIdempotencyKey => "invalid_idempotency_key",
            InvalidAmount(_) => "invalid_amount",
            UnsupportedCurrency => "unsupported_currency",
            InvalidPhone => "invalid_phone",
            InvalidBankAccount => "invalid_bank_account",
            InvalidPasswordHash => "invalid_password_hash",
            PaymentPasswordTooWeak(_) => "payment_password_too_weak",
            PaymentPasswordSameAsLogin => "payment_password_same_as_login",
            MemberNotFound => "member_not_found",
            WithdrawalNotFound => "withdrawal_not_found",
            CollectionNotFound => "collection_not_found",
            AlreadyActive => "already_active",
            NoPendingActivation => "no_pending_activation",
            NoCodeSent => "no_code_sent",
            CodeExpired => "code_expired",
            CodeIncorrect { .. } => "code_incorrect",
            CodeAttemptsExhausted => "code_attempts_exhausted",
            CodeResendTooSoon { .. } => "code_resend_too_soon",
            CodeSendLimit { .. } => "code_send_limit",
            ActivationAttemptLimit { .. } => "activation_attempt_limit",
            AccountNotActive => "account_not_active",
            PaymentPasswordIncorrect { .. } => "payment_password_incorrect",
            PaymentPasswordLocked { .. } => "payment_password_locked",
            InsufficientFunds { .. } => "insufficient_funds",
            AmountBelowFee { .. } => "amount_below_fee",
            IdempotencyKeyReused => "idempotency_key_reused",
            RequestInProgress => "request_in_progress",
            CollectionConflict => "collection_conflict",
            RefundConflict => "refund_conflict",
            RefundExceedsCollection { .. } => "refund_exceeds_collection",
            WithdrawalAlreadySettled => "withdrawal_already_settled",
            SmsUnavailable => "sms_unavailable",
            ServiceUnavailable | Contention => "service_unavailable",
            Internal => "internal_error",
        }
    }

    /// Seconds for a `Retry-After` header, where the contract gives one.
    pub fn retry_after_seconds(&self) -> Option<i64> {
        match self {
            ApiError::CodeResendTooSoon { retry_after_seconds }
            | ApiError::CodeSendLimit { retry_after_seconds }
            | ApiError::ActivationAttemptLimit { retry_after_seconds } => Some((*retry_after_seconds).max(1)),
            ApiError::SmsUnavailable | ApiError::ServiceUnavailable | ApiError::Contention => Some(1),
            _ => None,
        }
    }

    /// The RFC 9457 problem document. Carries no secret: every field is built here.
    pub fn problem(&self) -> Value {
        let status = self.status();
        let mut body = Map::new();
        body.insert(
            "type".to_owned(),
            json!(format!("urn:fund-account:problem:{}", self.code())),
        );
        body.insert("title".to_owned(), json!(status.canonical_reason().unwrap_or("Error")));
        body.insert("status".to_owned(), json!(status.as_u16()));
        body.insert("detail".to_owned(), json!(self.to_string()));
        body.insert("code".to_owned(), json!(self.code()));
        match self {
            ApiError::CodeIncorrect { attempts_left } | ApiError::PaymentPasswordIncorrect { attempts_left } => {
                body.insert("attempts_left".to_owned(), json!(attempts_left));
            }
            ApiError::PaymentPasswordLocked { locked_until } => {
                body.insert("locked_until".to_owned(), json!(locked_until.to_rfc3339()));
            }
            ApiError::InsufficientFunds { available } => {
                body.insert("available".to_owned(), json!(available.to_string()));
            }
            ApiError::AmountBelowFee { fee } => {
                body.insert("fee".to_owned(), json!(fee.to_string()));
            }
            ApiError::RefundExceedsCollection { refundable } => {
                body.insert("refundable".to_owned(), json!(refundable.to_string()));
            }
            ApiError::CodeResendTooSoon { retry_after_seconds }
            | ApiError::CodeSendLimit { retry_after_seconds }
            | ApiError::ActivationAttemptLimit { retry_after_seconds } => {
                body.insert("retry_after".to_owned(), json!(retry_after_seconds.max(&1)));
            }
            _ => {}
        }
        Value::Object(body)
    }
}
