//! The `create-withdrawal` Lambda function: serves `Route::CreateWithdrawal`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::routes::Route::CreateWithdrawal).await
}
