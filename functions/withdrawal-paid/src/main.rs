//! The `withdrawal-paid` Lambda function: serves `Route::WithdrawalPaid`, and links only its handler (`lambda::aws::WITHDRAWAL_PAID`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::WITHDRAWAL_PAID).await
}
