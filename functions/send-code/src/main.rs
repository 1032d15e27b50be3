//! The `send-code` Lambda function: serves `Route::SendCode`, and links only its handler (`lambda::aws::SEND_CODE`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::SEND_CODE).await
}
