//! The `create-refund` Lambda function: serves `Route::CreateRefund`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::routes::Route::CreateRefund).await
}
