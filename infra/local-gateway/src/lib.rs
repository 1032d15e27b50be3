//! The local gateway: plays API Gateway on 127.0.0.1 in front of the very handlers the
//! Lambdas run.
//!
//! For `/v1` it verifies a bearer JWT (HS256, local secret) and puts its claims where
//! API Gateway's JWT authorizer would; for `/internal` it accepts `x-internal-key` in
//! place of SigV4 and fills in an IAM identity. Then it builds the API Gateway v2 event
//! and hands it to `lambda_http`'s own conversion, exactly as in Lambda.

pub mod config;
mod dev;
mod event;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use fund_account::adapters::dynamodb::DynamoStore;
use fund_account::adapters::local_files::LocalFiles;
use fund_account::adapters::sns::SnsSmsSender;
use fund_account::adapters::sqlite::{SqliteEventBus, SqliteOutbox, SqliteStore};
use fund_account::app::{App, Settings};
use fund_account::clock::Clock;
use fund_account::error::ApiError;
use fund_account::http::{method_not_allowed, respond, MAX_BODY_BYTES};
use fund_account::routes::{self, Caller, Route};
use fund_account::sms::SmsSender;
use fund_account::store::Store;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

pub use config::{GatewayConfig, SmsBackend, StoreBackend};
pub use fund_account::adapters::sqlite::GroupCommit;

/// Tokens `/dev/login` issues live this long.
pub const TOKEN_TTL_SECONDS: i64 = 3600;
const TOKEN_ISSUER: &str = "local-gateway";

/// A running gateway's state: the same `App` a Lambda builds, plus local extras.
pub struct Gateway {
    pub app: Arc<App>,
    pub config: GatewayConfig,
    /// The SMS outbox, when SMS goes there rather than to SNS.
    pub outbox: Option<SqliteOutbox>,
    /// The embedded store, when in use (for `/dev` routes that need it).
    pub embedded: Option<SqliteStore>,
    /// Statement exports, under the data directory, served by `/dev/files/...`.
    pub files: LocalFiles,
    /// Exports being written now, so that a poll does not start a second writer.
    exports_running: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The local event bus (`GET /dev/events`), fed from the embedded store's stream.
    pub events: Option<SqliteEventBus>,
}

impl Gateway {
    /// Opens the configured store and SMS sender (AWS ones with the SDK's default
    /// configuration from the environment).
    pub async fn build(config: GatewayConfig, clock: Arc<dyn Clock>) -> Result<Gateway, String> {
        let needs_aws = matches!(config.store, StoreBackend::DynamoDb { .. }) || config.sms == SmsBackend::Sns;
        let aws = if needs_aws {
            Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
        } else {
            None
        };
        Gateway::build_with_aws(config, clock, aws).await
    }

    /// [`Gateway::build`] with the AWS SDK configuration given (tests point it at an
    /// emulator); `None` falls back to the embedded store and the outbox.
    pub async fn build_with_aws(
        config: GatewayConfig,
        clock: Arc<dyn Clock>,
        aws: Option<aws_config::SdkConfig>,
    ) -> Result<Gateway, String> {
        let settings = settings_from_env(Settings::new(config.code_secret.clone()).map_err(|e| e.to_string())?)?;
        let embedded = SqliteStore::open_with(&config.data_dir.join("fund-account.sqlite3"), config.group_commit)
            .map_err(|e| e.to_string())?;

        let store: Arc<dyn Store> = match (&config.store, &aws) {
            (StoreBackend::DynamoDb { table }, Some(aws)) => {
                let client = aws_sdk_dynamodb::Client::new(aws);
                ensure_table(&client, table).await?;
                Arc::new(DynamoStore::new(client, table.clone()))
            }
            (StoreBackend::DynamoDb { .. }, None) => {
                return Err("LOCAL_STORE=dynamodb needs an AWS configuration".to_owned())
            }
            (StoreBackend::Embedded, _) => Arc::new(embedded.clone()),
        };
        let outbox = embedded.outbox();
        let (sms, outbox): (Arc<dyn SmsSender>, Option<SqliteOutbox>) = match (&config.sms, &aws) {
            (SmsBackend::Sns, Some(aws)) => (Arc::new(SnsSmsSender::new(aws_sdk_sns::Client::new(aws))), None),
            _ => (Arc::new(outbox.clone()), Some(outbox)),
        };
        let alerts = Arc::new(embedded.alerts());
        let embedded = matches!(config.store, StoreBackend::Embedded).then_some(embedded);
        // Download URLs are the gateway's own, signed with its token secret (a local
        // secret already; the signature's input is domain-separated from a token's).
        let files = LocalFiles::new(
            config.data_dir.join("files"),
            format!("http://{}", config.addr),
            config.jwt_secret.clone(),
        );
        let events = embedded.as_ref().map(SqliteStore::event_bus);
        let mut app = App::new(store, sms, clock, settings)
            .with_alerts(alerts)
            .with_files(Arc::new(files.clone()));
        if let Some(bus) = &events {
            app = app.with_event_bus(Arc::new(bus.clone()));
        }
        Ok(Gateway {
            app: Arc::new(app),
            config,
            outbox,
            embedded,
            files,
            exports_running: Arc::default(),
            events,
        })
    }
}

