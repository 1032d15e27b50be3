//! The functions as deployed: each is built the way its Lambda builds it, from exactly
//! the environment `template.yaml` gives it, against the emulator. A setting the template
//! declares and the code ignores, or one the code needs and the template leaves out,
//! fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use fund_account::function_config::{vars, Env, Function};
use fund_account::ledger::{Bucket, EntryType, Posting};
use fund_account::member::{MemberId, MemberStatus};
use fund_account::money::Currency;
use fund_account::password::PaymentPassword;
use fund_account::reconciliation::{self, RunOptions};
use fund_account::store::Write;
use fund_account::verification::SmsCode;
use fund_account_tests::deployed::{function_resource, role_statements, template, Emulated};
use serde_yaml::Value as Yaml;

/// An environment that remembers every name asked of it.
struct RecordingEnv {
    vars: BTreeMap<String, String>,
    read: Mutex<BTreeSet<String>>,
}

impl RecordingEnv {
    fn new(vars: BTreeMap<String, String>) -> RecordingEnv {
        RecordingEnv {
            vars,
            read: Mutex::new(BTreeSet::new()),
        }
    }

    fn read(&self) -> BTreeSet<String> {
        self.read.lock().unwrap().clone()
    }
}

impl Env for RecordingEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.read.lock().unwrap().insert(name.to_owned());
        self.vars.get(name).cloned()
    }
}

/// Every function starts from exactly what the template declares for it: each variable
/// declared is read, none is read that is not declared, and each one but the log filter
/// is required — without it the cold start fails, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_reads_exactly_the_environment_the_template_declares() {
    let emulated = Emulated::create().await;
    for function in Function::all() {
        let declared = emulated.environment(function);
        let env = RecordingEnv::new(declared.clone());
        let app = emulated.start(function, &env).await.unwrap_or_else(|e| {
            panic!(
                "{} does not start from its template environment: {e}",
                function.binary()
            )
        });
        let declared_names: BTreeSet<String> = declared.keys().cloned().collect();
        assert_eq!(
            env.read(),
            declared_names,
            "{}: variables read (left) and declared in template.yaml (right) differ",
            function.binary()
        );
        assert_eq!(
            app.code_hasher.is_some(),
            function.hashes_codes(),
            "{}",
            function.binary()
        );

        for missing in declared.keys().filter(|name| *name != vars::RUST_LOG) {
            let mut without = declared.clone();
            without.remove(missing);
            match emulated.start(function, &RecordingEnv::new(without)).await {
                Err(error) => assert!(error.0.contains(missing.as_str()), "{}: {error}", function.binary()),
                Ok(_) => panic!("{} starts without {missing}", function.binary()),
            }
        }
    }
}

fn function(route: fund_account::routes::Route) -> Function {
    Function::Http(route)
}

async fn sent_notifications(topic_arn: &str) -> Vec<serde_json::Value> {
    let data = fund_account_tests::emulator_state().await;
    data["sns"]["Topic"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["arn"] == topic_arn)
        .expect("the topic")["sent_notifications"]
        .as_array()
        .unwrap()
        .clone()
}

/// The reconcile function, built from its template environment, publishes a
/// discrepancy to the template's alert topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconcile_function_alerts_through_its_topic() {
    let emulated = Emulated::create().await;
    let member_sync = emulated
        .started(function(fund_account::routes::Route::MemberSync))
        .await;
    let member = MemberId::parse("tampered-seller").unwrap();
    let login = fund_account::member::PhcHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".to_owned());
    fund_account::activation::sync_member(&member_sync, &member, login, None)
        .await
        .unwrap();
    let sabotage = Write::posting(
        Posting::new(&member, Currency::Usd, EntryType::Collection, "sabotage")
            .change(Bucket::Available, fund_account_tests::fixtures::amount("7")),
        member_sync.now(),
    );
    member_sync.store.commit(vec![sabotage[0].clone()]).await.unwrap();

    let reconcile = emulated.started(Function::Reconcile).await;
    let report = reconciliation::run(&reconcile, RunOptions::full()).await.unwrap();
    assert_eq!(report.discrepancies.len(), 1);

    let notifications = sent_notifications(&emulated.topic_arn).await;
    assert_eq!(notifications.len(), 1, "one alert published to the template's topic");
    let published: serde_json::Value = serde_json::from_str(notifications[0][1].as_str().unwrap()).unwrap();
    assert_eq!(published["run_id"], report.run_id.as_str());
    assert_eq!(published["discrepancies"][0]["member_id"], "tampered-seller");
}

