//! The `confirm-code` Lambda function: serves `Route::ConfirmCode`, and links only its handler (`lambda::aws::CONFIRM_CODE`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::CONFIRM_CODE).await
}
