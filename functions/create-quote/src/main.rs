//! The `create-quote` Lambda function: serves `Route::CreateQuote`, and links only its handler (`lambda::aws::CREATE_QUOTE`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::CREATE_QUOTE).await
}
