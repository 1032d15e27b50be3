//! The `put-fx-rate` Lambda function: serves `Route::PutFxRate`, and links only its handler (`lambda::aws::PUT_FX_RATE`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::PUT_FX_RATE).await
}
