//! The alarms an on-call engineer needs are in `template.yaml`, wired to the operations
//! topic, and watch what the code emits: every function's errors and throttles, the
//! API's 5xx, the reconciliation's discrepancies and missing runs (its EMF metrics, named
//! by `fund_account::lambda::metrics`), and the scheduled function's failed events. Each
//! alarm links its entry in `docs/operations.md`, which must exist.
//!
//! And the security posture the checkov scan asks for (issue 15): the API's access log
//! carries who called what and never a body or the Authorization header; one rotated
//! customer managed key encrypts everything stored and each role uses it only through
//! the services it calls; every function's reserved concurrency follows from its
//! route's limits; every exception to the scan is inline, argued and true.

use std::collections::BTreeSet;

use fund_account::clock::Timestamp;
use fund_account::collection::Settled;
use fund_account::function_config::Function;
use fund_account::lambda::metrics;
use fund_account::reconciliation::{Report, RunOptions};
use fund_account_tests::deployed::{function_logical_id, function_resource, role_statements, template};
use fund_account_tests::project_root;
use serde_yaml::Value as Yaml;

/// The topic every alarm notifies.
const OPS_TOPIC: &str = "OpsTopic";

/// The argument of `!<tag> argument`, if `value` is one.
fn tagged<'a>(value: &'a Yaml, tag: &str) -> Option<&'a str> {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == tag => tagged.value.as_str(),
        _ => None,
    }
}

/// Every alarm of the template: its logical id and properties.
fn alarms(template: &Yaml) -> Vec<(&str, &Yaml)> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|(id, resource)| (id.as_str().expect("a logical id"), &resource["Properties"]))
        .collect()
}

/// The value of the alarm's dimension `name`.
fn dimension<'a>(alarm: &'a Yaml, name: &str) -> Option<&'a Yaml> {
    alarm["Dimensions"]
        .as_sequence()?
        .iter()
        .find(|d| d["Name"].as_str() == Some(name))
        .map(|d| &d["Value"])
}

fn on_metric<'a>(template: &'a Yaml, namespace: &str, metric: &str) -> Vec<(&'a str, &'a Yaml)> {
    alarms(template)
        .into_iter()
        .filter(|(_, alarm)| {
            alarm["Namespace"].as_str() == Some(namespace) && alarm["MetricName"].as_str() == Some(metric)
        })
        .collect()
}

fn notifies(actions: &Yaml, topic: &str) -> bool {
    actions
        .as_sequence()
        .is_some_and(|actions| actions.iter().any(|a| tagged(a, "Ref") == Some(topic)))
}

/// `docs/operations.md`'s headings, as the anchors a link names (GitHub's rule: lower
/// case, spaces to hyphens, other punctuation dropped).
fn runbook_anchors() -> BTreeSet<String> {
    let text = std::fs::read_to_string(project_root().join("docs/operations.md")).expect("docs/operations.md");
    text.lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| {
            heading
                .trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn every_alarm_notifies_the_ops_topic_and_links_its_runbook_entry() {
    let template = template();
    assert_eq!(
        template["Resources"][OPS_TOPIC]["Type"].as_str(),
        Some("AWS::SNS::Topic")
    );
    let anchors = runbook_anchors();
    let all = alarms(&template);
    assert!(!all.is_empty());
    for (id, alarm) in all {
        assert!(notifies(&alarm["AlarmActions"], OPS_TOPIC), "{id} notifies {OPS_TOPIC}");
        assert!(
            notifies(&alarm["OKActions"], OPS_TOPIC),
            "{id} notifies {OPS_TOPIC} when it clears"
        );
        let description = alarm["AlarmDescription"].as_str().unwrap_or_default();
        let anchor = description
            .split("docs/operations.md#")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| c.is_whitespace() || c == ')').next())
            .unwrap_or_else(|| panic!("{id}'s description links docs/operations.md#<entry>: {description}"));
        assert!(
            anchors.contains(anchor),
            "{id}: docs/operations.md has no #{anchor} ({anchors:?})"
        );
    }
}

