//! The entry point of every Lambda function: JSON logs, dependencies built once per
//! container, then the runtime loop.

use std::sync::Arc;

use crate::routes::Route;

/// JSON logs to stdout for CloudWatch, filtered by `RUST_LOG` (default `info`).
pub fn init_json_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_ansi(false)
        .without_time() // CloudWatch stamps every line.
        .with_target(false)
        .try_init();
}

/// Runs `route` as a Lambda function. Configuration errors fail the cold start with a
/// message that names the missing setting.
#[cfg(feature = "aws")]
pub async fn run(route: Route) -> Result<(), lambda_http::Error> {
    init_json_logs();
    let app = Arc::new(crate::app::App::from_aws_env().await?);
    lambda_http::run(lambda_http::service_fn(move |req| {
        let app = Arc::clone(&app);
        async move { Ok::<_, std::convert::Infallible>(crate::routes::handle(route, &app, req).await) }
    }))
    .await
}
