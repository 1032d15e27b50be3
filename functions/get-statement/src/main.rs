//! The `get-statement` Lambda function: serves `Route::GetStatement`, and links only its handler (`lambda::aws::GET_STATEMENT`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::GET_STATEMENT).await
}
