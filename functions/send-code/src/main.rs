//! The `send-code` Lambda function: serves `Route::SendCode`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::routes::Route::SendCode).await
}
