//! The `list-withdrawals` Lambda function: serves `Route::ListWithdrawals`, and links only its handler (`lambda::aws::LIST_WITHDRAWALS`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::LIST_WITHDRAWALS).await
}
