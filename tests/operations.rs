//! The alarms an on-call engineer needs are in `template.yaml`, wired to the operations
//! topic, and watch what the code emits: every function's errors and throttles, the
//! API's 5xx, the reconciliation's discrepancies and missing runs (its EMF metrics, named
//! by `fund_account::lambda::metrics`), and the scheduled function's failed events. Each
//! alarm links its entry in `docs/operations.md`, which must exist.

use std::collections::BTreeSet;

use fund_account::clock::Timestamp;
use fund_account::collection::Settled;
use fund_account::function_config::Function;
use fund_account::lambda::metrics;
use fund_account::reconciliation::{Report, RunOptions};
use fund_account_tests::deployed::{function_logical_id, function_resource, template};
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
    assert_eq!(scheduled, [Function::Reconcile]);
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
