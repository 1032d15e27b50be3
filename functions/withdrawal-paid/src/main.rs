//! The `withdrawal-paid` Lambda function: serves `Route::WithdrawalPaid`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::routes::Route::WithdrawalPaid).await
}