/// send-code and confirm-code each fetch the code secret from Secrets Manager at cold
/// start: a code one hashes, the other verifies; SMS goes out through SNS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_code_and_confirm_code_share_the_secret_from_secrets_manager() {
    use fund_account::routes::Route;
    let emulated = Emulated::create().await;
    let member = MemberId::parse(&format!("secret-seller-{}", ulid::Ulid::new())).unwrap();
    let phone_digits = ulid::Ulid::new().random() % 10_000;
    let phone = format!("+1202556{phone_digits:04}");
    let login = fund_account::password::hash_blocking(&PaymentPassword::new("login-Pass-2026".to_owned())).unwrap();
    fund_account::activation::sync_member(
        &emulated.started(function(Route::MemberSync)).await,
        &member,
        fund_account::member::PhcHash::new(login),
        Some(fund_account::phone::PhoneNumber::parse(&phone).unwrap()),
    )
    .await
    .unwrap();
    fund_account::activation::set_payment_password(
        &emulated.started(function(Route::Activate)).await,
        &member,
        PaymentPassword::new("Vault-Key-2026!".to_owned()),
    )
    .await
    .unwrap();
    fund_account::activation::send_code(&emulated.started(function(Route::SendCode)).await, &member)
        .await
        .unwrap();

    let sent = fund_account_tests::sent_sms().await;
    let (_, message) = sent
        .iter()
        .find(|(to, _)| *to == phone)
        .expect("an SMS to the member's phone");
    let code: String = message
        .split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .expect("a 6-digit code")
        .to_owned();
    let confirm = emulated.started(function(Route::ConfirmCode)).await;
    fund_account::activation::confirm_code(&confirm, &member, &SmsCode::parse(&code).unwrap())
        .await
        .unwrap();
    let state = confirm.store.member_state(&member).await.unwrap().unwrap();
    assert_eq!(state.member.status, MemberStatus::Active);
}

/// Whether `binary`'s role may read the SMS code secret.
fn reads_code_secret(template: &Yaml, binary: &str) -> bool {
    let policies = function_resource(template, binary)["Properties"]["Policies"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    let by_template = policies
        .iter()
        .any(|policy| policy.get("AWSSecretsManagerGetSecretValuePolicy").is_some());
    let by_statement = role_statements(template, binary).iter().any(|statement| {
        let actions = format!("{:?}", statement["Action"]);
        actions.contains("secretsmanager:")
    });
    by_template || by_statement
}

/// Only the functions that hash codes may read the code secret.
/// Each function's `MemorySize` is the one the memory model chose for it
/// (`Function::memory_mb`, from `infra/bench/src/memory.rs` and the CPU per request measured
/// by `infra/scripts/bench.sh`; docs/PERFORMANCE.md): the template, the table and the
/// documented model cannot drift apart silently. Reads the template only (milliseconds).
#[test]
fn every_function_has_the_memory_the_model_chose() {
    let template = template();
    for function in Function::all() {
        assert_eq!(
            fund_account_tests::deployed::memory_mb(&template, function.binary()),
            u64::from(function.memory_mb()),
            "{}: MemorySize in template.yaml against Function::memory_mb",
            function.binary()
        );
    }
}

#[test]
fn only_the_code_hashing_functions_may_read_the_code_secret() {
    let template = template();
    for function in Function::all() {
        assert_eq!(
            reads_code_secret(&template, function.binary()),
            function.hashes_codes(),
            "{}: may read the code secret",
            function.binary()
        );
    }
}

/// The statements of the reconcile role that reach `MEMBER#` partitions, by action.
fn reconcile_member_statements(template: &Yaml) -> BTreeMap<String, &Yaml> {
    member_statements(template, "reconcile")
}

/// The statements of `binary`'s role that reach `MEMBER#` partitions, by action.
fn member_statements<'a>(template: &'a Yaml, binary: &str) -> BTreeMap<String, &'a Yaml> {
    let mut by_action = BTreeMap::new();
    for statement in role_statements(template, binary) {
        let leading = &statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
        let reaches_members = leading
            .as_sequence()
            .into_iter()
            .flatten()
            .any(|key| key.as_str() == Some("MEMBER#*"));
        if reaches_members {
            for action in statement["Action"].as_sequence().into_iter().flatten() {
                let action = action.as_str().expect("an action").to_owned();
                assert!(
                    by_action.insert(action, statement).is_none(),
                    "one statement per action"
                );
            }
        }
    }
    by_action
}