/// Every function the template deploys — read from its resources, and every function the
/// code knows — has an alarm on its Lambda `Errors` and one on its `Throttles`.
#[test]
fn every_function_has_an_errors_and_a_throttles_alarm() {
    let template = template();
    let mut functions: BTreeSet<&str> = template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, _)| id.as_str().expect("a logical id"))
        .collect();
    functions.extend(Function::all().map(|f| function_logical_id(&template, f.binary())));
    assert_eq!(functions.len(), Function::all().count());
    for function in functions {
        for metric in ["Errors", "Throttles"] {
            let watching: Vec<&str> = on_metric(&template, "AWS/Lambda", metric)
                .into_iter()
                .filter(|(_, alarm)| dimension(alarm, "FunctionName").and_then(|v| tagged(v, "Ref")) == Some(function))
                .inspect(|(id, alarm)| {
                    assert_eq!(
                        alarm["ComparisonOperator"].as_str(),
                        Some("GreaterThanThreshold"),
                        "{id}"
                    );
                    assert_eq!(alarm["Threshold"].as_u64(), Some(0), "{id}: any one");
                })
                .map(|(id, _)| id)
                .collect();
            assert_eq!(watching.len(), 1, "{function}: one alarm on its {metric}: {watching:?}");
        }
    }
}

#[test]
fn the_http_api_has_a_5xx_alarm() {
    let template = template();
    let watching: Vec<_> = on_metric(&template, "AWS/ApiGateway", "5xx")
        .into_iter()
        .filter(|(_, alarm)| dimension(alarm, "ApiId").and_then(|v| tagged(v, "Ref")) == Some("HttpApi"))
        .collect();
    assert_eq!(watching.len(), 1, "{watching:?}");
}

/// A report as a run makes one, for the document the code prints.
fn report(options: RunOptions) -> Report {
    Report {
        run_id: "run_test".to_owned(),
        started_at: Timestamp::from_unix_millis(0),
        finished_at: Timestamp::from_unix_millis(1),
        accounts_checked: 0,
        accounts_busy: 0,
        settled: Settled::default(),
        openings_booked: 0,
        discrepancies: Vec::new(),
        duration_ms: 1,
        options,
    }
}

/// The alarms on the reconciliation's metrics name what the code prints: its namespace,
/// its metric names, its dimension and the values it gives it. Discrepancies alarm on
/// the full run's count; a missing run (no datapoint) is breaching, per mode.
#[test]
fn the_reconciliation_alarms_watch_the_metrics_the_code_emits() {
    let template = template();
    // Every metric and dimension value the code prints, from its own documents.
    let mut emitted_metrics = BTreeSet::new();
    let mut emitted_modes = BTreeSet::new();
    for options in [RunOptions::full(), RunOptions::settle_only()] {
        let document = metrics::reconciliation_emf(&report(options));
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], metrics::NAMESPACE);
        assert_eq!(directive["Dimensions"], serde_json::json!([[metrics::DIMENSION_MODE]]));
        for metric in directive["Metrics"].as_array().unwrap() {
            emitted_metrics.insert(metric["Name"].as_str().unwrap().to_owned());
        }
        emitted_modes.insert(document[metrics::DIMENSION_MODE].as_str().unwrap().to_owned());
    }

    let own: Vec<_> = alarms(&template)
        .into_iter()
        .filter(|(_, alarm)| alarm["Namespace"].as_str() == Some(metrics::NAMESPACE))
        .collect();
    assert!(own.len() >= 3, "{own:?}");
    for (id, alarm) in &own {
        let metric = alarm["MetricName"].as_str().unwrap_or_default();
        assert!(
            emitted_metrics.contains(metric),
            "{id}: {metric} is not one the code emits"
        );
        let dimensions = alarm["Dimensions"].as_sequence().expect("dimensions");
        assert_eq!(dimensions.len(), 1, "{id}: exactly the dimension set the code emits");
        let mode = dimension(alarm, metrics::DIMENSION_MODE).and_then(Yaml::as_str);
        assert!(
            mode.is_some_and(|mode| emitted_modes.contains(mode)),
            "{id}: {mode:?} is a mode the code emits"
        );
    }

    let discrepancies: Vec<_> = on_metric(&template, metrics::NAMESPACE, metrics::DISCREPANCIES)
        .into_iter()
        .filter(|(_, alarm)| {
            dimension(alarm, metrics::DIMENSION_MODE).and_then(Yaml::as_str) == Some(metrics::MODE_FULL)
                && alarm["ComparisonOperator"].as_str() == Some("GreaterThanThreshold")
                && alarm["Threshold"].as_u64() == Some(0)
        })
        .collect();
    assert_eq!(
        discrepancies.len(),
        1,
        "one alarm on any discrepancy: {discrepancies:?}"
    );

    for mode in [metrics::MODE_FULL, metrics::MODE_SETTLE] {
        let not_running: Vec<_> = on_metric(&template, metrics::NAMESPACE, metrics::RUNS)
            .into_iter()
            .filter(|(_, alarm)| {
                dimension(alarm, metrics::DIMENSION_MODE).and_then(Yaml::as_str) == Some(mode)
                    && alarm["TreatMissingData"].as_str() == Some("breaching")
                    && alarm["ComparisonOperator"].as_str() == Some("LessThanThreshold")
                    && alarm["Threshold"].as_u64() == Some(1)
            })
            .collect();
        assert_eq!(
            not_running.len(),
            1,
            "one alarm on {mode} runs missing (missing data breaching): {not_running:?}"
        );
    }
}

