//! The `confirm-code` Lambda function: serves `Route::ConfirmCode`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::routes::Route::ConfirmCode).await
}
