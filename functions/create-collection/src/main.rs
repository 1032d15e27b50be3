//! The `create-collection` Lambda function: serves `Route::CreateCollection`, and links only its handler (`lambda::aws::CREATE_COLLECTION`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::CREATE_COLLECTION).await
}