fn allowed_attributes(statement: &Yaml) -> BTreeSet<String> {
    statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
        .as_sequence()
        .expect("an attribute list")
        .iter()
        .map(|a| a.as_str().expect("a name").to_owned())
        .collect()
}

/// A member partition holds the profile with its password hashes. The reconcile role
/// reaches it with a `Query` limited to the projection the code sends
/// (`BALANCE_PROJECTION`) and an `UpdateItem` limited to what a balance item holds (as
/// the adapter writes it, read back from the emulator) that returns nothing.
#[tokio::test]
async fn the_reconcile_role_reaches_member_partitions_only_for_balances() {
    let template = template();
    let member_statements = reconcile_member_statements(&template);
    assert_eq!(
        member_statements.keys().map(String::as_str).collect::<Vec<_>>(),
        ["dynamodb:Query", "dynamodb:UpdateItem"]
    );

    let query = member_statements["dynamodb:Query"];
    let projected: BTreeSet<String> = fund_account::adapters::dynamodb::BALANCE_PROJECTION
        .iter()
        .map(|placeholder| placeholder[1..].to_owned())
        .collect();
    assert_eq!(allowed_attributes(query), projected);
    assert_eq!(
        query["Condition"]["StringEquals"]["dynamodb:Select"].as_str(),
        Some("SPECIFIC_ATTRIBUTES")
    );

    let update = member_statements["dynamodb:UpdateItem"];
    assert_eq!(
        update["Condition"]["StringEqualsIfExists"]["dynamodb:ReturnValues"].as_str(),
        Some("NONE")
    );
    let store = fund_account_tests::dynamodb_store().await;
    let member = MemberId::parse("balance-shape").unwrap();
    let posting = Write::posting(
        Posting::new(&member, Currency::Usd, EntryType::Collection, "col-1")
            .change(Bucket::Pending, fund_account_tests::fixtures::amount("5")),
        fund_account_tests::fixtures::at(0),
    );
    use fund_account::store::Store;
    store.commit(posting).await.unwrap();
    let item = store
        .client()
        .get_item()
        .table_name(store.table())
        .key(
            "PK",
            aws_sdk_dynamodb::types::AttributeValue::S("MEMBER#balance-shape".to_owned()),
        )
        .key(
            "SK",
            aws_sdk_dynamodb::types::AttributeValue::S("BALANCE#USD".to_owned()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the balance item");
    let written: BTreeSet<String> = item.keys().cloned().collect();
    assert_eq!(allowed_attributes(update), written);
}

/// API Gateway throttles every route, and the argon2id routes tighter than the rest; only
/// the marketplace's collections may be looser (a big seller's sale day).
#[test]
fn every_route_is_throttled_and_the_argon2_routes_tighter() {
    use fund_account::routes::Route;
    let template = template();
    let api = &template["Resources"]["HttpApi"]["Properties"];
    let limits = |settings: &Yaml| {
        (
            settings["ThrottlingRateLimit"].as_u64().expect("a rate limit"),
            settings["ThrottlingBurstLimit"].as_u64().expect("a burst limit"),
        )
    };
    let (default_rate, default_burst) = limits(&api["DefaultRouteSettings"]);
    let routes = api["RouteSettings"].as_mapping().expect("route settings");
    for (key, settings) in routes {
        let key = key.as_str().expect("a route key");
        assert!(
            Route::ALL.iter().any(|r| format!("{} {}", r.method(), r.path()) == key),
            "{key} is a route"
        );
        let (rate, burst) = limits(settings);
        if key
            == format!(
                "{} {}",
                Route::CreateCollection.method(),
                Route::CreateCollection.path()
            )
        {
            continue;
        }
        assert!(
            rate < default_rate && burst < default_burst,
            "{key} is tighter than the default"
        );
    }
    for argon2_route in [Route::Activate, Route::Withdraw] {
        let key = format!("{} {}", argon2_route.method(), argon2_route.path());
        assert!(routes.contains_key(key.as_str()), "{key} has its own, tighter limit");
    }
}

/// The table the adapter creates for local runs (`LOCAL_STORE=dynamodb`, the benchmarks)
/// is the one `template.yaml` declares (and every DynamoDB test runs on): same keys,
/// attributes, indexes, billing and TTL attribute.
#[tokio::test]
async fn the_adapters_table_is_the_templates() {
    let client = aws_sdk_dynamodb::Client::new(&fund_account_tests::aws_config().await);
    let unique = ulid::Ulid::new().to_string().to_lowercase();
    let (from_template, from_adapter) = (format!("template-{unique}"), format!("adapter-{unique}"));
    fund_account_tests::create_table_from_template(&client, &from_template).await;
    fund_account::adapters::dynamodb::DynamoStore::create_table(&client, &from_adapter)
        .await
        .unwrap();
    let template_shape = table_shape(&client, &from_template).await;
    assert!(
        template_shape.contains("GSI2")
            && template_shape.contains("expires_at_ttl")
            && template_shape.contains("NEW_IMAGE"),
        "{template_shape}"
    );
    assert_eq!(template_shape, table_shape(&client, &from_adapter).await);
}

/// What of a table the code relies on, as DynamoDB describes it.
async fn table_shape(client: &aws_sdk_dynamodb::Client, name: &str) -> String {
    use aws_sdk_dynamodb::types::KeySchemaElement;
    let table = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys = |schema: &[KeySchemaElement]| {
        schema
            .iter()
            .map(|k| format!("{} {}", k.attribute_name(), k.key_type().as_str()))
            .collect::<Vec<_>>()
    };
    let mut attributes: Vec<String> = table
        .attribute_definitions()
        .iter()
        .map(|a| format!("{} {}", a.attribute_name(), a.attribute_type().as_str()))
        .collect();
    attributes.sort();
    let mut indexes: Vec<String> = table
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            let projection = i
                .projection()
                .and_then(|p| p.projection_type())
                .map(|p| p.as_str().to_owned());
            format!(
                "{} {:?} {projection:?}",
                i.index_name().unwrap_or_default(),
                keys(i.key_schema())
            )
        })
        .collect();
    indexes.sort();
    let billing = table
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .map(|b| b.as_str().to_owned());
    let ttl = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .and_then(|d| d.attribute_name);
    let stream = table
        .stream_specification()
        .and_then(|s| s.stream_view_type())
        .map(|v| v.as_str().to_owned());
    format!(
        "keys {:?}\nattributes {attributes:?}\nindexes {indexes:?}\nbilling {billing:?}\nttl {ttl:?}\nstream {stream:?}",
        keys(table.key_schema())
    )
}

