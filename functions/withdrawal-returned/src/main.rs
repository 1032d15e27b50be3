//! The `withdrawal-returned` Lambda function: serves `Route::WithdrawalReturned`, and links only its handler (`lambda::aws::WITHDRAWAL_RETURNED`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::WITHDRAWAL_RETURNED).await
}
