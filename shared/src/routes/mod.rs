//! The API's routes: one table that the Lambdas, the local gateway, `template.yaml` and
//! `openapi.yaml` all agree with (a test checks), and one thin handler per route.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use http::Method;
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::error::ApiError;
use crate::http::{request_id, respond, Reply};

mod account;
mod activation;
mod exchange;
mod members;
mod money_in;
mod statements;
mod withdrawals;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A seller with a JWT (`sub` claim).
    Member,
    /// A marketplace service with an IAM identity.
    Internal,
}

/// Declares `Route` and `Route::ALL` from one list, so the two cannot drift apart.
macro_rules! routes {
    ($($variant:ident),* $(,)?) => {
        /// Every route of the contract; each is its own Lambda function.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Route {
            $($variant),*
        }

        impl Route {
            pub const ALL: &'static [Route] = &[$(Route::$variant),*];
        }
    };
}

routes!(
    GetAccount,
    Activate,
    SendCode,
    ConfirmCode,
    MemberSync,
    Withdraw,
    GetWithdrawal,
    ListWithdrawals,
    ListTransactions,
    CreateCollection,
    CreateRefund,
    WithdrawalPaid,
    WithdrawalReturned,
    GetFees,
    PreviewWithdrawal,
    PutFxRate,
    CreateQuote,
    CreateConversion,
    ListConversions,
    PlatformBalances,
    GetStatement,
    CreateExport,
    GetExport,
);

impl Route {
    /// `(method, path template, function crate, caller)`.
    fn spec(self) -> (Method, &'static str, &'static str, Caller) {
        match self {
            Route::GetAccount => (Method::GET, "/v1/account", "get-account", Caller::Member),
            Route::Activate => (Method::POST, "/v1/activation", "activate", Caller::Member),
            Route::SendCode => (Method::POST, "/v1/activation/code", "send-code", Caller::Member),
            Route::ConfirmCode => (Method::POST, "/v1/activation/confirm", "confirm-code", Caller::Member),
            Route::MemberSync => (
                Method::PUT,
                "/internal/members/{member_id}",
                "member-sync",
                Caller::Internal,
            ),
            Route::Withdraw => (Method::POST, "/v1/withdrawals", "withdraw", Caller::Member),
            Route::GetWithdrawal => (Method::GET, "/v1/withdrawals/{id}", "get-withdrawal", Caller::Member),
            Route::ListWithdrawals => (Method::GET, "/v1/withdrawals", "list-withdrawals", Caller::Member),
            Route::ListTransactions => (
                Method::GET,
                "/v1/account/transactions",
                "list-transactions",
                Caller::Member,
            ),
            Route::CreateCollection => (
                Method::POST,
                "/internal/collections",
                "create-collection",
                Caller::Internal,
            ),
            Route::CreateRefund => (Method::POST, "/internal/refunds", "create-refund", Caller::Internal),
            Route::WithdrawalPaid => (
                Method::POST,
                "/internal/withdrawals/{id}/paid",
                "withdrawal-paid",
                Caller::Internal,
            ),
            Route::WithdrawalReturned => (
                Method::POST,
                "/internal/withdrawals/{id}/returned",
                "withdrawal-returned",
                Caller::Internal,
            ),
            Route::GetFees => (Method::GET, "/v1/fees", "get-fees", Caller::Member),
            Route::PreviewWithdrawal => (
                Method::POST,
                "/v1/withdrawals/preview",
                "preview-withdrawal",
                Caller::Member,
            ),
            Route::PutFxRate => (
                Method::PUT,
                "/internal/fx-rates/{pair}",
                "put-fx-rate",
                Caller::Internal,
            ),
            Route::CreateQuote => (Method::POST, "/v1/fx/quotes", "create-quote", Caller::Member),
            Route::CreateConversion => (Method::POST, "/v1/conversions", "create-conversion", Caller::Member),
            Route::ListConversions => (Method::GET, "/v1/conversions", "list-conversions", Caller::Member),
            Route::PlatformBalances => (
                Method::GET,
                "/internal/platform/balances",
                "platform-balances",
                Caller::Internal,
            ),
            Route::GetStatement => (Method::GET, "/v1/statements", "get-statement", Caller::Member),
            Route::CreateExport => (Method::POST, "/v1/statements/exports", "create-export", Caller::Member),
            Route::GetExport => (Method::GET, "/v1/statements/exports/{id}", "get-export", Caller::Member),
        }
    }

