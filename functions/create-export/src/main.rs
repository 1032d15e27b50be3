//! The `create-export` Lambda function: serves `Route::CreateExport`, and links only its handler (`lambda::aws::CREATE_EXPORT`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::CREATE_EXPORT).await
}
