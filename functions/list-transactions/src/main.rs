//! The `list-transactions` Lambda function: serves `Route::ListTransactions`, and links only its handler (`lambda::aws::LIST_TRANSACTIONS`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::LIST_TRANSACTIONS).await
}
