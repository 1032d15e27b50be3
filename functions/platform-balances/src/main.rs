//! The `platform-balances` Lambda function: serves `Route::PlatformBalances`, and links only its handler (`lambda::aws::PLATFORM_BALANCES`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::PLATFORM_BALANCES).await
}