    pub fn method(self) -> Method {
        self.spec().0
    }

    /// The path template, with `{name}` for path parameters (API Gateway's syntax).
    pub fn path(self) -> &'static str {
        self.spec().1
    }

    /// The function crate and binary that serves the route.
    pub fn function(self) -> &'static str {
        self.spec().2
    }

    pub fn caller(self) -> Caller {
        self.spec().3
    }

    /// Matches a concrete path against this route's template, returning the path
    /// parameters.
    pub fn match_path(self, path: &str) -> Option<Vec<(String, String)>> {
        let mut params = Vec::new();
        let mut template = self.path().split('/');
        let mut actual = path.split('/');
        loop {
            match (template.next(), actual.next()) {
                (None, None) => return Some(params),
                (Some(t), Some(a)) if t.starts_with('{') && t.ends_with('}') => {
                    if a.is_empty() {
                        return None;
                    }
                    // API Gateway hands path parameters over percent-decoded.
                    params.push((t[1..t.len() - 1].to_owned(), percent_decode(a)?));
                }
                (Some(t), Some(a)) if t == a => {}
                _ => return None,
            }
        }
    }

    /// The methods some route serves on this concrete path (empty when no route's path
    /// matches): what a `405`'s `Allow` header lists.
    pub fn allowed_methods(path: &str) -> Vec<Method> {
        Route::ALL
            .iter()
            .filter(|route| route.match_path(path).is_some())
            .map(|route| route.method())
            .collect()
    }

    /// The route for a method and path: `Err(MethodNotAllowed)` when only the method
    /// is wrong (the methods it serves are [`Route::allowed_methods`]),
    /// `Err(RouteNotFound)` when no path matches.
    pub fn resolve(method: &Method, path: &str) -> Result<(Route, Vec<(String, String)>), ApiError> {
        let mut path_matched = false;
        for route in Route::ALL {
            if let Some(params) = route.match_path(path) {
                if route.method() == *method {
                    return Ok((*route, params));
                }
                path_matched = true;
            }
        }
        Err(if path_matched {
            ApiError::MethodNotAllowed
        } else {
            ApiError::RouteNotFound
        })
    }
}

/// What a handler returns: the reply or the refusal, boxed so that every handler has one
/// type.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + Send + 'a>>;

/// One route's handler, as a plain function pointer: a Lambda is handed exactly its own
/// (`lambda::aws`), so its binary links that handler and no other.
pub type Handler = for<'a> fn(&'a App, Request) -> HandlerFuture<'a>;

/// Every route's handler, one constant each.
pub mod handlers {
    use super::{account, activation, exchange, members, money_in, statements, withdrawals, Handler};

