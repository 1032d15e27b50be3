//! The `preview-withdrawal` Lambda function: serves `Route::PreviewWithdrawal`, and links only its handler (`lambda::aws::PREVIEW_WITHDRAWAL`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::PREVIEW_WITHDRAWAL).await
}