/// The collection function reads a member partition only to learn that the member
/// exists: one `Query` limited to the keys `Store::member_exists` projects. No condition
/// check on the profile either (every collection of a seller would write that one item),
/// only balance updates.
#[test]
fn the_collection_role_reads_member_partitions_only_for_existence() {
    let template = template();
    let statements = member_statements(&template, "create-collection");
    assert_eq!(
        statements.keys().map(String::as_str).collect::<Vec<_>>(),
        ["dynamodb:Query", "dynamodb:UpdateItem"]
    );
    let query = statements["dynamodb:Query"];
    assert_eq!(
        allowed_attributes(query),
        ["PK", "SK"].map(str::to_owned).into_iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(
        query["Condition"]["StringEquals"]["dynamodb:Select"].as_str(),
        Some("SPECIFIC_ATTRIBUTES")
    );
}

/// The publisher reads a member partition only for the bound phone: one `Query` limited
/// to the attributes of the projection `Store::member_phone` sends, and nothing else
/// reaches a member partition.
#[test]
fn the_publisher_role_reaches_member_partitions_only_for_the_phone() {
    let template = template();
    let statements = member_statements(&template, "publish-events");
    assert_eq!(
        statements.keys().map(String::as_str).collect::<Vec<_>>(),
        ["dynamodb:Query"]
    );
    let query = statements["dynamodb:Query"];
    assert_eq!(
        allowed_attributes(query),
        ["PK", "SK", "phone"]
            .map(str::to_owned)
            .into_iter()
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(
        query["Condition"]["StringEquals"]["dynamodb:Select"].as_str(),
        Some("SPECIFIC_ATTRIBUTES")
    );
}
