//! The `create-conversion` Lambda function: serves `Route::CreateConversion`, and links only its handler (`lambda::aws::CREATE_CONVERSION`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::CREATE_CONVERSION).await
}
