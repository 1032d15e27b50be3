//! The `get-fees` Lambda function: serves `Route::GetFees`, and links only its handler (`lambda::aws::GET_FEES`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::GET_FEES).await
}
