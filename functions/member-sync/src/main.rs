//! The `member-sync` Lambda function: serves `Route::MemberSync`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::routes::Route::MemberSync).await
}
