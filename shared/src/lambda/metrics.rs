//! The reconciliation's run result as CloudWatch metrics, in Embedded Metric Format: one
//! JSON line on stdout that CloudWatch Logs turns into metrics, with no `PutMetricData`
//! call (and no CloudWatch client or IAM grant in the function). The alarms in
//! `template.yaml` watch these names; a test reads them from here, so the two cannot drift.
//!
//! Printed at the Lambda edge ([`super::run_reconciliation`]), never by the domain.

use serde_json::{json, Map, Value};

use crate::reconciliation::Report;

/// The CloudWatch namespace of the service's own metrics.
pub const NAMESPACE: &str = "FundAccount";
/// The one dimension: which kind of run (`MODE_FULL` or `MODE_SETTLE`).
pub const DIMENSION_MODE: &str = "Mode";
/// A run that settled and then checked the accounts.
pub const MODE_FULL: &str = "full";
/// A run that only settled matured collections.
pub const MODE_SETTLE: &str = "settle";

/// 1 for each run that completed (failed runs publish nothing): the "not running" alarms
/// treat a missing datapoint as breaching.
pub const RUNS: &str = "ReconciliationRuns";
/// Discrepancies the run found (0 when the books balance, and in settle-only runs).
pub const DISCREPANCIES: &str = "ReconciliationDiscrepancies";
/// Accounts the run checked.
pub const MEMBERS_CHECKED: &str = "ReconciliationMembersChecked";
/// Accounts that kept changing while read, left for the next run.
pub const MEMBERS_BUSY: &str = "ReconciliationMembersBusy";
/// Collections the run settled.
pub const COLLECTIONS_SETTLED: &str = "ReconciliationCollectionsSettled";

/// The run's mode, as the `Mode` dimension names it.
pub fn mode(report: &Report) -> &'static str {
    if report.options.verify {
        MODE_FULL
    } else {
        MODE_SETTLE
    }
}

/// The EMF document of one completed run: the metric values at top level, and the
/// `_aws.CloudWatchMetrics` directive naming each of them, stamped with the run's end.
pub fn reconciliation_emf(report: &Report) -> Value {
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let values: [(&str, u64, &str); 5] = [
        (RUNS, 1, "Count"),
        (DISCREPANCIES, count(report.discrepancies.len()), "Count"),
        (MEMBERS_CHECKED, report.accounts_checked, "Count"),
        (MEMBERS_BUSY, report.accounts_busy, "Count"),
        (COLLECTIONS_SETTLED, report.settled.count, "Count"),
    ];
    let mut document = Map::new();
    document.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": report.finished_at.unix_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DIMENSION_MODE]],
                "Metrics": values
                    .iter()
                    .map(|(name, _, unit)| json!({ "Name": name, "Unit": unit }))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    document.insert(DIMENSION_MODE.to_owned(), json!(mode(report)));
    for (name, value, _) in values {
        document.insert(name.to_owned(), json!(value));
    }
    // Searchable beside the metrics in CloudWatch Logs; not a dimension (unbounded values).
    document.insert("run_id".to_owned(), json!(report.run_id));
    Value::Object(document)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::collection::Settled;
    use crate::reconciliation::{Discrepancy, RunOptions};

    fn report(options: RunOptions, discrepancies: usize) -> Report {
        Report {
            run_id: "run_01".to_owned(),
            started_at: Timestamp::from_unix_millis(1_767_225_600_000),
            finished_at: Timestamp::from_unix_millis(1_767_225_601_234),
            accounts_checked: 42,
            accounts_busy: 2,
            settled: Settled {
                count: 3,
                ..Settled::default()
            },
            openings_booked: 0,
            discrepancies: (0..discrepancies)
                .map(|i| Discrepancy {
                    member_id: Some(format!("m{i}")),
                    currency: None,
                    kind: "balance_mismatch",
                    detail: String::new(),
                })
                .collect(),
            duration_ms: 1234,
            options,
        }
    }

    /// The shape CloudWatch requires: one directive in the namespace, whose dimension set
    /// and metrics each name a member at the top level (a number for a metric, a string
    /// for a dimension); a millisecond timestamp.
    #[test]
    fn the_emf_document_names_each_metric_it_carries_at_top_level() {
        let document = reconciliation_emf(&report(RunOptions::full(), 2));
        let aws = &document["_aws"];
        assert_eq!(aws["Timestamp"], 1_767_225_601_234_i64);
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        let directive = &directives[0];
        assert_eq!(directive["Namespace"], NAMESPACE);

        let dimension_sets = directive["Dimensions"].as_array().unwrap();
        assert_eq!(dimension_sets.len(), 1);
        for dimension in dimension_sets[0].as_array().unwrap() {
            let name = dimension.as_str().unwrap();
            assert!(document[name].is_string(), "dimension {name} at top level");
        }
        assert_eq!(document[DIMENSION_MODE], MODE_FULL);

        let named: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|metric| {
                assert_eq!(metric["Unit"], "Count");
                metric["Name"].as_str().unwrap()
            })
            .collect();
        assert_eq!(
            named,
            [RUNS, DISCREPANCIES, MEMBERS_CHECKED, MEMBERS_BUSY, COLLECTIONS_SETTLED]
        );
        for name in &named {
            assert!(document[*name].is_u64(), "metric {name} at top level: {document}");
        }
        // Nothing at top level but the metadata, the dimension, the metrics and the run id.
        let top: Vec<&String> = document.as_object().unwrap().keys().collect();
        assert_eq!(top.len(), 1 + 1 + named.len() + 1, "{top:?}");
    }

    #[test]
    fn the_emf_values_are_the_runs_results() {
        let document = reconciliation_emf(&report(RunOptions::full(), 2));
        assert_eq!(
            [
                &document[RUNS],
                &document[DISCREPANCIES],
                &document[MEMBERS_CHECKED],
                &document[MEMBERS_BUSY],
                &document[COLLECTIONS_SETTLED],
            ],
            [&json!(1), &json!(2), &json!(42), &json!(2), &json!(3)]
        );
        assert_eq!(document["run_id"], "run_01");
        let settle = reconciliation_emf(&report(RunOptions::settle_only(), 0));
        assert_eq!(settle[DIMENSION_MODE], MODE_SETTLE);
        assert_eq!(settle[DISCREPANCIES], 0);
        // One line, as CloudWatch Logs reads EMF.
        assert!(!document.to_string().contains('\n'));
    }
}
