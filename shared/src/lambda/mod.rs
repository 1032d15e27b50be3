//! The entry point of every Lambda function: JSON logs, dependencies built once per
//! container, then the runtime loop.

use std::sync::Arc;

use tracing_subscriber::filter::LevelFilter;

use crate::function_config::{vars, Env};
#[cfg(feature = "aws")]
use crate::function_config::{Function, ProcessEnv};

#[cfg(feature = "aws")]
pub mod aws;
pub mod metrics;
#[cfg(feature = "aws")]
pub mod stream;

/// JSON logs to stdout for CloudWatch, at the level `RUST_LOG` names (see [`log_level`]).
/// A level, not `EnvFilter`'s per-module directives: those need the regex engine, 0.67 MB
/// of every function binary, for a setting the template sets to one level.
pub fn init_json_logs(env: &dyn Env) {
    let setting = env.var(vars::RUST_LOG);
    let (level, unrecognised) = log_level(setting.as_deref());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(level)
        .with_current_span(false)
        .with_ansi(false)
        .without_time() // CloudWatch stamps every line.
        .with_target(false)
        .try_init();
    if let Some(value) = unrecognised {
        tracing::warn!(
            value,
            "RUST_LOG is not a level (error, warn, info, debug, trace, off); logging at info"
        );
    }
}

/// The level `RUST_LOG` names; unset means `info`, and so does a value that is not a
/// level, which is handed back so that it is reported rather than silently ignored.
fn log_level(setting: Option<&str>) -> (LevelFilter, Option<&str>) {
    match setting {
        None => (LevelFilter::INFO, None),
        Some(text) => match text.trim().parse::<LevelFilter>() {
            Ok(level) => (level, None),
            Err(_) => (LevelFilter::INFO, Some(text)),
        },
    }
}

/// Builds a function's app as its Lambda does at cold start: logs first, then the app
/// from `env` (the process environment in Lambda) and `aws` (in Lambda the default
/// configuration: credentials and region from the environment). A configuration error
/// fails the cold start, naming the missing setting.
#[cfg(feature = "aws")]
pub async fn start_deployment(
    deployment: &aws::Deployment,
    env: &dyn Env,
    aws: &aws_config::SdkConfig,
) -> Result<crate::app::App, crate::app::ConfigError> {
    init_json_logs(env);
    aws::build_app(deployment, env, aws).await
}

/// [`start_deployment`] for `function`, as `lambda::aws` deploys it (the tests' way in).
#[cfg(feature = "aws")]
pub async fn start(
    function: Function,
    env: &dyn Env,
    aws: &aws_config::SdkConfig,
) -> Result<crate::app::App, crate::app::ConfigError> {
    let deployment =
        aws::deployment(function).ok_or_else(|| crate::app::ConfigError(format!("{function:?} is not deployed")))?;
    start_deployment(deployment, env, aws).await
}

/// A function's app as Lambda starts it. The cold start itself (until the runtime's first
/// `GET /next`) does only what must fail it: logs, and the function's own settings read
/// and checked ([`aws::Settings`]: no I/O). The rest — `aws-config`'s default
/// configuration, the clients (whose HTTPS connector loads the root certificates), the
/// code secret — is work that can wait: the first request builds it. (Spawning it at init
/// instead measured no better: in an on-demand cold start the event is already waiting,
/// and the task only competed with the runtime's start for the CPU.) Should it fail
/// (Secrets Manager unreachable, say), an HTTP request is answered `503
/// service_unavailable` and the next one tries again.
#[cfg(feature = "aws")]
struct Starting {
    deployment: aws::Deployment,
    settings: aws::Settings,
    app: tokio::sync::OnceCell<Arc<crate::app::App>>,
}

#[cfg(feature = "aws")]
impl Starting {
    fn begin(deployment: aws::Deployment) -> Result<Starting, crate::app::ConfigError> {
        init_json_logs(&ProcessEnv);
        let settings = aws::Settings::read(&deployment, &ProcessEnv)?;
        Ok(Starting {
            deployment,
            settings,
            app: tokio::sync::OnceCell::new(),
        })
    }

    /// The app, built by the first request that asks (again by the next, if that failed).
    async fn app(&self) -> Result<Arc<crate::app::App>, crate::app::ConfigError> {
        self.app
            .get_or_try_init(|| async {
                let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                aws::connect(&self.deployment, self.settings.clone(), &aws)
                    .await
                    .map(Arc::new)
                    .inspect_err(|error| {
                        tracing::error!(error = %error, "the function could not start; the next request tries again");
                    })
            })
            .await
            .cloned()
    }
}

