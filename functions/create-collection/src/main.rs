//! The `create-collection` Lambda function: serves `Route::CreateCollection`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::routes::Route::CreateCollection).await
}
