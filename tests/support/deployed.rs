//! The deployed shape, read from `template.yaml`: each function's resource and the
//! environment the template gives it, with its references (`!Ref`, `!GetAtt`, `!Sub`)
//! resolved to stand-ins created on the emulator ([`Emulated`]). Used by the tests that
//! start functions in-process (`deployed_shape.rs`) and as binaries
//! (`function_binaries.rs`), and by the checks of the template's alarms (`operations.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use fund_account::app::{App, ConfigError};
use fund_account::function_config::{Env, Function};
use serde_yaml::Value as Yaml;

use crate::project_root;

/// The region and account of the emulator (moto's default account).
pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";

/// `template.yaml`, parsed.
pub fn template() -> Yaml {
    let text = std::fs::read_to_string(project_root().join("template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml parses")
}

/// The logical id of the function resource that builds `binary`.
pub fn function_logical_id<'a>(template: &'a Yaml, binary: &str) -> &'a str {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
        .and_then(|(id, _)| id.as_str())
        .unwrap_or_else(|| panic!("template.yaml builds no {binary}"))
}

/// The policy statements of `binary`'s role.
pub fn role_statements<'a>(template: &'a Yaml, binary: &str) -> Vec<&'a Yaml> {
    function_resource(template, binary)["Properties"]["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|policy| policy["Statement"].as_sequence().into_iter().flatten())
        .collect()
}

/// The function resource that builds `binary`.
pub fn function_resource<'a>(template: &'a Yaml, binary: &str) -> &'a Yaml {
    &template["Resources"][function_logical_id(template, binary)]
}

/// A function property, its own or else from `Globals`.
fn function_property<'a>(template: &'a Yaml, binary: &str, name: &str) -> &'a Yaml {
    let own = &function_resource(template, binary)["Properties"][name];
    if own.is_null() {
        &template["Globals"]["Function"][name]
    } else {
        own
    }
}

/// The memory `binary` is given, in MB.
pub fn memory_mb(template: &Yaml, binary: &str) -> u64 {
    function_property(template, binary, "MemorySize")
        .as_u64()
        .unwrap_or_else(|| panic!("{binary}: MemorySize"))
}

/// How long `binary` may run.
pub fn timeout(template: &Yaml, binary: &str) -> Duration {
    let seconds = function_property(template, binary, "Timeout")
        .as_u64()
        .unwrap_or_else(|| panic!("{binary}: Timeout"));
    Duration::from_secs(seconds)
}

/// The environment the template gives `binary`, unresolved: Globals, then its own.
pub fn declared_environment(template: &Yaml, binary: &str) -> BTreeMap<String, Yaml> {
    let mut env = BTreeMap::new();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    let own = &function_resource(template, binary)["Properties"]["Environment"]["Variables"];
    for variables in [globals, own] {
        for (name, value) in variables.as_mapping().into_iter().flatten() {
            env.insert(name.as_str().expect("a variable name").to_owned(), value.clone());
        }
    }
    env
}

/// What stands in for one template resource on the emulator: its `!Ref` value and its
/// `!GetAtt` attributes.
#[derive(Debug, Clone)]
struct StandIn {
    reference: String,
    attributes: BTreeMap<&'static str, String>,
}

/// The emulator's stand-ins for the resources a function's environment may name.
pub struct Emulated {
    pub template: Yaml,
    pub aws: aws_config::SdkConfig,
    pub table: String,
    pub topic_arn: String,
    pub secret_arn: String,
    stand_ins: BTreeMap<&'static str, StandIn>,
}

impl Emulated {
    /// A table, a topic and a secret of their own on the emulator.
    pub async fn create() -> Emulated {
        let aws = crate::aws_config().await;
        let unique = ulid::Ulid::new().to_string().to_lowercase();
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        let table = format!("deployed-{unique}");
        crate::emulator::create_table_from_template(&dynamodb, &table).await;
        let table_arn = dynamodb
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .expect("the table")
            .table
            .and_then(|t| t.table_arn)
            .expect("the table's ARN");
        let topic_name = format!("alerts-{unique}");
        let topic_arn = aws_sdk_sns::Client::new(&aws)
            .create_topic()
            .name(&topic_name)
            .send()
            .await
            .expect("topic")
            .topic_arn
            .expect("topic arn");
        // What `GenerateSecretString` would make: 64 random letters and digits.
        let secret: String = ulid::Ulid::new().to_string().repeat(3).chars().take(64).collect();
        let secret_name = format!("code-hmac-{unique}");
        let secret_arn = aws_sdk_secretsmanager::Client::new(&aws)
            .create_secret()
            .name(&secret_name)
            .secret_string(secret)
            .send()
            .await
            .expect("secret")
            .arn
            .expect("secret arn");
        // Bucket names are DNS names: lowercase, at most 63 characters.
        let bucket = format!("exports-{unique}");
        crate::emulator::s3_client(&aws)
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("bucket");
        let bus_name = format!("events-{unique}");
        let bus_arn = aws_sdk_eventbridge::Client::new(&aws)
            .create_event_bus()
            .name(&bus_name)
            .send()
            .await
            .expect("event bus")
            .event_bus_arn
            .expect("event bus arn");
        let stand_ins = BTreeMap::from([
            (
                "AWS::S3::Bucket",
                StandIn {
                    reference: bucket.clone(),
                    attributes: BTreeMap::from([("Arn", format!("arn:aws:s3:::{bucket}"))]),
                },
            ),
            (
                "AWS::Events::EventBus",
                StandIn {
                    reference: bus_name.clone(),
                    attributes: BTreeMap::from([("Arn", bus_arn), ("Name", bus_name)]),
                },
            ),
            (
                "AWS::DynamoDB::Table",
                StandIn {
                    reference: table.clone(),
                    attributes: BTreeMap::from([("Arn", table_arn)]),
                },
            ),
            (
                "AWS::SNS::Topic",
                StandIn {
                    reference: topic_arn.clone(),
                    attributes: BTreeMap::from([("TopicArn", topic_arn.clone()), ("TopicName", topic_name)]),
                },
            ),
            (
                "AWS::SecretsManager::Secret",
                StandIn {
                    reference: secret_arn.clone(),
                    attributes: BTreeMap::from([("Id", secret_arn.clone())]),
                },
            ),
        ]);
        Emulated {
            template: template(),
            aws,
            table,
            topic_arn,
            secret_arn,
            stand_ins,
        }
    }