/// The contract's default fees and FX settings, or what `FEE_SCHEDULE`,
/// `FX_MARKUP_PERCENT` and `FX_RATE_MAX_AGE_SECONDS` say (read as the deployed functions
/// read them, so a schedule that works here works there).
fn settings_from_env(settings: Settings) -> Result<Settings, String> {
    use fund_account::function_config::{fees_from, fx_from, vars, Env, ProcessEnv};
    let env = ProcessEnv;
    let settings = match env.var(vars::FEE_SCHEDULE) {
        Some(_) => settings.with_fees(fees_from(&env).map_err(|e| e.to_string())?),
        None => settings,
    };
    let settings = match (env.var(vars::FX_MARKUP_PERCENT), env.var(vars::FX_RATE_MAX_AGE_SECONDS)) {
        (None, None) => settings,
        _ => settings.with_fx(fx_from(&env).map_err(|e| e.to_string())?),
    };
    Ok(settings)
}

async fn ensure_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), String> {
    if client.describe_table().table_name(table).send().await.is_ok() {
        return Ok(());
    }
    DynamoStore::create_table(client, table)
        .await
        .map_err(|e| e.to_string())
}

/// How often the local publisher looks for new outbox items.
const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// How often it sweeps the SMS notifications due.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The local stand-in for the DynamoDB Stream and the publish-events function: publishes
/// each new outbox item of the embedded store in commit order (a failed one stops the
/// drain, to be retried from it on the next tick, as Lambda would), and sweeps the SMS
/// notifications. Runs until `stop` says so.
async fn publish_locally(gateway: Arc<Gateway>, store: SqliteStore, mut stop: tokio::sync::watch::Receiver<bool>) {
    let app = &gateway.app;
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        match store.outbox_stream(100).await {
            Ok(items) => {
                for (position, key) in items {
                    if let Err(error) = fund_account::publisher::publish(app, &*app.events, &key).await {
                        tracing::warn!(error = %error, "local publisher: retrying from this item");
                        break;
                    }
                    if let Err(error) = store.advance_outbox_stream(position).await {
                        tracing::warn!(error = %error, "local publisher: cursor not saved");
                        break;
                    }
                }
            }
            Err(error) => tracing::warn!(error = %error, "local publisher: stream not read"),
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = tokio::time::Instant::now();
            if let Err(error) = fund_account::publisher::sweep_notifications(app).await {
                tracing::warn!(error = ?error, "local publisher: sweep failed");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(PUBLISH_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Serves until `shutdown` completes, then lets requests in flight finish. Over the
/// embedded store, the local publisher runs alongside and stops with it.
pub async fn serve(gateway: Arc<Gateway>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let publisher = gateway.embedded.clone().map(|store| {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        (
            stop,
            tokio::spawn(publish_locally(Arc::clone(&gateway), store, stopped)),
        )
    });
    serve_requests(gateway, listener, shutdown).await;
    if let Some((stop, task)) = publisher {
        let _ = stop.send(true);
        let _ = task.await;
    }
}

async fn serve_requests(gateway: Arc<Gateway>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let gateway = Arc::clone(&gateway);
                let service = service_fn(move |req| {
                    let gateway = Arc::clone(&gateway);
                    async move { Ok::<_, Infallible>(handle(&gateway, req).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    // Stop accepting; give requests in flight a bounded time to finish.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await;
}

type HttpResponse = http::Response<Full<Bytes>>;

fn into_hyper(response: lambda_http::Response<lambda_http::Body>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(text) => Bytes::from(text),
        lambda_http::Body::Binary(data) => Bytes::from(data),
        _ => Bytes::new(),
    };
    http::Response::from_parts(parts, Full::new(bytes))
}

/// Answers with a problem document, as the handlers would.
fn problem(error: ApiError) -> HttpResponse {
    into_hyper(respond(&ulid::Ulid::new().to_string(), Err(error)))
}

async fn handle(gateway: &Gateway, req: http::Request<Incoming>) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let dev_path = dev::is_dev_path(&path);
    if dev_path {
        if !gateway.config.dev_routes {
            return problem(ApiError::RouteNotFound);
        }
        // The guard answers before anything else on these routes.
        if let Some(refused) = dev::guard_caller(&parts) {
            return refused;
        }
    }
    // Read at most one byte past the limit: enough to know the body is too large.
    let body = match Limited::new(body, MAX_BODY_BYTES + 1).collect().await {
        Ok(collected) => Some(collected.to_bytes()),
        Err(_) => None,
    };
    let too_large = body.as_ref().is_none_or(|b| b.len() > MAX_BODY_BYTES);
    if dev_path {
        let empty = body.as_ref().is_some_and(Bytes::is_empty);
        if let Some(refused) = dev::guard_body(&parts, empty) {
            return refused;
        }
    }
    let body = match body {
        Some(body) if !too_large => body,
        _ => return problem(ApiError::PayloadTooLarge),
    };
    if dev_path {
        return dev::handle(gateway, &parts, &body).await;
    }
    if !path.starts_with("/v1/") && !path.starts_with("/internal/") && parts.method == http::Method::GET {
        if let Some(response) = dev::static_file(gateway, &path).await {
            return response;
        }
    }
    let (route, path_params) = match Route::resolve(&parts.method, &path) {
        Ok(found) => found,
        Err(ApiError::MethodNotAllowed) => {
            let allowed = Route::allowed_methods(&path);
            return into_hyper(method_not_allowed(&ulid::Ulid::new().to_string(), &allowed));
        }
        Err(error) => return problem(error),
    };
    let authorizer = match route.caller() {
        Caller::Member => event::jwt_authorizer(&parts.headers, &gateway.config.jwt_secret),
        Caller::Internal => event::iam_authorizer(&parts.headers, &gateway.config.internal_key),
    };
    let member = authorizer
        .as_ref()
        .and_then(|a| a.pointer("/jwt/claims/sub"))
        .and_then(|sub| sub.as_str())
        .map(str::to_owned);
    let request = match event::lambda_request(&parts, &body, route, path_params, authorizer) {
        Ok(request) => request,
        Err(error) => return problem(error),
    };
    let response = routes::handle(route, &gateway.app, request).await;
    if let (Route::CreateExport | Route::GetExport, Some(member), lambda_http::Body::Text(body)) =
        (route, member, response.body())
    {
        start_pending_export(gateway, &member, body);
    }
    into_hyper(response)
}

/// The local stand-in for the table stream that starts the export writer in AWS: an
/// export answered `pending` (just requested, or left pending by a stopped gateway and
/// polled again) is written by a background task, one writer per export.
fn start_pending_export(gateway: &Gateway, member: &str, body: &str) {
    use fund_account::ids::ExportId;
    use fund_account::member::MemberId;
    let Ok(view) = serde_json::from_str::<serde_json::Value>(body) else {
        return;
    };
    if view.get("status").and_then(|s| s.as_str()) != Some("pending") {
        return;
    }
    let (Some(member_id), Some(export_id)) = (
        MemberId::parse(member).ok(),
        view.get("id").and_then(|i| i.as_str()).and_then(ExportId::parse),
    ) else {
        return;
    };
    {
        let Ok(mut running) = gateway.exports_running.lock() else {
            return;
        };
        if !running.insert(export_id.as_str().to_owned()) {
            return;
        }
    }
    let app = Arc::clone(&gateway.app);
    let running = Arc::clone(&gateway.exports_running);
    tokio::spawn(async move {
        if let Err(error) = fund_account::export::run(&app, &member_id, &export_id).await {
            tracing::error!(export_id = %export_id, error = %error, "export failed; polling it again retries");
        }
        if let Ok(mut set) = running.lock() {
            set.remove(export_id.as_str());
        }
    });
}

/// Issues a local access token for a member, as the marketplace's identity provider would.
pub fn issue_token(secret: &[u8], member_id: &str, now_seconds: i64) -> Result<String, String> {
    let claims = serde_json::json!({
        "sub": member_id,
        "iss": TOKEN_ISSUER,
        "iat": now_seconds,
        "exp": now_seconds + TOKEN_TTL_SECONDS,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .map_err(|e| e.to_string())
}
