//! The `activate` Lambda function: serves `Route::Activate`, and links only its handler (`lambda::aws::ACTIVATE`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::ACTIVATE).await
}
