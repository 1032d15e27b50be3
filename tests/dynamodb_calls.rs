//! DynamoDB calls per operation, counted by an SDK interceptor on the real client (the
//! tour of every operation, `fund_account_tests::tour`), held against the floor
//! `docs/data-model.md` states. Counts are deterministic (unlike times), so they are
//! asserted.
//!
//! And the plain writes (a commit of one put or delete, `commits_as_plain_write`) held
//! against each role: IAM authorises a plain `PutItem` apart from the same action inside
//! a transaction (`dynamodb:EnclosingOperation`), so every plain write the tour makes
//! must be granted to its function, on its partition, and every plain-write grant in
//! `template.yaml` must be one the tour uses.

use std::collections::{BTreeMap, BTreeSet};

use fund_account::function_config::Function;
use fund_account_tests::deployed::{role_statements, template};
use fund_account_tests::tour::{self, Step};
use serde_yaml::Value as Yaml;

/// The tour, made once for both tests (about 4 s against moto).
async fn steps() -> &'static [Step] {
    static STEPS: tokio::sync::OnceCell<Vec<Step>> = tokio::sync::OnceCell::const_new();
    STEPS.get_or_init(tour::every_operation).await
}

fn calls(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(name, n)| ((*name).to_owned(), *n)).collect()
}

/// The calls each step makes, in the tour's order.
fn expected() -> Vec<(&'static str, BTreeMap<String, usize>)> {
    // A read, then one commit: most movements and the publisher's first delivery.
    let read_then_commit = calls(&[("TransactGetItems", 1), ("TransactWriteItems", 1)]);
    // The item and the counter (one read), the sequence (two items); the notification,
    // its claim (a plain put), the member's phone, its delete (plain).
    let with_sms = calls(&[
        ("DeleteItem", 1),
        ("PutItem", 1),
        ("Query", 1),
        ("TransactGetItems", 2),
        ("TransactWriteItems", 1),
    ]);
    vec![
        (
            "member sync (create)",
            calls(&[("Query", 1), ("TransactWriteItems", 1)]),
        ),
        // The try is recorded before the argon2id work, the password after it.
        (
            "activation (set the payment password)",
            calls(&[("PutItem", 2), ("Query", 1)]),
        ),
        ("send code", calls(&[("Query", 1), ("TransactWriteItems", 1)])),
        ("confirm code, wrong", calls(&[("PutItem", 1), ("Query", 1)])),
        ("confirm code, right", calls(&[("Query", 1), ("TransactWriteItems", 1)])),
        ("member sync (new phone)", calls(&[("PutItem", 1), ("Query", 1)])),
        ("get account", calls(&[("Query", 1)])),
        // The member's existence is read once per process (a `Query` of the profile's keys),
        // not checked in every commit: the profile would be one item all of a seller's
        // collections write.
        ("collection", calls(&[("Query", 1), ("TransactWriteItems", 1)])),
        (
            "collection, repeated",
            calls(&[("GetItem", 1), ("TransactWriteItems", 1)]),
        ),
        ("refund", calls(&[("GetItem", 1), ("TransactWriteItems", 1)])),
        // One page of the due index (a Query per shard), one commit per batch of a shard.
        (
            "settlement of one collection",
            calls(&[("Query", 8), ("TransactWriteItems", 1)]),
        ),
        (
            "settlement of three collections of one pending shard",
            calls(&[("Query", 8), ("TransactWriteItems", 1)]),
        ),
        ("withdrawal", read_then_commit.clone()),
        ("withdrawal, replayed", calls(&[("TransactGetItems", 1)])),
        (
            "withdrawal, wrong password",
            calls(&[("PutItem", 1), ("TransactGetItems", 1)]),
        ),
        (
            "withdrawal that resets the wrong-password count",
            read_then_commit.clone(),
        ),
        ("get withdrawal", calls(&[("GetItem", 1)])),
        ("list withdrawals", calls(&[("Query", 1)])),
        ("list transactions, one currency", calls(&[("Query", 1)])),
        ("list transactions, both currencies", calls(&[("Query", 2)])),
        ("withdrawal paid", calls(&[("GetItem", 1), ("TransactWriteItems", 1)])),
        ("withdrawal paid, reported again", calls(&[("GetItem", 1)])),
        (
            "withdrawal returned",
            calls(&[("GetItem", 1), ("TransactWriteItems", 1)]),
        ),
        ("publish withdrawal.created (and its SMS)", with_sms.clone()),
        ("publish withdrawal.paid (and its SMS)", with_sms),
        ("publish collection.created", read_then_commit.clone()),
        ("publish collection.settled", read_then_commit.clone()),
        // The sequence found, the notification gone.
        ("publish a redelivery", calls(&[("TransactGetItems", 2)])),
        // The current rate and its history entry.
        ("reference rate", read_then_commit.clone()),
        ("preview, same currency", calls(&[("Query", 1)])),
        // The member, then the book and both rates, then the quote.
        (
            "preview across currencies",
            calls(&[("Query", 1), ("TransactGetItems", 1), ("TransactWriteItems", 1)]),
        ),
        // The quote and book read with the rest.
        ("withdrawal across currencies", read_then_commit.clone()),
        (
            "quote",
            calls(&[("Query", 1), ("TransactGetItems", 1), ("TransactWriteItems", 1)]),
        ),
        // The quote, then key + balance + quote + book together; one commit.
        (
            "conversion",
            calls(&[("TransactGetItems", 2), ("TransactWriteItems", 1)]),
        ),
        ("list conversions", calls(&[("Query", 1)])),
        // 96 shards.
        ("platform balances", calls(&[("BatchGetItem", 1)])),
        // The snapshot before `from` (one read), a day of entries before it, the page; each
        // settled day it passes is snapshotted alone (a plain put).
        (
            "statement (first reader: snapshots its days)",
            calls(&[("PutItem", 2), ("Query", 3), ("TransactGetItems", 1)]),
        ),
        ("statement", calls(&[("Query", 1), ("TransactGetItems", 1)])),
        ("export requested", calls(&[("TransactWriteItems", 1)])),
        (
            "export written",
            calls(&[("PutItem", 2), ("Query", 3), ("TransactGetItems", 2)]),
        ),
        ("get export", calls(&[("TransactGetItems", 1)])),
        // Every member shard and every platform shard's entries are walked; the run's
        // record is put alone.
        (
            "reconciliation run (one member)",
            calls(&[("BatchGetItem", 2), ("PutItem", 1), ("Query", 126)]),
        ),
    ]
}

