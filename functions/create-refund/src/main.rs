//! The `create-refund` Lambda function: serves `Route::CreateRefund`, and links only its handler (`lambda::aws::CREATE_REFUND`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::CREATE_REFUND).await
}