    pub const GET_ACCOUNT: Handler = |app, req| Box::pin(account::get_account(app, req));
    pub const ACTIVATE: Handler = |app, req| Box::pin(activation::activate(app, req));
    pub const SEND_CODE: Handler = |app, req| Box::pin(activation::send_code(app, req));
    pub const CONFIRM_CODE: Handler = |app, req| Box::pin(activation::confirm_code(app, req));
    pub const MEMBER_SYNC: Handler = |app, req| Box::pin(members::sync(app, req));
    pub const WITHDRAW: Handler = |app, req| Box::pin(withdrawals::create(app, req));
    pub const GET_WITHDRAWAL: Handler = |app, req| Box::pin(withdrawals::get(app, req));
    pub const LIST_WITHDRAWALS: Handler = |app, req| Box::pin(withdrawals::list(app, req));
    pub const LIST_TRANSACTIONS: Handler = |app, req| Box::pin(money_in::transactions(app, req));
    pub const CREATE_COLLECTION: Handler = |app, req| Box::pin(money_in::create_collection(app, req));
    pub const CREATE_REFUND: Handler = |app, req| Box::pin(money_in::create_refund(app, req));
    pub const WITHDRAWAL_PAID: Handler = |app, req| Box::pin(withdrawals::paid(app, req));
    pub const WITHDRAWAL_RETURNED: Handler = |app, req| Box::pin(withdrawals::returned(app, req));
    pub const GET_FEES: Handler = |app, req| Box::pin(exchange::fees(app, req));
    pub const PREVIEW_WITHDRAWAL: Handler = |app, req| Box::pin(exchange::preview(app, req));
    pub const PUT_FX_RATE: Handler = |app, req| Box::pin(exchange::put_rate(app, req));
    pub const CREATE_QUOTE: Handler = |app, req| Box::pin(exchange::create_quote(app, req));
    pub const CREATE_CONVERSION: Handler = |app, req| Box::pin(exchange::create_conversion(app, req));
    pub const LIST_CONVERSIONS: Handler = |app, req| Box::pin(exchange::list_conversions(app, req));
    pub const PLATFORM_BALANCES: Handler = |app, req| Box::pin(exchange::platform_balances(app, req));
    pub const GET_STATEMENT: Handler = |app, req| Box::pin(statements::get(app, req));
    pub const CREATE_EXPORT: Handler = |app, req| Box::pin(statements::create_export(app, req));
    pub const GET_EXPORT: Handler = |app, req| Box::pin(statements::get_export(app, req));
}

impl Route {
    /// The route's handler: how the local gateway and the tests dispatch. (A Lambda names
    /// its own handler instead, so that it links no other.)
    pub fn handler(self) -> Handler {
        match self {
            Route::GetAccount => handlers::GET_ACCOUNT,
            Route::Activate => handlers::ACTIVATE,
            Route::SendCode => handlers::SEND_CODE,
            Route::ConfirmCode => handlers::CONFIRM_CODE,
            Route::MemberSync => handlers::MEMBER_SYNC,
            Route::Withdraw => handlers::WITHDRAW,
            Route::GetWithdrawal => handlers::GET_WITHDRAWAL,
            Route::ListWithdrawals => handlers::LIST_WITHDRAWALS,
            Route::ListTransactions => handlers::LIST_TRANSACTIONS,
            Route::CreateCollection => handlers::CREATE_COLLECTION,
            Route::CreateRefund => handlers::CREATE_REFUND,
            Route::WithdrawalPaid => handlers::WITHDRAWAL_PAID,
            Route::WithdrawalReturned => handlers::WITHDRAWAL_RETURNED,
            Route::GetFees => handlers::GET_FEES,
            Route::PreviewWithdrawal => handlers::PREVIEW_WITHDRAWAL,
            Route::PutFxRate => handlers::PUT_FX_RATE,
            Route::CreateQuote => handlers::CREATE_QUOTE,
            Route::CreateConversion => handlers::CREATE_CONVERSION,
            Route::ListConversions => handlers::LIST_CONVERSIONS,
            Route::PlatformBalances => handlers::PLATFORM_BALANCES,
            Route::GetStatement => handlers::GET_STATEMENT,
            Route::CreateExport => handlers::CREATE_EXPORT,
            Route::GetExport => handlers::GET_EXPORT,
        }
    }
}

/// Decodes `%XX` escapes; `None` if they are malformed or not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Serves one request on `route`: the entry point of the local gateway and the tests.
/// Always answers; a fault becomes a 5xx problem, never a panic.
pub async fn handle(route: Route, app: &App, req: Request) -> Response<Body> {
    serve(route, route.handler(), app, req).await
}

/// Serves one request on `route` with its `handler`: the request id, the problem+json
/// of a refusal, one log line per request.
pub async fn serve(route: Route, handler: Handler, app: &App, req: Request) -> Response<Body> {
    let started = Instant::now();
    let id = request_id(&req);
    let outcome = handler(app, req).await;
    let response = respond(&id, outcome);
    tracing::info!(
        request_id = %id,
        function = route.function(),
        status = response.status().as_u16(),
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "request served"
    );
    response
}