    /// The environment `template.yaml` gives `function`, resolved.
    pub fn environment(&self, function: Function) -> BTreeMap<String, String> {
        declared_environment(&self.template, function.binary())
            .into_iter()
            .map(|(name, value)| {
                let resolved = self.resolve(&value);
                (name, resolved)
            })
            .collect()
    }

    /// Starts `function` in-process as its Lambda does, from `env`.
    pub async fn start(&self, function: Function, env: &dyn Env) -> Result<App, ConfigError> {
        fund_account::lambda::start(function, env, &self.aws).await
    }

    /// `function` started in-process from its template environment.
    pub async fn started(&self, function: Function) -> App {
        let env = MapEnv(self.environment(function));
        self.start(function, &env)
            .await
            .unwrap_or_else(|e| panic!("{} starts: {e}", function.binary()))
    }

    /// A variable's value as CloudFormation would resolve it, with the emulator's names.
    pub fn resolve(&self, value: &Yaml) -> String {
        // Tagged first: serde_yaml's `as_str` would see through the tag.
        let Yaml::Tagged(tagged) = value else {
            return match value {
                Yaml::String(text) => text.clone(),
                Yaml::Number(number) => number.to_string(),
                Yaml::Bool(flag) => flag.to_string(),
                other => panic!("unsupported value {other:?}"),
            };
        };
        let argument = tagged.value.as_str();
        match (tagged.tag.to_string().as_str(), argument) {
            ("!Ref", Some(name)) => self.reference(name),
            ("!GetAtt", Some(name)) => {
                let (resource, attribute) = name
                    .split_once('.')
                    .unwrap_or_else(|| panic!("!GetAtt {name}: Resource.Attribute"));
                self.attribute(resource, attribute)
            }
            ("!Sub", Some(text)) => self.substitute(text),
            (tag, _) => panic!("no resolution here for {tag} {:?}", tagged.value),
        }
    }

    /// `!Ref name`: a parameter's default, a pseudo parameter, or a resource's stand-in.
    fn reference(&self, name: &str) -> String {
        let pseudo = match name {
            "AWS::Region" => Some(REGION),
            "AWS::AccountId" => Some(ACCOUNT_ID),
            "AWS::Partition" => Some("aws"),
            "AWS::URLSuffix" => Some("amazonaws.com"),
            "AWS::StackName" => Some("fund-account"),
            _ => None,
        };
        if let Some(value) = pseudo {
            return value.to_owned();
        }
        if let Some(parameter) = self.template["Parameters"].get(name) {
            return match &parameter["Default"] {
                Yaml::String(text) => text.clone(),
                // One the operator must give (a secret, say): any long enough value.
                Yaml::Null => "operator-supplied-value-0123456789abcdef".to_owned(),
                other => panic!("parameter {name} has a default of an unexpected kind: {other:?}"),
            };
        }
        self.stand_in(name).reference
    }

    /// `!GetAtt resource.attribute`.
    fn attribute(&self, resource: &str, attribute: &str) -> String {
        self.stand_in(resource)
            .attributes
            .get(attribute)
            .cloned()
            .unwrap_or_else(|| panic!("no emulated stand-in for {resource}.{attribute}"))
    }

    /// `!Sub text`: each `${Name}` and `${Resource.Attribute}` replaced.
    fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .unwrap_or_else(|| panic!("!Sub {text}: an unclosed ${{"));
            let name = &rest[start + 2..start + end];
            out.push_str(&match name.split_once('.') {
                Some((resource, attribute)) if !name.starts_with("AWS::") => self.attribute(resource, attribute),
                _ => self.reference(name),
            });
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn stand_in(&self, name: &str) -> StandIn {
        let kind = self.template["Resources"][name]["Type"].as_str();
        kind.and_then(|kind| self.stand_ins.get(kind))
            .cloned()
            .unwrap_or_else(|| panic!("no emulated stand-in for {name} ({kind:?})"))
    }

    /// Everything the process of `function` is given in Lambda, pointed at the emulator:
    /// Lambda's own variables (the memory from the template), test credentials, the
    /// emulator's endpoint, and `environment` (the template's, or a variation of it).
    pub fn process_environment(
        &self,
        function: Function,
        environment: &BTreeMap<String, String>,
    ) -> Vec<(String, String)> {
        let binary = function.binary();
        let mut env = bench::runtime_api::lambda_environment(
            &format!("fund-account-{binary}"),
            memory_mb(&self.template, binary),
            REGION,
        );
        // The role's credentials, as Lambda hands them over (the emulator accepts any).
        env.extend(
            [
                ("AWS_ACCESS_KEY_ID", "ASIATESTTESTTESTTEST"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_SESSION_TOKEN", "test"),
                ("AWS_ENDPOINT_URL", crate::moto_endpoint()),
            ]
            .map(|(name, value)| (name.to_owned(), value.to_owned())),
        );
        env.extend(environment.iter().map(|(name, value)| (name.clone(), value.clone())));
        env
    }
}

/// An environment from a map.
pub struct MapEnv(pub BTreeMap<String, String>);

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}
