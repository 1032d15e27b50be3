//! The `export-statement` Lambda function: writes statement exports to S3, on the
//! table's DynamoDB stream.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fund_account::lambda::run_export_statement().await
}