/// Runs an HTTP function (`deployment` names its route and handler) as a Lambda.
#[cfg(feature = "aws")]
pub async fn run(deployment: aws::Deployment) -> Result<(), lambda_http::Error> {
    let (Function::Http(route), Some(handler)) = (deployment.function, deployment.handler) else {
        return Err(format!("{:?} is not an HTTP function", deployment.function).into());
    };
    let starting = Arc::new(Starting::begin(deployment)?);
    lambda_http::run(lambda_http::service_fn(move |req| {
        let starting = Arc::clone(&starting);
        async move {
            // An app that could not be built yet (a dependency unreachable: logged above)
            // is an outage for this caller, answered as the contract answers one.
            let response = match starting.app().await {
                Ok(app) => crate::routes::serve(route, handler, &app, req).await,
                Err(_) => crate::http::respond(
                    &crate::http::request_id(&req),
                    Err(crate::error::ApiError::ServiceUnavailable),
                ),
            };
            Ok::<_, std::convert::Infallible>(response)
        }
    }))
    .await
}

/// What a scheduled event asks for: `{"mode": "settle"}` settles only;
/// `{"mode": "book-openings"}` is the one-off migration to double-entry (it books the
/// platform's side of entries written before, then verifies); anything else (the plain
/// EventBridge event, `{"mode": "full"}`) settles and verifies. Optional `segment` /
/// `segments` split a run across invocations.
pub fn reconciliation_options(event: &serde_json::Value) -> crate::reconciliation::RunOptions {
    use crate::reconciliation::RunOptions;
    let mut options = match event.get("mode").and_then(|m| m.as_str()) {
        Some("settle") => RunOptions::settle_only(),
        Some("book-openings") => RunOptions::book_openings(),
        _ => RunOptions::full(),
    };
    let number = |name: &str| {
        event
            .get(name)
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    if let (Some(segment), Some(segments)) = (number("segment"), number("segments")) {
        if segments > 0 && segment < segments {
            options.segment = segment;
            options.segments = segments;
        }
    }
    // In AWS the by-member index lags writes by a moment: look twice before alerting.
    options.recheck_after = std::time::Duration::from_secs(2);
    options
}

/// Runs the scheduled reconciliation as a Lambda function (EventBridge events in, the
/// report out). Each completed run also prints its result as CloudWatch metrics
/// ([`metrics::reconciliation_emf`]); a failed run prints none, and the alarms on missing
/// runs and on the function's errors take it from there.
#[cfg(feature = "aws")]
pub async fn run_reconciliation() -> Result<(), lambda_http::Error> {
    use lambda_http::lambda_runtime::{self, LambdaEvent};
    let starting = Arc::new(Starting::begin(aws::RECONCILE)?);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<serde_json::Value>| {
            let starting = Arc::clone(&starting);
            async move {
                let app = starting.app().await?;
                let options = reconciliation_options(&event.payload);
                let report = crate::reconciliation::run(&app, options)
                    .await
                    .map_err(|e| lambda_http::Error::from(format!("reconciliation failed: {e}")))?;
                // Embedded Metric Format: a line of its own on stdout, read by CloudWatch Logs.
                println!("{}", metrics::reconciliation_emf(&report));
                Ok::<_, lambda_http::Error>(report.to_json())
            }
        },
    ))
    .await
}

/// Runs the statement export writer as a Lambda function, on the table's DynamoDB stream
/// (filtered to inserted export records). Each export is written on its own; one that
/// fails is reported in `batchItemFailures`, so Lambda retries it without rewriting the
/// others (and a retried one that finished meanwhile is left as it is).
#[cfg(feature = "aws")]
pub async fn run_export_statement() -> Result<(), lambda_http::Error> {
    use lambda_http::lambda_runtime::{self, LambdaEvent};
    let starting = Arc::new(Starting::begin(aws::EXPORT_STATEMENT)?);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<serde_json::Value>| {
            let starting = Arc::clone(&starting);
            async move {
                let app = starting.app().await?;
                stream::export_batch(&app, event.payload)
                    .await
                    .map_err(|e| lambda_http::Error::from(e.to_string()))
            }
        },
    ))
    .await
}

/// Runs the event publisher as a Lambda function: batches of the table's stream in, the
/// partial-batch response out; on its schedule, the SMS sweep.
#[cfg(feature = "aws")]
pub async fn run_publisher() -> Result<(), lambda_http::Error> {
    use lambda_http::lambda_runtime::{self, LambdaEvent};
    let starting = Arc::new(Starting::begin(aws::PUBLISH_EVENTS)?);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<serde_json::Value>| {
            let starting = Arc::clone(&starting);
            async move {
                let app = starting.app().await?;
                stream::handle(&app, event.payload)
                    .await
                    .map_err(|e| lambda_http::Error::from(e.to_string()))
            }
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_is_a_level_and_anything_else_is_reported() {
        assert_eq!(log_level(None), (LevelFilter::INFO, None));
        assert_eq!(log_level(Some("debug")), (LevelFilter::DEBUG, None));
        assert_eq!(log_level(Some(" WARN ")), (LevelFilter::WARN, None));
        assert_eq!(log_level(Some("off")), (LevelFilter::OFF, None));
        assert_eq!(
            log_level(Some("fund_account=debug")),
            (LevelFilter::INFO, Some("fund_account=debug"))
        );
    }
}
