//! What the measuring binaries share: a DynamoDB store on the emulator at `MOTO_ENDPOINT`,
//! and a local Lambda Runtime API to run a function binary behind ([`runtime_api`]).

pub mod memory;
pub mod runtime_api;

use fund_account::adapters::dynamodb::DynamoStore;

/// A store on a fresh table named `<prefix>-<pid>` at `endpoint`, with static test
/// credentials.
pub async fn emulator_store(endpoint: &str, prefix: &str) -> Result<DynamoStore, Box<dyn std::error::Error>> {
    let config = emulator_config(endpoint).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = format!("{prefix}-{}", std::process::id());
    DynamoStore::create_table(&client, &table).await?;
    Ok(DynamoStore::new(client, table))
}

/// The SDK configuration of the emulator at `endpoint`, with static test credentials.
pub async fn emulator_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "bench", "bench", None, None, "bench",
        ))
        .load()
        .await
}

/// A Secrets Manager secret on the emulator holding `value`: its ARN.
pub async fn emulator_secret(endpoint: &str, value: &str) -> Result<String, Box<dyn std::error::Error>> {
    let config = emulator_config(endpoint).await;
    let created = aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name(format!("bench-code-secret-{}", std::process::id()))
        .secret_string(value)
        .send()
        .await?;
    Ok(created.arn.ok_or("the emulator returned no ARN")?)
}
