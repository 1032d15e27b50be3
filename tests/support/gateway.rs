//! The local gateway, running in the test process on a free port, over either store.

use std::path::PathBuf;
use std::sync::Arc;

use fund_account::clock::Clock;

use crate::apps::{Adapter, PAYMENT_PASSWORD, TEST_CODE_SECRET};
use crate::emulator::aws_config;

/// A local gateway running in this process on a free port, over a fresh data directory.
pub struct RunningGateway {
    pub base: String,
    pub internal_key: String,
    pub data_dir: PathBuf,
    pub gateway: Arc<local_gateway::Gateway>,
    backend: local_gateway::StoreBackend,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningGateway {
    /// Starts a gateway on the embedded store; `data_dir` reuses a directory (to test
    /// restarts).
    pub async fn start(data_dir: Option<PathBuf>, clock: Arc<dyn Clock>) -> RunningGateway {
        Self::start_with(local_gateway::StoreBackend::Embedded, data_dir, clock).await
    }

    /// Starts a gateway over a fresh store of `adapter`: the embedded SQLite store, or
    /// DynamoDB on the emulator with a table of its own (created by the gateway, as
    /// `LOCAL_STORE=dynamodb` does). SMS go to the local outbox either way.
    pub async fn start_on(adapter: Adapter, clock: Arc<dyn Clock>) -> RunningGateway {
        let backend = match adapter {
            Adapter::Sqlite => local_gateway::StoreBackend::Embedded,
            Adapter::DynamoDb => local_gateway::StoreBackend::DynamoDb {
                table: format!("fund-account-gw-{}", ulid::Ulid::new().to_string().to_lowercase()),
            },
        };
        Self::start_with(backend, None, clock).await
    }

    /// Stops this gateway and starts another over the same data directory and store.
    pub async fn restart(self, clock: Arc<dyn Clock>) -> RunningGateway {
        let backend = self.backend.clone();
        let data_dir = self.stop().await;
        Self::start_with(backend, Some(data_dir), clock).await
    }

    async fn start_with(
        backend: local_gateway::StoreBackend,
        data_dir: Option<PathBuf>,
        clock: Arc<dyn Clock>,
    ) -> RunningGateway {
        let data_dir = data_dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!(
                "fund-account-gw-{}",
                ulid::Ulid::new().to_string().to_lowercase()
            ))
        });
        std::fs::create_dir_all(&data_dir).expect("data dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = local_gateway::GatewayConfig {
            addr,
            data_dir: data_dir.clone(),
            internal_key: "test-internal-key".to_owned(),
            internal_key_generated: false,
            jwt_secret: b"test-jwt-secret-0123456789abcdef".to_vec(),
            code_secret: TEST_CODE_SECRET.to_vec(),
            store: backend.clone(),
            sms: local_gateway::SmsBackend::Outbox,
            web_dir: None,
            dev_routes: true,
            group_commit: local_gateway::GroupCommit::On,
        };
        let aws = match backend {
            local_gateway::StoreBackend::Embedded => None,
            local_gateway::StoreBackend::DynamoDb { .. } => Some(aws_config().await),
        };
        let gateway = Arc::new(
            local_gateway::Gateway::build_with_aws(config, clock, aws)
                .await
                .expect("gateway"),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(local_gateway::serve(Arc::clone(&gateway), listener, async {
            let _ = stopped.await;
        }));
        RunningGateway {
            base: format!("http://{addr}"),
            internal_key: "test-internal-key".to_owned(),
            data_dir,
            gateway,
            backend,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops serving and waits for requests in flight.
    pub async fn stop(mut self) -> PathBuf {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.data_dir.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A member without a phone, activated over HTTP with [`PAYMENT_PASSWORD`]: its token.
    pub async fn active_member_token(&self, client: &reqwest::Client, id: &str) -> String {
        let token = self.member_token(client, id, None).await;
        let response = client
            .post(self.url("/v1/activation"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "payment_password": PAYMENT_PASSWORD }))
            .send()
            .await
            .expect("activate");
        assert_eq!(response.status(), 200, "activation of {id}");
        token
    }

    /// Creates a member through `/dev/members` and logs in: returns the bearer token.
    pub async fn member_token(&self, client: &reqwest::Client, id: &str, phone: Option<&str>) -> String {
        let created = client
            .post(self.url("/dev/members"))
            .json(&serde_json::json!({ "member_id": id, "login_password": "login-Pass-2026", "phone": phone }))
            .send()
            .await
            .expect("create member");
        assert_eq!(created.status(), 201);
        let login: serde_json::Value = client
            .post(self.url("/dev/login"))
            .json(&serde_json::json!({ "member_id": id, "login_password": "login-Pass-2026" }))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login body");
        login["access_token"].as_str().expect("token").to_owned()
    }
}

/// A test's HTTP client of a running gateway: members with a bearer token (and an
/// Idempotency-Key where given), internal services with the internal key.
pub struct GatewayClient {
    pub gw: RunningGateway,
    pub client: reqwest::Client,
}

impl GatewayClient {
    /// A gateway over a fresh store of `adapter`, on the system clock.
    pub async fn start(adapter: Adapter) -> GatewayClient {
        GatewayClient {
            gw: RunningGateway::start_on(adapter, Arc::new(fund_account::clock::SystemClock)).await,
            client: reqwest::Client::new(),
        }
    }

    /// An internal service's request.
    pub async fn internal(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, self.gw.url(path))
            .header("x-internal-key", &self.gw.internal_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("the gateway answers")
    }

    /// A member's request.
    pub async fn member(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        idempotency_key: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.gw.url(path)).bearer_auth(token);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("the gateway answers")
    }

    /// An active member's token (payment password [`PAYMENT_PASSWORD`]).
    pub async fn active_member(&self, id: &str) -> String {
        self.gw.active_member_token(&self.client, id).await
    }

    /// Settles through `/dev/reconcile`, as a developer would.
    pub async fn settle(&self) {
        let response = self
            .client
            .post(self.gw.url("/dev/reconcile"))
            .send()
            .await
            .expect("the gateway answers");
        assert_eq!(response.status(), reqwest::StatusCode::OK);
    }
}
