//! The `withdraw` Lambda function: serves `Route::Withdraw`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::routes::Route::Withdraw).await
}
