//! The `reconcile` Lambda function: settlement and the proof of the books, on an
//! EventBridge schedule.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run_reconciliation().await
}
