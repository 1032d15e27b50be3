//! The `get-account` Lambda function: serves `Route::GetAccount`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::routes::Route::GetAccount).await
}
