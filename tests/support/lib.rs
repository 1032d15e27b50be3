//! Test support: a real DynamoDB/SNS-compatible server (moto, in the project's `.venv`),
//! fresh isolated stores, and apps wired with a manual clock.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use fund_account::adapters::dynamodb::DynamoStore;
use fund_account::adapters::sns::SnsSmsSender;
use fund_account::adapters::sqlite::SqliteStore;
use fund_account::app::{App, Settings};
use fund_account::clock::{Clock, ManualClock, Timestamp};
use fund_account::sms::SmsSender;
use fund_account::store::Store;

/// 2026-01-01T00:00:00Z: where manual clocks start.
pub const T0: i64 = 1_767_225_600_000;

/// The project root (the workspace).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

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

/// Checks that `response` is a problem document (RFC 9457, with `x-request-id`) with
/// `status` and `code`, and returns its body.
pub async fn expect_problem(response: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status for {code}");
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("problem json");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    for member in ["type", "title", "detail"] {
        assert!(body[member].is_string(), "problem has {member}: {body}");
    }
    body
}

/// The SNS sender, pointed at the emulator.
pub async fn sns_sender() -> SnsSmsSender {
    SnsSmsSender::new(aws_sdk_sns::Client::new(&aws_config().await))
}

/// A fresh embedded store in memory.
pub fn sqlite_store() -> SqliteStore {
    SqliteStore::in_memory().expect("in-memory sqlite")
}

/// The code-hashing key every test app uses.
pub const TEST_CODE_SECRET: &[u8] = b"test-code-secret-0123456789abcdef";

/// An app over `store`, with the local outbox for SMS and a manual clock at [`T0`].
pub fn app_with(store: Arc<dyn Store>, sms: Arc<dyn SmsSender>) -> (Arc<App>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_at(Timestamp::from_unix_millis(T0)));
    let settings = Settings::new(TEST_CODE_SECRET.to_vec(), None, None).expect("valid settings");
    let app = App::new(store, sms, Arc::clone(&clock) as Arc<dyn Clock>, settings);
    (Arc::new(app), clock)
}

/// Which store adapter a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    Sqlite,
    DynamoDb,
}

/// A fresh store of the given kind, plus an outbox that records SMS in memory-backed SQLite.
pub async fn store_of(adapter: Adapter) -> Arc<dyn Store> {
    match adapter {
        Adapter::Sqlite => Arc::new(sqlite_store()),
        Adapter::DynamoDb => Arc::new(dynamodb_store().await),
    }
}