/// What a commit costs is its items: 2 write units each (of up to 1 KB).
fn transaction_items() -> Vec<(&'static str, Vec<usize>)> {
    vec![
        // The collection, its pending shard and entry, a clearing shard and its entry, the
        // outbox event.
        ("collection", vec![6]),
        // Per collection: itself, two entries, its event; the shard and the balance item.
        ("settlement of three collections of one pending shard", vec![3 * 4 + 2]),
        ("publish withdrawal.paid (and its SMS)", vec![2]),
        ("preview across currencies", vec![2]),
        // Key, conversion, quote, book; two balances and their entries; two FX shards
        // and their entries; the outbox event.
        ("conversion", vec![13]),
    ]
}

#[tokio::test]
async fn every_operation_makes_the_calls_the_data_model_states() {
    let steps = steps().await;
    let made: Vec<(&str, BTreeMap<String, usize>)> = steps.iter().map(|s| (s.label, s.usage.calls.clone())).collect();
    let mismatches: Vec<String> = expected()
        .into_iter()
        .zip(&made)
        .filter(|(want, got)| want.0 != got.0 || want.1 != got.1)
        .map(|(want, got)| format!("{}: expected {:?}, made {:?} ({})", want.0, want.1, got.1, got.0))
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(made.len(), expected().len(), "every step is stated");
    for (label, items) in transaction_items() {
        let step = steps.iter().find(|s| s.label == label).unwrap();
        assert_eq!(step.usage.transaction_items, items, "{label}'s items");
    }
    // The withdrawal, the balance and its two entries (the net amount, the fee); fee
    // revenue and clearing: two shards (or one, when both legs land on the same) and two
    // entries; the outbox event and the SMS notification.
    let paid = steps.iter().find(|s| s.label == "withdrawal paid").unwrap();
    assert!([9, 10].contains(&paid.usage.transaction_items[0]), "{paid:?}");
}

