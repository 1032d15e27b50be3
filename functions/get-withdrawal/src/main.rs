//! The `get-withdrawal` Lambda function: serves `Route::GetWithdrawal`, and links only its handler (`lambda::aws::GET_WITHDRAWAL`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::GET_WITHDRAWAL).await
}