/// Every scheduled function (invoked asynchronously by EventBridge) sends the events it
/// failed to an SQS queue, and an alarm watches that queue.
#[test]
fn the_scheduled_function_sends_failed_events_to_an_alarmed_queue() {
    let template = template();
    let scheduled: Vec<Function> = Function::all()
        .filter(|f| {
            function_resource(&template, f.binary())["Properties"]["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
                .any(|(_, event)| event["Type"].as_str() == Some("Schedule"))
        })
        .collect();
    assert_eq!(scheduled, [Function::Reconcile, Function::PublishEvents]);
    for function in scheduled {
        let config = &function_resource(&template, function.binary())["Properties"]["EventInvokeConfig"];
        let on_failure = &config["DestinationConfig"]["OnFailure"];
        assert_eq!(on_failure["Type"].as_str(), Some("SQS"), "{function:?}: {config:?}");
        let queue = tagged(&on_failure["Destination"], "GetAtt")
            .and_then(|target| target.strip_suffix(".Arn"))
            .unwrap_or_else(|| panic!("{function:?}: the destination is a queue of the template"));
        assert_eq!(template["Resources"][queue]["Type"].as_str(), Some("AWS::SQS::Queue"));
        let depth = format!("{queue}.QueueName");
        let watching: Vec<_> = on_metric(&template, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
            .into_iter()
            .filter(|(_, alarm)| {
                dimension(alarm, "QueueName").and_then(|v| tagged(v, "GetAtt")) == Some(depth.as_str())
            })
            .collect();
        assert_eq!(watching.len(), 1, "an alarm on {queue}'s messages: {watching:?}");
    }
}

// ---------------------------------------------------------------- access logs, keys,
// concurrency and the security scan's exceptions (docs/operations.md)

/// What an access-log format may not carry: the request or response body, any header
/// (the Authorization header holds the bearer token or the SigV4 signature), or anything
/// but one `$context` variable per field. Empty when the format is clean.
fn access_log_violations(format: &str) -> Vec<String> {
    let fields: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(format) {
        Ok(fields) => fields,
        Err(e) => return vec![format!("not a JSON object: {e}")],
    };
    let mut violations = Vec::new();
    for (name, value) in &fields {
        let Some(value) = value.as_str() else {
            violations.push(format!("{name}: not a string"));
            continue;
        };
        let one_context_variable = value
            .strip_prefix("$context.")
            .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'));
        if !one_context_variable {
            violations.push(format!("{name}: {value} is not one $context variable"));
        }
        for text in [name.as_str(), value] {
            let lower = text.to_lowercase();
            for forbidden in ["body", "header", "authorization", "$input", "$request"] {
                if lower.contains(forbidden) {
                    violations.push(format!("{name}: {text} names {forbidden}"));
                }
            }
        }
    }
    violations
}

/// The variables the access log must carry: request id, route, status, latency, the
/// caller (the JWT `sub` on /v1, the SigV4 principal on /internal) and the source IP.
const ACCESS_LOG_REQUIRED: [&str; 7] = [
    "$context.requestId",
    "$context.routeKey",
    "$context.status",
    "$context.responseLatency",
    "$context.authorizer.claims.sub",
    "$context.identity.userArn",
    "$context.identity.sourceIp",
];

/// The logical id a `!GetAtt <Resource>.Arn` or `!Ref <Resource>` names.
fn named_resource(value: &Yaml) -> Option<&str> {
    tagged(value, "Ref").or_else(|| tagged(value, "GetAtt").and_then(|target| target.strip_suffix(".Arn")))
}

/// The customer managed key every encrypted resource of the template names.
const STACK_KEY: &str = "FundAccountKey";

#[test]
fn the_access_log_names_the_caller_and_never_the_body_or_the_authorization_header() {
    // The check itself bites: each of these would leak or break the log.
    for bad in [
        r#"{"request_id":"$context.requestId","auth":"$request.header.Authorization"}"#,
        r#"{"request_id":"$context.requestId","payload":"$input.body"}"#,
        r#"{"request_id":"$context.requestId","token":"$context.authorization"}"#,
        r#"{"request_id":"$context.requestId", "who":"member $context.authorizer.claims.sub"}"#,
        r#"request_id=$context.requestId"#,
    ] {
        assert!(!access_log_violations(bad).is_empty(), "{bad} is refused");
    }

    let template = template();
    let settings = &template["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"];
    let format = settings["Format"].as_str().expect("HttpApi has an access log format");
    let violations = access_log_violations(format);
    assert!(violations.is_empty(), "{violations:?}");

    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(format).unwrap();
    let variables: BTreeSet<&str> = fields.values().filter_map(serde_json::Value::as_str).collect();
    for required in ACCESS_LOG_REQUIRED {
        assert!(variables.contains(required), "the access log carries {required}");
    }

    // To a log group of the template, kept for a while, under the stack's key.
    let group = named_resource(&settings["DestinationArn"]).expect("the destination is a resource of the template");
    let group = &template["Resources"][group];
    assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"));
    assert!(
        group["Properties"]["RetentionInDays"]
            .as_u64()
            .is_some_and(|days| days >= 365),
        "the access log is kept a year"
    );
    assert_eq!(named_resource(&group["Properties"]["KmsKeyId"]), Some(STACK_KEY));

    // Documented: every field in docs/operations.md#access-logs.
    let docs = std::fs::read_to_string(project_root().join("docs/operations.md")).unwrap();
    let section = docs
        .split("\n## Access logs\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/operations.md has an Access logs section");
    for (name, variable) in &fields {
        let row = format!("| `{name}` | `{}` |", variable.as_str().unwrap());
        assert!(section.contains(&row), "docs/operations.md#access-logs documents {row}");
    }
}

fn strings(value: &Yaml) -> Vec<String> {
    match value {
        Yaml::Sequence(items) => items.iter().flat_map(strings).collect(),
        Yaml::Tagged(tagged) => tagged.value.as_str().map(str::to_owned).into_iter().collect(),
        other => other.as_str().map(str::to_owned).into_iter().collect(),
    }
}

/// One customer managed key, rotated, encrypts the table, the secret, every log group,
/// both topics, the failure queue and the functions' environments; its policy lets
/// CloudWatch alarms publish to the (encrypted) operations topic. Each role may use it
/// only through the services it calls: Decrypt through DynamoDB for all, through
/// Secrets Manager for the code-hashing functions, a data key through SNS and SQS only
/// for reconcile; never a direct KMS call.
#[test]
fn the_stacks_key_encrypts_everything_stored_and_roles_use_it_only_through_their_services() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let key = &template["Resources"][STACK_KEY];
    assert_eq!(key["Type"].as_str(), Some("AWS::KMS::Key"));
    assert_eq!(key["Properties"]["EnableKeyRotation"].as_bool(), Some(true));
    assert_eq!(
        key["DeletionPolicy"].as_str(),
        Some("Retain"),
        "kept with the retained table"
    );

    let mut encrypted = 0;
    for (id, resource) in resources {
        let id = id.as_str().unwrap();
        let properties = &resource["Properties"];
        let named_key = match resource["Type"].as_str().unwrap_or_default() {
            "AWS::DynamoDB::Table" => &properties["SSESpecification"]["KMSMasterKeyId"],
            "AWS::Logs::LogGroup" | "AWS::SecretsManager::Secret" => &properties["KmsKeyId"],
            "AWS::SNS::Topic" | "AWS::SQS::Queue" => &properties["KmsMasterKeyId"],
            _ => continue,
        };
        assert_eq!(named_resource(named_key), Some(STACK_KEY), "{id} is under {STACK_KEY}");
        encrypted += 1;
    }
    assert!(encrypted >= 20, "{encrypted}");
    assert_eq!(
        named_resource(&template["Globals"]["Function"]["KmsKeyArn"]),
        Some(STACK_KEY),
        "the functions' environments"
    );

    let key_statements = key["Properties"]["KeyPolicy"]["Statement"].as_sequence().unwrap();
    let for_alarms = key_statements
        .iter()
        .find(|s| s["Principal"]["Service"].as_str() == Some("cloudwatch.amazonaws.com"))
        .expect("the key policy lets CloudWatch alarms publish to the encrypted OpsTopic");
    let actions = strings(&for_alarms["Action"]);
    assert!(actions.contains(&"kms:Decrypt".to_owned()) && actions.contains(&"kms:GenerateDataKey*".to_owned()));
    assert_eq!(
        named_resource(&template["Resources"][OPS_TOPIC]["Properties"]["KmsMasterKeyId"]),
        Some(STACK_KEY)
    );
    for statement in key_statements {
        assert_ne!(statement["Principal"].as_str(), Some("*"), "no wildcard principal");
        assert_ne!(
            statement["Principal"]["AWS"].as_str(),
            Some("*"),
            "no wildcard principal"
        );
    }

    for function in Function::all() {
        let binary = function.binary();
        let mut services = BTreeSet::new();
        let mut generates_data_keys = false;
        for statement in role_statements(&template, binary) {
            let actions = strings(&statement["Action"]);
            if !actions.iter().any(|a| a.starts_with("kms:")) {
                continue;
            }
            assert!(
                actions
                    .iter()
                    .all(|a| a == "kms:Decrypt" || a == "kms:GenerateDataKey*"),
                "{binary}: {actions:?}"
            );
            generates_data_keys |= actions.iter().any(|a| a == "kms:GenerateDataKey*");
            assert_eq!(named_resource(&statement["Resource"]), Some(STACK_KEY), "{binary}");
            let via = strings(&statement["Condition"]["StringEquals"]["kms:ViaService"]);
            assert!(!via.is_empty(), "{binary}: KMS only through a service");
            services.extend(via.iter().map(|s| s.split('.').next().unwrap().to_owned()));
        }
        let mut expected = BTreeSet::from(["dynamodb".to_owned()]);
        if function.hashes_codes() {
            expected.insert("secretsmanager".to_owned());
        }
        if function == Function::Reconcile {
            expected.extend(["sns".to_owned(), "sqs".to_owned()]);
        }
        // Its failure queue is under the key.
        if matches!(function, Function::PublishEvents | Function::ExportStatement) {
            expected.insert("sqs".to_owned());
        }
        // The export bucket is under the key.
        if function.uses_export_files() {
            expected.insert("s3".to_owned());
        }
        assert_eq!(services, expected, "{binary}: the services it may use the key through");
        assert_eq!(
            generates_data_keys,
            matches!(
                function,
                Function::Reconcile | Function::PublishEvents | Function::ExportStatement
            ),
            "{binary}"
        );
    }
}

/// Every function has reserved concurrency (docs/operations.md#reserved-concurrency):
/// an HTTP function never more than its route's burst (API Gateway admits no more at
/// once) and enough for its route's steady rate at 100 ms a request; all of them leave
/// the quota the operations guide asks of the account its 100 unreserved.
#[test]
fn every_function_has_reserved_concurrency_from_its_routes_limits() {
    use fund_account::routes::Route;
    let template = template();
    let api = &template["Resources"]["HttpApi"]["Properties"];
    let limits = |route: Route| {
        let key = format!("{} {}", route.method(), route.path());
        let settings = match api["RouteSettings"].get(key.as_str()) {
            Some(own) => own,
            None => &api["DefaultRouteSettings"],
        };
        (
            settings["ThrottlingRateLimit"].as_u64().unwrap(),
            settings["ThrottlingBurstLimit"].as_u64().unwrap(),
        )
    };
    let mut total = 0;
    for function in Function::all() {
        let binary = function.binary();
        let reserved = function_resource(&template, binary)["Properties"]["ReservedConcurrentExecutions"]
            .as_u64()
            .unwrap_or_else(|| panic!("{binary} has reserved concurrency"));
        assert!(reserved > 0, "{binary}");
        if let Function::Http(route) = function {
            let (rate, burst) = limits(route);
            assert!(reserved <= burst, "{binary}: {reserved} > its route's burst {burst}");
            assert!(
                reserved * 10 >= rate,
                "{binary}: {reserved} is short of {rate}/s at 100 ms"
            );
        }
        total += reserved;
    }
    // The quota the account must have: above Lambda's default 1,000 since the
    // marketplace's collections reserve for a big seller's sale day.
    let docs = std::fs::read_to_string(project_root().join("docs/operations.md")).unwrap();
    let quota: u64 = docs
        .split_once("(quota: **")
        .and_then(|(_, rest)| rest.split_once("**"))
        .map(|(quota, _)| quota.replace(',', "").parse().unwrap())
        .expect("docs/operations.md#reserved-concurrency names the quota the account needs");
    assert!(
        total + 100 <= quota,
        "{total} reserved leaves the documented quota {quota} less than Lambda's 100 unreserved"
    );
    assert!(
        docs.contains(&format!("= **{total}**")),
        "docs/operations.md#reserved-concurrency gives the total, {total}"
    );
}

/// The security scan's exceptions are inline, each with its reason, and true: the
/// check-template script skips nothing on the command line; a function excused from a
/// dead-letter queue as synchronous has only HttpApi events, and any other function
/// (invoked asynchronously) has an on-failure destination.
#[test]
fn every_checkov_exception_is_inline_argued_and_true() {
    let script = std::fs::read_to_string(project_root().join("infra/scripts/check-template.sh")).unwrap();
    let run = script
        .lines()
        .find(|line| line.contains("bin/checkov ") && !line.trim_start().starts_with('#'))
        .expect("check-template.sh runs checkov");
    assert!(
        run.contains("-f template.yaml") && run.contains("--framework cloudformation"),
        "{run}"
    );
    for blanket in ["--skip-check", " -s", "--soft-fail", "--baseline", "--external-checks"] {
        assert!(
            !run.contains(blanket),
            "no blanket {blanket} on the command line: {run}"
        );
    }

    let template = template();
    let mut skips = 0;
    for (id, resource) in template["Resources"].as_mapping().unwrap() {
        let id = id.as_str().unwrap();
        for skip in resource["Metadata"]["checkov"]["skip"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let check = skip["id"].as_str().unwrap_or_default();
            let reason = skip["comment"].as_str().unwrap_or_default();
            assert!(check.starts_with("CKV"), "{id}: {skip:?}");
            assert!(reason.len() >= 40, "{id}: {check} is argued in a sentence: {reason:?}");
            skips += 1;
        }
    }
    assert!(skips > 0);

    for function in Function::all() {
        let binary = function.binary();
        let resource = function_resource(&template, binary);
        let events: Vec<&str> = resource["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(_, event)| event["Type"].as_str())
            .collect();
        let synchronous = events.iter().all(|kind| *kind == "HttpApi");
        let dlq_reason = resource["Metadata"]["checkov"]["skip"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|skip| skip["id"].as_str() == Some("CKV_AWS_116"))
            .and_then(|skip| skip["comment"].as_str())
            .unwrap_or_default();
        if synchronous {
            assert!(dlq_reason.contains("synchronously"), "{binary}: {dlq_reason}");
        } else {
            // Invoked by EventBridge: the function's own on-failure destination; by a
            // stream's event source mapping: the mapping's.
            let invoke_config = &resource["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
            let streams_have_theirs = resource["Properties"]["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
                .filter(|(_, event)| event["Type"].as_str() == Some("DynamoDB"))
                .all(|(_, event)| !event["Properties"]["DestinationConfig"]["OnFailure"]["Destination"].is_null());
            let has_stream = events.contains(&"DynamoDB");
            assert!(
                !invoke_config["Destination"].is_null() || (has_stream && streams_have_theirs),
                "{binary} is invoked asynchronously ({events:?}): an on-failure destination"
            );
            assert!(!dlq_reason.contains("synchronously"), "{binary}: {dlq_reason}");
        }
    }
}
