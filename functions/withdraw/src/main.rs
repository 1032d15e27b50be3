//! The `withdraw` Lambda function: serves `Route::Withdraw`, and links only its handler (`lambda::aws::WITHDRAW`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::WITHDRAW).await
}
