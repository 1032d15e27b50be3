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

/// A DynamoDB store on a table of its own, created as `template.yaml` declares it.
pub async fn dynamodb_store() -> DynamoStore {
    let config = aws_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = format!("fund-account-test-{}", ulid::Ulid::new().to_string().to_lowercase());
    DynamoStore::create_table(&client, &table)
        .await
        .expect("create test table");
    DynamoStore::new(client, table)
}

/// Everything the emulator holds, as its `/moto-api/data.json` shows it (SMS and topic
/// messages published included).
pub async fn emulator_state() -> serde_json::Value {
    reqwest::get(format!("{}/moto-api/data.json", moto_endpoint()))
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
