//! The `get-withdrawal` Lambda function: serves `Route::GetWithdrawal`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::routes::Route::GetWithdrawal).await
}
