//! Local gateway settings, from the environment, with durable defaults kept in the data
//! directory so tokens and codes stay valid across restarts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fund_account::adapters::sqlite::GroupCommit;
use rand::RngCore;

/// Which store the gateway runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// SQLite under the data directory (the default).
    Embedded,
    /// DynamoDB at `AWS_ENDPOINT_URL` (or AWS itself), table `TABLE_NAME`.
    DynamoDb { table: String },
}

/// Which SMS sender the gateway uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsBackend {
    Outbox,
    Sns,
}

#[derive(Clone)]
pub struct GatewayConfig {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub internal_key: String,
    /// True when the key was made up at start-up (and so must be printed).
    pub internal_key_generated: bool,
    pub jwt_secret: Vec<u8>,
    pub code_secret: Vec<u8>,
    pub store: StoreBackend,
    pub sms: SmsBackend,
    /// Static files served at `/` (the web client), if present.
    pub web_dir: Option<PathBuf>,
    /// Whether the local-only `/dev` routes exist. On by default with the embedded
    /// store; with DynamoDB only when `LOCAL_DEV_ROUTES=1`. Off, they answer 404 like
    /// any unknown route.
    pub dev_routes: bool,
    /// Whether the embedded store makes concurrent commits durable together, one fsync
    /// per group (`LOCAL_GROUP_COMMIT=1`, the default), or one fsync per commit (`0`, to
    /// measure the difference).
    pub group_commit: GroupCommit,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field("store", &self.store)
            .field("sms", &self.sms)
            .field("dev_routes", &self.dev_routes)
            .field("group_commit", &self.group_commit)
            .finish_non_exhaustive()
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Reads `name` from the data directory, creating it with a random value first.
fn durable_secret(data_dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    let path = data_dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().as_bytes().to_vec()),
        _ => {
            let secret = random_hex(32);
            write_private(&path, &secret).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(secret.into_bytes())
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

impl GatewayConfig {
    /// `LOCAL_GATEWAY_ADDR` (127.0.0.1:3000), `LOCAL_DATA_DIR` (./.local-data),
    /// `LOCAL_INTERNAL_KEY` (else random), `LOCAL_JWT_SECRET` and `CODE_HMAC_SECRET`
    /// (else random, kept in the data directory), `LOCAL_STORE=embedded|dynamodb`
    /// (with `TABLE_NAME`), `LOCAL_SMS=outbox|sns`, `LOCAL_WEB_DIR` (./web/app),
    /// `LOCAL_DEV_ROUTES=0|1` (default: 1 with the embedded store, 0 with DynamoDB),
    /// `LOCAL_GROUP_COMMIT=0|1` (default 1).
    pub fn from_env() -> Result<GatewayConfig, String> {
        GatewayConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`GatewayConfig::from_env`] over any source of variables (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<GatewayConfig, String> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let addr: SocketAddr = var("LOCAL_GATEWAY_ADDR")
            .unwrap_or_else(|| "127.0.0.1:3000".to_owned())
            .parse()
            .map_err(|_| "LOCAL_GATEWAY_ADDR must be host:port, e.g. 127.0.0.1:3000".to_owned())?;
        let data_dir = PathBuf::from(var("LOCAL_DATA_DIR").unwrap_or_else(|| "./.local-data".to_owned()));
        std::fs::create_dir_all(&data_dir).map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let (internal_key, internal_key_generated) = match var("LOCAL_INTERNAL_KEY") {
            Some(key) => (key, false),
            None => (random_hex(16), true),
        };
        let jwt_secret = match var("LOCAL_JWT_SECRET") {
            Some(secret) => secret.into_bytes(),
            None => durable_secret(&data_dir, "jwt-secret")?,
        };
        let code_secret = match var("CODE_HMAC_SECRET") {
            Some(secret) => secret.into_bytes(),
            None => durable_secret(&data_dir, "code-hmac-secret")?,
        };
        let store = match var("LOCAL_STORE").as_deref() {
            None | Some("embedded") => StoreBackend::Embedded,
            Some("dynamodb") => StoreBackend::DynamoDb {
                table: var("TABLE_NAME").ok_or("LOCAL_STORE=dynamodb needs TABLE_NAME")?,
            },
            Some(other) => return Err(format!("LOCAL_STORE must be embedded or dynamodb, not {other}")),
        };
        let sms = match var("LOCAL_SMS").as_deref() {
            None | Some("outbox") => SmsBackend::Outbox,
            Some("sns") => SmsBackend::Sns,
            Some(other) => return Err(format!("LOCAL_SMS must be outbox or sns, not {other}")),
        };
        let web_dir = Some(PathBuf::from(
            var("LOCAL_WEB_DIR").unwrap_or_else(|| "./web/app".to_owned()),
        ))
        .filter(|dir| dir.is_dir());
        // The /dev routes create members and mint tokens: next to a real table they
        // must be asked for.
        let dev_routes = match var("LOCAL_DEV_ROUTES").as_deref() {
            None => store == StoreBackend::Embedded,
            Some("1") => true,
            Some("0") => false,
            Some(other) => return Err(format!("LOCAL_DEV_ROUTES must be 0 or 1, not {other}")),
        };
        let group_commit = match var("LOCAL_GROUP_COMMIT").as_deref() {
            None | Some("1") => GroupCommit::On,
            Some("0") => GroupCommit::Off,
            Some(other) => return Err(format!("LOCAL_GROUP_COMMIT must be 0 or 1, not {other}")),
        };
        Ok(GatewayConfig {
            addr,
            data_dir,
            internal_key,
            internal_key_generated,
            jwt_secret,
            code_secret,
            store,
            sms,
            web_dir,
            dev_routes,
            group_commit,
        })
    }
}
