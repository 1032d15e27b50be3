//! The `activate` Lambda function: serves `Route::Activate`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::routes::Route::Activate).await
}
