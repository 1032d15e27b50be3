//! The `publish-events` Lambda function: the table's DynamoDB Stream in, each outbox item
//! published to the EventBridge bus and its SMS sent; on a schedule, the SMS sweep.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run_publisher().await
}
