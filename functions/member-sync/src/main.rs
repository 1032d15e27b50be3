//! The `member-sync` Lambda function: serves `Route::MemberSync`, and links only its handler (`lambda::aws::MEMBER_SYNC`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run(fund_account::lambda::aws::MEMBER_SYNC).await
}
