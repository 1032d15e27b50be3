//! The second reference for cold start: [`hello-lambda`](hello-lambda.rs) plus what a
//! plain SDK function does in `main` — `aws-config`'s default configuration and the
//! DynamoDB and SNS clients built from it — with the same profile as ours.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let sns = aws_sdk_sns::Client::new(&config);
    lambda_http::run(lambda_http::service_fn(move |_req: lambda_http::Request| {
        // Held by the handler, as a function's clients are, so neither is optimised away.
        let _clients = (&dynamodb, &sns);
        async { Ok::<_, std::convert::Infallible>(lambda_http::Response::new(lambda_http::Body::from("hello"))) }
    }))
    .await
}
