//! The `get-account` Lambda function: serves `Route::GetAccount`, and links only its handler (`lambda::aws::GET_ACCOUNT`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::GET_ACCOUNT).await
}