/// Runs a test body once per adapter, as two `#[tokio::test]`s named `<name>_on_sqlite`
/// and `<name>_on_dynamodb`: one suite, every adapter.
#[macro_export]
macro_rules! for_each_adapter {
    ($($name:ident),* $(,)?) => {
        $(
            ::paste::paste! {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn [<$name _on_sqlite>]() {
                    $name($crate::Adapter::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn [<$name _on_dynamodb>]() {
                    $name($crate::Adapter::DynamoDb).await;
                }
            }
        )*
    };
}

/// Record builders for store-level tests.
pub mod fixtures {
    use fund_account::clock::Timestamp;
    use fund_account::ledger::{Bucket, EntryType, LedgerEntry};
    use fund_account::member::{Member, MemberId, MemberStatus, PhcHash, VerificationCode};
    use fund_account::money::{Amount, Currency};
    use fund_account::phone::PhoneNumber;
    use fund_account::records::{
        BankAccount, Collection, CollectionStatus, IdempotencyRecord, Withdrawal, WithdrawalStatus,
    };

    pub fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_millis(super::T0 + seconds * 1000)
    }

    pub fn amount(text: &str) -> Amount {
        Amount::parse_stored(text).expect("test amount")
    }

    pub fn member_id(id: &str) -> MemberId {
        MemberId::parse(id).expect("test member id")
    }

    pub fn member(id: &str, version: u64) -> Member {
        Member {
            member_id: member_id(id),
            login_password_hash: PhcHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".to_owned()),
            phone: Some(PhoneNumber::parse("+8613800001234").expect("phone")),
            status: MemberStatus::Inactive,
            payment_password_hash: None,
            pending_password_hash: None,
            code_sends: vec![at(0)],
            activation_attempts: Vec::new(),
            failed_password_attempts: 0,
            withdrawals_locked_until: None,
            created_at: at(0),
            updated_at: at(0),
            version,
        }
    }

    pub fn code(id: &str, version: u64, expires_at: Timestamp) -> VerificationCode {
        VerificationCode {
            member_id: member_id(id),
            code_hash: "ab".repeat(32),
            sent_at: at(0),
            expires_at,
            failed_attempts: 0,
            version,
        }
    }

    pub fn ledger_entry(member: &str, currency: Currency, id: &str, value: &str) -> LedgerEntry {
        LedgerEntry {
            id: id.to_owned(),
            member_id: member_id(member),
            currency,
            bucket: Bucket::Available,
            amount: amount(value),
            entry_type: EntryType::Collection,
            reference: "col_1".to_owned(),
            created_at: at(0),
        }
    }

    pub fn withdrawal(id: &str, member: &str, version: u64) -> Withdrawal {
        Withdrawal {
            id: id.to_owned(),
            member_id: member_id(member),
            currency: Currency::Usd,
            amount: amount("100"),
            fee: amount("15"),
            net_amount: amount("85"),
            status: WithdrawalStatus::Processing,
            bank_account: BankAccount {
                holder_name: "Li Wei".to_owned(),
                account_number: "6222020200112233".to_owned(),
                bank_name: "ICBC".to_owned(),
            },
            return_reason: None,
            created_at: at(0),
            updated_at: at(0),
            version,
        }
    }

    pub fn collection(id: &str, member: &str, available_at: Timestamp, status: CollectionStatus) -> Collection {
        Collection {
            collection_id: id.to_owned(),
            member_id: member_id(member),
            currency: Currency::Cny,
            amount: amount("50"),
            refunded: Amount::ZERO,
            available_at,
            available_at_defaulted: false,
            status,
            created_at: at(0),
            settled_at: None,
            version: 1,
        }
    }

    /// A withdrawal request to the usual test bank account.
    pub fn withdrawal_request(
        key: &str,
        currency: Currency,
        value: &str,
        password: &str,
    ) -> fund_account::withdrawal::WithdrawalRequest {
        fund_account::withdrawal::WithdrawalRequest {
            key: fund_account::withdrawal::IdempotencyKey::parse(key).expect("test key"),
            currency,
            amount: amount(value),
            password: fund_account::password::PaymentPassword::new(password.to_owned()),
            bank_account: BankAccount {
                holder_name: "Li Wei".to_owned(),
                account_number: "6222020200112233".to_owned(),
                bank_name: "ICBC".to_owned(),
            },
        }
    }

    pub fn idempotency(member: &str, key: &str, expires_at: Timestamp) -> IdempotencyRecord {
        IdempotencyRecord {
            member_id: member_id(member),
            key: key.to_owned(),
            fingerprint: "f".repeat(64),
            withdrawal: withdrawal("wd_1", member, 1),
            created_at: at(0),
            expires_at,
        }
    }
}

/// An app over a fresh store of `adapter`, with SMS going to a real (in-memory SQLite)
/// outbox that the test can read.
pub async fn test_app(adapter: Adapter) -> TestApp {
    let store = store_of(adapter).await;
    let outbox = sqlite_store().outbox();
    let (app, clock) = app_with(store, Arc::new(outbox.clone()));
    TestApp { app, clock, outbox }
}

pub struct TestApp {
    pub app: Arc<App>,
    pub clock: Arc<ManualClock>,
    pub outbox: fund_account::adapters::sqlite::SqliteOutbox,
}

impl TestApp {
    /// Creates a member as the marketplace would, with a real argon2id login hash.
    pub async fn member(&self, id: &str, login_password: &str, phone: Option<&str>) -> fund_account::member::MemberId {
        let member_id = fund_account::member::MemberId::parse(id).expect("member id");
        let hash = fund_account::password::hash_blocking(&fund_account::password::PaymentPassword::new(
            login_password.to_owned(),
        ))
        .expect("hash");
        let phone = phone.map(|p| fund_account::phone::PhoneNumber::parse(p).expect("phone"));
        fund_account::activation::sync_member(&self.app, &member_id, fund_account::member::PhcHash::new(hash), phone)
            .await
            .expect("member sync");
        member_id
    }

    /// The digits of the newest SMS sent to `phone`.
    pub async fn last_code(&self, phone: &str) -> String {
        let messages = self.outbox.messages(Some(phone.to_owned()), 1).await.expect("outbox");
        let text = &messages.first().expect("an sms was sent").message;
        let digits: String = text
            .split(|c: char| !c.is_ascii_digit())
            .find(|run| run.len() == 6)
            .expect("a 6-digit code in the message")
            .to_owned();
        digits
    }

    pub async fn sms_count(&self, phone: &str) -> usize {
        self.outbox
            .messages(Some(phone.to_owned()), 1000)
            .await
            .expect("outbox")
            .len()
    }
}

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

/// The payment password test members activate with.
pub const PAYMENT_PASSWORD: &str = "Vault-Key-2026!";

impl TestApp {
    /// A member without a phone, activated with [`PAYMENT_PASSWORD`].
    pub async fn active_member(&self, id: &str) -> fund_account::member::MemberId {
        let member_id = self.member(id, "login-Pass-2026", None).await;
        fund_account::activation::set_payment_password(
            &self.app,
            &member_id,
            fund_account::password::PaymentPassword::new(PAYMENT_PASSWORD.to_owned()),
        )
        .await
        .expect("activate");
        member_id
    }

    /// Credits `amount` to `available`: a collection due now, settled.
    pub async fn fund(
        &self,
        member: &fund_account::member::MemberId,
        currency: fund_account::money::Currency,
        amount: &str,
    ) {
        let id = format!("col-fund-{}", ulid::Ulid::new());
        fund_account::collection::collect(
            &self.app,
            fund_account::collection::NewCollection {
                collection_id: id,
                member_id: member.clone(),
                currency,
                amount: fixtures::amount(amount),
                available_at: None,
            },
        )
        .await
        .expect("collect");
        fund_account::collection::settle_due(&self.app, self.app.now())
            .await
            .expect("settle");
    }

    pub async fn balances(&self, member: &fund_account::member::MemberId) -> fund_account::ledger::Balances {
        self.app
            .store
            .member_state(member)
            .await
            .expect("read")
            .expect("member")
            .balances
    }

    /// Checks that every bucket of every currency equals the sum of its ledger entries,
    /// and that none is negative.
    pub async fn assert_books_balance(&self, member: &fund_account::member::MemberId) {
        let balances = self.balances(member).await;
        for currency in fund_account::money::Currency::ALL {
            let mut entries = Vec::new();
            let mut before = None;
            loop {
                let page = self
                    .app
                    .store
                    .ledger(
                        member,
                        Some(currency),
                        &fund_account::store::PageRequest {
                            limit: 100,
                            before: before.clone(),
                        },
                    )
                    .await
                    .expect("ledger");
                before = page.items.last().map(|e| e.id.clone());
                let more = page.more;
                entries.extend(page.items);
                if !more {
                    break;
                }
            }
            for bucket in fund_account::ledger::Bucket::ALL {
                let sum: fund_account::money::Amount =
                    entries.iter().filter(|e| e.bucket == bucket).map(|e| e.amount).sum();
                let balance = balances.get(currency).get(bucket);
                assert_eq!(
                    sum, balance,
                    "{currency} {bucket:?}: ledger sums to {sum}, balance is {balance}"
                );
                assert!(!balance.is_negative(), "{currency} {bucket:?} is negative");
            }
        }
    }
}

/// Which store call a [`StoreHook`] sees.
#[derive(Debug)]
pub enum StoreCall<'a> {
    /// A read, by the name of its `Store` method (`"member_state"`, `"withdrawal_context"`, …).
    Read(&'static str),
    Commit(&'a [fund_account::store::Write]),
}

/// What a [`StoreHook`] does to a call.
#[derive(Debug)]
pub enum Injection {
    /// The call goes through.
    Pass,
    /// The call fails before it reaches the store: nothing happens.
    FailBefore(fund_account::store::StoreError),
    /// The call reaches the store and takes effect, then the caller sees this failure (a
    /// crash or a lost response right after the write).
    FailAfter(fund_account::store::StoreError),
}

/// Decides, before each store call, what happens to it: the way tests give the store
/// DynamoDB's behaviour that the emulator lacks (transaction conflicts), crash an
/// operation between two calls, or hold a call at a gate while other requests land.
#[async_trait::async_trait]
pub trait StoreHook: Send + Sync {
    async fn before(&self, call: StoreCall<'_>) -> Injection;
}

/// A store wrapper that runs a [`StoreHook`] before every call.
pub struct HookedStore {
    inner: Arc<dyn Store>,
    hook: Arc<dyn StoreHook>,
}

impl HookedStore {
    pub fn new(inner: Arc<dyn Store>, hook: Arc<dyn StoreHook>) -> HookedStore {
        HookedStore { inner, hook }
    }
}

/// A test app over a fresh store of `adapter` behind `hook`.
pub async fn hooked_app(adapter: Adapter, hook: Arc<dyn StoreHook>) -> TestApp {
    let store = Arc::new(HookedStore::new(store_of(adapter).await, hook));
    let outbox = sqlite_store().outbox();
    let (app, clock) = app_with(store, Arc::new(outbox.clone()));
    TestApp { app, clock, outbox }
}

macro_rules! hooked_read {
    ($self:ident, $name:literal, $call:expr) => {{
        let injection = $self.hook.before(StoreCall::Read($name)).await;
        $self.apply(injection, $call).await
    }};
}

impl HookedStore {
    async fn apply<T: Send>(
        &self,
        injection: Injection,
        call: impl std::future::Future<Output = Result<T, fund_account::store::StoreError>> + Send,
    ) -> Result<T, fund_account::store::StoreError> {
        match injection {
            Injection::Pass => call.await,
            Injection::FailBefore(error) => Err(error),
            Injection::FailAfter(error) => {
                let _ = call.await;
                Err(error)
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for HookedStore {
    async fn member_state(
        &self,
        member_id: &fund_account::member::MemberId,
    ) -> Result<Option<fund_account::store::MemberState>, fund_account::store::StoreError> {
        hooked_read!(self, "member_state", self.inner.member_state(member_id))
    }
    async fn balances(
        &self,
        member_id: &fund_account::member::MemberId,
    ) -> Result<fund_account::ledger::Balances, fund_account::store::StoreError> {
        hooked_read!(self, "balances", self.inner.balances(member_id))
    }
    async fn withdrawal_context(
        &self,
        member_id: &fund_account::member::MemberId,
        currency: fund_account::money::Currency,
        key: &str,
    ) -> Result<fund_account::store::WithdrawalContext, fund_account::store::StoreError> {
        hooked_read!(
            self,
            "withdrawal_context",
            self.inner.withdrawal_context(member_id, currency, key)
        )
    }
    async fn idempotency_record(
        &self,
        member_id: &fund_account::member::MemberId,
        key: &str,
    ) -> Result<Option<fund_account::records::IdempotencyRecord>, fund_account::store::StoreError> {
        hooked_read!(
            self,
            "idempotency_record",
            self.inner.idempotency_record(member_id, key)
        )
    }
    async fn withdrawal(
        &self,
        id: &str,
    ) -> Result<Option<fund_account::records::Withdrawal>, fund_account::store::StoreError> {
        hooked_read!(self, "withdrawal", self.inner.withdrawal(id))
    }
    async fn withdrawals(
        &self,
        member_id: &fund_account::member::MemberId,
        page: &fund_account::store::PageRequest,
    ) -> Result<fund_account::store::Page<fund_account::records::Withdrawal>, fund_account::store::StoreError> {
        hooked_read!(self, "withdrawals", self.inner.withdrawals(member_id, page))
    }
    async fn ledger(
        &self,
        member_id: &fund_account::member::MemberId,
        currency: Option<fund_account::money::Currency>,
        page: &fund_account::store::PageRequest,
    ) -> Result<fund_account::store::Page<fund_account::ledger::LedgerEntry>, fund_account::store::StoreError> {
        hooked_read!(self, "ledger", self.inner.ledger(member_id, currency, page))
    }
    async fn collection(
        &self,
        id: &str,
    ) -> Result<Option<fund_account::records::Collection>, fund_account::store::StoreError> {
        hooked_read!(self, "collection", self.inner.collection(id))
    }
    async fn refund(&self, id: &str) -> Result<Option<fund_account::records::Refund>, fund_account::store::StoreError> {
        hooked_read!(self, "refund", self.inner.refund(id))
    }
    async fn due_collections(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<fund_account::records::Collection>, fund_account::store::StoreError> {
        hooked_read!(self, "due_collections", self.inner.due_collections(now, limit))
    }
    async fn member_ids(
        &self,
        shard: u32,
        after: Option<&fund_account::member::MemberId>,
        limit: usize,
    ) -> Result<fund_account::store::Page<fund_account::member::MemberId>, fund_account::store::StoreError> {
        hooked_read!(self, "member_ids", self.inner.member_ids(shard, after, limit))
    }
    async fn member_collections(
        &self,
        member_id: &fund_account::member::MemberId,
        page: &fund_account::store::PageRequest,
    ) -> Result<fund_account::store::Page<fund_account::records::Collection>, fund_account::store::StoreError> {
        hooked_read!(
            self,
            "member_collections",
            self.inner.member_collections(member_id, page)
        )
    }
    async fn run_record(
        &self,
        run_id: &str,
    ) -> Result<Option<fund_account::records::RunRecord>, fund_account::store::StoreError> {
        hooked_read!(self, "run_record", self.inner.run_record(run_id))
    }
    async fn commit(&self, writes: Vec<fund_account::store::Write>) -> Result<(), fund_account::store::StoreError> {
        let injection = self.hook.before(StoreCall::Commit(&writes)).await;
        self.apply(injection, self.inner.commit(writes)).await
    }
}

/// Which commits a [`Gate`] holds.
type CommitFilter = Box<dyn Fn(&[fund_account::store::Write]) -> bool + Send + Sync>;

/// A hook that holds the first commit matching a predicate until the test releases it.
pub struct Gate {
    matches: CommitFilter,
    armed: std::sync::atomic::AtomicBool,
    held: tokio::sync::Notify,
    release: tokio::sync::Semaphore,
}

impl Gate {
    pub fn new(matches: impl Fn(&[fund_account::store::Write]) -> bool + Send + Sync + 'static) -> Arc<Gate> {
        Arc::new(Gate {
            matches: Box::new(matches),
            armed: std::sync::atomic::AtomicBool::new(true),
            held: tokio::sync::Notify::new(),
            release: tokio::sync::Semaphore::new(0),
        })
    }

    /// Waits until a matching commit is held at the gate.
    pub async fn wait_until_held(&self) {
        tokio::time::timeout(Duration::from_secs(30), self.held.notified())
            .await
            .expect("a matching commit reached the gate");
    }

    /// Lets the held commit go on to the store.
    pub fn release(&self) {
        self.release.add_permits(1);
    }
}

#[async_trait::async_trait]
impl StoreHook for Gate {
    async fn before(&self, call: StoreCall<'_>) -> Injection {
        let StoreCall::Commit(writes) = call else {
            return Injection::Pass;
        };
        if (self.matches)(writes) && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.held.notify_one();
            let _permit = self.release.acquire().await.expect("gate open");
        }
        Injection::Pass
    }
}

/// A hook that cancels the first `times` calls of one kind with DynamoDB's
/// `TransactionConflict` (as [`fund_account::store::StoreError::Contention`]): what real
/// DynamoDB does to overlapping transactions and the emulator never does.
pub struct Conflicts {
    /// `Some(name)`: that read; `None`: commits.
    target: Option<&'static str>,
    times: usize,
    left: std::sync::atomic::AtomicUsize,
}

impl Conflicts {
    pub fn on_commits(times: usize) -> Arc<Conflicts> {
        Conflicts::new(None, times)
    }

    pub fn on_read(name: &'static str, times: usize) -> Arc<Conflicts> {
        Conflicts::new(Some(name), times)
    }

    fn new(target: Option<&'static str>, times: usize) -> Arc<Conflicts> {
        Arc::new(Conflicts {
            target,
            times,
            left: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Starts injecting: the set-up before this runs clean.
    pub fn arm(&self) {
        self.left.store(self.times, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether every conflict armed was injected.
    pub fn all_injected(&self) -> bool {
        self.left.load(std::sync::atomic::Ordering::SeqCst) == 0
    }
}

#[async_trait::async_trait]
impl StoreHook for Conflicts {
    async fn before(&self, call: StoreCall<'_>) -> Injection {
        let hit = match (&call, self.target) {
            (StoreCall::Commit(_), None) => true,
            (StoreCall::Read(name), Some(target)) => *name == target,
            _ => false,
        };
        let take = |left: usize| left.checked_sub(1);
        if hit
            && self
                .left
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    take,
                )
                .is_ok()
        {
            return Injection::FailBefore(fund_account::store::StoreError::Contention);
        }
        Injection::Pass
    }
}

/// Where an injected fault strikes a store call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails before reaching the store: nothing happens.
    Before,
    /// The call reaches the store and takes effect, then the caller sees a failure.
    After,
}

/// A hook that fails the n-th store call from when it is armed: the crash-safety tests'
/// fault injection.
pub struct FaultyStore {
    armed: std::sync::Mutex<Option<(usize, Fault)>>,
    calls: std::sync::atomic::AtomicUsize,
}

impl FaultyStore {
    /// Fails the `call`-th store call from now (0 = the next one).
    pub fn arm(&self, call: usize, fault: Fault) {
        self.calls.store(0, std::sync::atomic::Ordering::SeqCst);
        *self.armed.lock().expect("lock") = Some((call, fault));
    }

    pub fn disarm(&self) {
        *self.armed.lock().expect("lock") = None;
    }

    /// Whether the armed fault has struck.
    pub fn struck(&self) -> bool {
        let armed = *self.armed.lock().expect("lock");
        armed.is_some_and(|(call, _)| self.calls.load(std::sync::atomic::Ordering::SeqCst) > call)
    }
}

#[async_trait::async_trait]
impl StoreHook for FaultyStore {
    async fn before(&self, _call: StoreCall<'_>) -> Injection {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let armed = *self.armed.lock().expect("lock");
        let injected = || fund_account::store::StoreError::Unavailable("injected fault".to_owned());
        match armed {
            Some((call, Fault::Before)) if call == n => Injection::FailBefore(injected()),
            Some((call, Fault::After)) if call == n => Injection::FailAfter(injected()),
            _ => Injection::Pass,
        }
    }
}

/// A test app whose store can be made to fail at a chosen call.
pub async fn faulty_app(adapter: Adapter) -> (TestApp, Arc<FaultyStore>) {
    let faults = Arc::new(FaultyStore {
        armed: std::sync::Mutex::new(None),
        calls: std::sync::atomic::AtomicUsize::new(0),
    });
    let t = hooked_app(adapter, faults.clone()).await;
    (t, faults)
}
