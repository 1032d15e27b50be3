//! The `list-transactions` Lambda function: serves `Route::ListTransactions`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::routes::Route::ListTransactions).await
}
