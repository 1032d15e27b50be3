//! Apps under test: a fresh store per adapter, a manual clock, SMS to an outbox the test
//! reads, and members made as the marketplace would.

use std::sync::Arc;

use fund_account::adapters::sqlite::SqliteStore;
use fund_account::app::{App, Settings};
use fund_account::clock::{Clock, ManualClock, Timestamp};
use fund_account::sms::SmsSender;
use fund_account::store::Store;

use crate::emulator::dynamodb_store;
use crate::fixtures;
use crate::T0;

/// A fresh embedded store in memory.
pub fn sqlite_store() -> SqliteStore {
    SqliteStore::in_memory().expect("in-memory sqlite")
}

/// The code-hashing key every test app uses.
pub const TEST_CODE_SECRET: &[u8] = b"test-code-secret-0123456789abcdef";

/// An app over `store`, with the local outbox for SMS and a manual clock at [`T0`].
pub fn app_with(store: Arc<dyn Store>, sms: Arc<dyn SmsSender>) -> (Arc<App>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_at(Timestamp::from_unix_millis(T0)));
    let settings = Settings::new(TEST_CODE_SECRET.to_vec()).expect("valid settings");
    // Exports go to a directory of their own, as the local gateway keeps them.
    let files = fund_account::adapters::local_files::LocalFiles::new(
        std::env::temp_dir().join(format!(
            "fund-account-files-{}",
            ulid::Ulid::new().to_string().to_lowercase()
        )),
        "http://127.0.0.1:3000",
        b"test-file-signing-key".to_vec(),
    );
    let app = App::new(store, sms, Arc::clone(&clock) as Arc<dyn Clock>, settings).with_files(Arc::new(files));
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

/// The payment password test members activate with.
pub const PAYMENT_PASSWORD: &str = "Vault-Key-2026!";

impl TestApp {
    /// The stored collection `id`, which the test knows exists.
    pub async fn stored_collection(&self, id: &str) -> fund_account::records::Collection {
        let id = fixtures::external_id(id);
        self.app
            .store
            .collection(&id)
            .await
            .expect("a read")
            .expect("the collection exists")
    }

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
                collection_id: fixtures::external_id(&id),
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
