//! The AWS emulator (moto's server, from the project's `.venv`) and SDK clients pointed at
//! it: DynamoDB tables of their own, SNS, what the emulator recorded.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fund_account::adapters::dynamodb::DynamoStore;
use fund_account::adapters::sns::SnsSmsSender;

use crate::project_root;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The emulator's endpoint: `MOTO_ENDPOINT` when the test command started one, else a
/// server this test binary starts from `.venv` (it exits with this process).
pub fn moto_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("MOTO_ENDPOINT") {
            return endpoint;
        }
        let root = project_root();
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "no .venv with moto: run `bash infra/scripts/test.sh` (it installs it), or set MOTO_ENDPOINT"
        );
        let port = free_port();
        // Never waited on: it lives as long as this test process, then exits by itself.
        #[allow(clippy::zombie_processes)]
        let _server = Command::new(python)
            .arg(root.join("infra/scripts/moto_server.py"))
            .arg(port.to_string())
            .arg("--exit-with-parent")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        assert!(
            wait_for_port(port, Duration::from_secs(30)),
            "moto did not open port {port}"
        );
        format!("http://127.0.0.1:{port}")
    })
}

/// An SDK config pointed at the emulator with static test credentials.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

/// A DynamoDB store on a table of its own, created from `template.yaml`'s definition.
pub async fn dynamodb_store() -> DynamoStore {
    let config = aws_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = format!("fund-account-test-{}", ulid::Ulid::new().to_string().to_lowercase());
    create_table_from_template(&client, &table).await;
    DynamoStore::new(client, table)
}

/// Creates `name` on the emulator exactly as `template.yaml`'s `AWS::DynamoDB::Table`
/// declares it — billing, attributes, keys, indexes and the TTL attribute, read from the
/// file — so that every DynamoDB test runs on the deployed table's shape, and a change to
/// one without the other fails them.
/// An S3 client for the emulator: path-style addresses (a loopback endpoint has no
/// bucket subdomains), as the deployed functions use with an endpoint set by hand.
pub fn s3_client(aws: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(aws).force_path_style(true).build())
}

pub async fn create_table_from_template(client: &aws_sdk_dynamodb::Client, name: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
    };
    use serde_yaml::Value as Yaml;

    let template = crate::deployed::template();
    let table = template["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .find(|resource| resource["Type"].as_str() == Some("AWS::DynamoDB::Table"))
        .expect("template.yaml declares a DynamoDB table");
    let properties = &table["Properties"];
    let text = |value: &Yaml| {
        value
            .as_str()
            .unwrap_or_else(|| panic!("the table definition has a string here, not {value:?}"))
            .to_owned()
    };
    let list = |value: &Yaml| value.as_sequence().cloned().unwrap_or_default();
    let key_schema = |schema: &Yaml| -> Vec<KeySchemaElement> {
        list(schema)
            .iter()
            .map(|key| {
                KeySchemaElement::builder()
                    .attribute_name(text(&key["AttributeName"]))
                    .key_type(KeyType::from(text(&key["KeyType"]).as_str()))
                    .build()
                    .expect("a key")
            })
            .collect()
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(text(&properties["BillingMode"]).as_str()))
        .set_key_schema(Some(key_schema(&properties["KeySchema"])));
    for attribute in list(&properties["AttributeDefinitions"]) {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(&attribute["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(text(&attribute["AttributeType"]).as_str()))
                .build()
                .expect("an attribute"),
        );
    }
    for index in list(&properties["GlobalSecondaryIndexes"]) {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(text(&index["IndexName"]))
                .set_key_schema(Some(key_schema(&index["KeySchema"])))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(
                            text(&index["Projection"]["ProjectionType"]).as_str(),
                        ))
                        .build(),
                )
                .build()
                .expect("an index"),
        );
    }
    if let Some(view) = properties["StreamSpecification"]["StreamViewType"].as_str() {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view))
                .build()
                .expect("a stream specification"),
        );
    }
    request.send().await.expect("create the template's table");
    let ttl = &properties["TimeToLiveSpecification"];
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(text(&ttl["AttributeName"]))
                .enabled(ttl["Enabled"].as_bool().expect("TTL Enabled is a boolean"))
                .build()
                .expect("a TTL specification"),
        )
        .send()
        .await
        .expect("the template's TTL");
}

/// What the emulator's SNS has published (SMS and topic notifications), shaped as
/// `/moto-api/data.json` shows it under `sns`: read from the project's moto server
/// (`infra/scripts/moto_server.py`), because the full dump holds every DynamoDB item of
/// the suite and stalls the serialized server for minutes.
pub async fn emulator_state() -> serde_json::Value {
    reqwest::get(format!("{}/_fund-account-test/sns", moto_endpoint()))
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("the emulator's state is JSON")
}

/// The SMS the emulator has recorded as sent: `(phone, message)`, oldest first.
pub async fn sent_sms() -> Vec<(String, String)> {
    let data = emulator_state().await;
    let mut sent = Vec::new();
    // moto keeps sent SMS per account and region under sns.sms (older versions: SMS).
    fn walk(value: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(map) => {
                if let (Some(serde_json::Value::String(phone)), Some(serde_json::Value::String(message))) =
                    (map.get("phone_number"), map.get("message"))
                {
                    out.push((phone.clone(), message.clone()));
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&data["sns"], &mut sent);
    sent
}

/// The SNS sender, pointed at the emulator.
pub async fn sns_sender() -> SnsSmsSender {
    SnsSmsSender::new(aws_sdk_sns::Client::new(&aws_config().await))
}
