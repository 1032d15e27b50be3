//! The `get-export` Lambda function: serves `Route::GetExport`, and links only its handler (`lambda::aws::GET_EXPORT`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::GET_EXPORT).await
}
