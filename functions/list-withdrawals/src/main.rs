//! The `list-withdrawals` Lambda function: serves `Route::ListWithdrawals`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::routes::Route::ListWithdrawals).await
}
