//! The `withdrawal-returned` Lambda function: serves `Route::WithdrawalReturned`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::routes::Route::WithdrawalReturned).await
}