/// Whether IAM's `StringLike` `pattern` (`*` any run, `?` one character) matches `text`.
fn like(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.len() == text.len() && pattern.chars().zip(text.chars()).all(|(p, t)| p == '?' || p == t),
        Some((head, rest)) => {
            text.len() >= head.len()
                && like(head, &text[..head.len()])
                && (head.len()..=text.len()).any(|at| like(rest, &text[at..]))
        }
    }
}

const WRITE_ACTIONS: [&str; 3] = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"];

/// `binary`'s grants of plain single-item writes: (action, `LeadingKeys` pattern) from
/// every statement that allows a write action outside a transaction. Each such grant must
/// name its partitions.
fn plain_write_grants(template: &Yaml, binary: &str) -> BTreeSet<(String, String)> {
    let mut grants = BTreeSet::new();
    for statement in role_statements(template, binary) {
        let in_transaction =
            !statement["Condition"]["ForAnyValue:StringEquals"]["dynamodb:EnclosingOperation"].is_null();
        let actions: Vec<&str> = statement["Action"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(Yaml::as_str)
            .filter(|a| WRITE_ACTIONS.contains(a))
            .collect();
        if in_transaction || actions.is_empty() {
            continue;
        }
        let patterns: Vec<&str> = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{binary}: a plain write grant names its partitions"))
            .iter()
            .filter_map(Yaml::as_str)
            .collect();
        for action in actions {
            for pattern in &patterns {
                grants.insert((action.to_owned(), (*pattern).to_owned()));
            }
        }
    }
    grants
}

fn plain_writes_by_function(steps: &[Step]) -> BTreeMap<&'static str, BTreeSet<(String, String)>> {
    let mut by_function: BTreeMap<&str, BTreeSet<(String, String)>> = BTreeMap::new();
    for step in steps {
        by_function
            .entry(step.function)
            .or_default()
            .extend(step.usage.plain_writes.iter().cloned());
    }
    by_function
}

#[tokio::test]
async fn each_role_may_make_exactly_the_plain_writes_its_function_makes() {
    let template = template();
    let steps = steps().await;
    let made = plain_writes_by_function(steps);
    let mut problems = Vec::new();
    let mut used: BTreeSet<(&str, String, String)> = BTreeSet::new();
    for function in Function::all() {
        let binary = function.binary();
        let grants = plain_write_grants(&template, binary);
        for (action, partition) in made.get(binary).into_iter().flatten() {
            match grants.iter().find(|(a, p)| a == action && like(p, partition)) {
                Some((a, p)) => {
                    used.insert((binary, a.clone(), p.clone()));
                }
                None => problems.push(format!("{binary} makes a plain {action} on {partition}, not granted")),
            }
        }
        for (action, pattern) in grants {
            if !used.contains(&(binary, action.clone(), pattern.clone())) {
                problems.push(format!(
                    "{binary} is granted a plain {action} on {pattern}, which the tour never makes"
                ));
            }
        }
    }
    for function in made.keys() {
        assert!(
            Function::all().any(|f| f.binary() == *function),
            "{function} is a function"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn like_matches_as_iam_does() {
    assert!(like("MEMBER#*", "MEMBER#m-1"));
    assert!(like("MEMBER#*", "MEMBER#"));
    assert!(!like("MEMBER#*", "MEMBERS#3"));
    assert!(like("RECONCILIATION", "RECONCILIATION"));
    assert!(!like("RECONCILIATION", "RECONCILIATIONS"));
    assert!(like("NOTIFY#??", "NOTIFY#07"));
    assert!(like("*#LEDGER", "PLATFORM#fx#USD#03#LEDGER"));
}
