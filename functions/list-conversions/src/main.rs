//! The `list-conversions` Lambda function: serves `Route::ListConversions`, and links only its handler (`lambda::aws::LIST_CONVERSIONS`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::LIST_CONVERSIONS).await
}
