//! The layers of `shared/` (see `docs/architecture.md`), checked from the source: which
//! module may use which, no import cycle, and no AWS or HTTP crate below the edge.
//!
//! Values know nothing of storage; ports know values; operations know ports and values;
//! adapters implement ports and know nothing of operations; the edge (HTTP, Lambda, AWS
//! set-up) may use anything. A new module must be given its layer here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use fund_account_tests::project_root;

/// The layers, lowest first, and the layers each may use besides its own.
const LAYERS: &[(&str, &[&str], &[&str])] = &[
    (
        "values",
        &[
            "money",
            "clock",
            "ids",
            "phone",
            "password",
            "error",
            "member",
            "verification",
            "ledger",
            "records",
            "fees",
            "fx",
            "events",
        ],
        &[],
    ),
    ("ports", &["store", "sms", "alerts", "files", "event_bus"], &["values"]),
    (
        "operations",
        &[
            "app",
            "retry",
            "activation",
            "collection",
            "withdrawal",
            "exchange",
            "reconciliation",
            "statement",
            "export",
            "publisher",
        ],
        &["values", "ports"],
    ),
    ("adapters", &["adapters"], &["values", "ports"]),
    (
        "edge",
        &["http", "routes", "function_config", "lambda"],
        &["values", "ports", "operations", "adapters"],
    ),
];

/// Crates only the edge and the adapters may name: AWS, the Lambda runtime, SQLite.
const EDGE_CRATES: &[&str] = &[
    "aws_sdk_",
    "aws_config",
    "aws_smithy",
    "lambda_http",
    "lambda_runtime",
    "rusqlite",
    "serde_dynamo",
];

fn layer_of(module: &str) -> Option<&'static str> {
    LAYERS
        .iter()
        .find(|(_, modules, _)| modules.contains(&module))
        .map(|(name, _, _)| *name)
}

/// Every source file of `shared/src`, as (top-level module, text).
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, top: Option<&str>, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            if path.is_dir() {
                walk(&path, Some(top.unwrap_or(&name)), out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let module = top.map_or(name.clone(), str::to_owned);
                if module != "lib" {
                    out.push((module, std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&project_root().join("shared/src"), None, &mut out);
    assert!(out.len() > 20, "found only {} files", out.len());
    out
}

/// The code of a file without its comments and its unit tests.
fn code_of(text: &str) -> String {
    let without_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
    without_tests
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file names through `crate::`.
fn uses(code: &str) -> BTreeSet<String> {
    code.match_indices("crate::")
        .map(|(at, _)| {
            code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in sources() {
        let used = uses(&code_of(&text));
        graph
            .entry(module.clone())
            .or_default()
            .extend(used.into_iter().filter(|u| *u != module));
    }
    graph
}

#[test]
fn every_module_has_a_layer() {
    let lib = std::fs::read_to_string(project_root().join("shared/src/lib.rs")).unwrap();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';'))
        .collect();
    assert!(declared.len() > 20);
    let unplaced: Vec<&&str> = declared.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "give these modules a layer in LAYERS: {unplaced:?}"
    );
}

#[test]
fn each_module_uses_only_its_own_layer_and_the_ones_it_may() {
    let mut violations = Vec::new();
    for (module, used) in graph() {
        let layer = layer_of(&module).unwrap_or_else(|| panic!("{module} has no layer"));
        let (_, _, may) = LAYERS.iter().find(|(name, _, _)| *name == layer).unwrap();
        for other in used {
            let other_layer = layer_of(&other).unwrap_or_else(|| panic!("{other} has no layer"));
            if other_layer != layer && !may.contains(&other_layer) {
                violations.push(format!("{module} ({layer}) uses {other} ({other_layer})"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "dependencies must point down:\n{}",
        violations.join("\n")
    );
}

#[test]
fn no_module_imports_itself_back_through_another() {
    let graph = graph();
    // Depth-first search for a back edge; reports the first cycle found.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn only_the_edge_and_the_adapters_name_aws_lambda_or_sqlite() {
    let mut violations = Vec::new();
    for (module, text) in sources() {
        let layer = layer_of(&module).unwrap_or_else(|| panic!("{module} has no layer"));
        if matches!(layer, "edge" | "adapters") {
            continue;
        }
        let code = code_of(&text);
        for name in EDGE_CRATES {
            if code.contains(name) {
                violations.push(format!("{module} ({layer}) names {name}"));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_checks_see_what_they_check() {
    // The parser itself: a use inside a comment or a unit test does not count.
    let text =
        "use crate::money::Amount;\n// crate::store\nfn f() { crate::ledger::x() }\n#[cfg(test)]\nuse crate::adapters;";
    assert_eq!(
        uses(&code_of(text)),
        BTreeSet::from(["money".to_owned(), "ledger".to_owned()])
    );
    let graph = graph();
    assert!(graph["withdrawal"].contains("store"), "{:?}", graph["withdrawal"]);
    assert!(graph["lambda"].contains("routes"), "{:?}", graph["lambda"]);
}
