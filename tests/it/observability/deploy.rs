//! The Grafana dashboard and the Prometheus alert rules query only metrics
//! the code defines (`make check-deploy` runs promtool on the rules).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The workspace root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Every `hookline_*` metric name in `text`, histogram suffixes stripped.
fn metric_names(text: &str) -> BTreeSet<String> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find("hookline_") {
        let start = from + offset;
        let end = text[start..]
            .find(|c: char| !is_name_char(c))
            .map_or(text.len(), |n| start + n);
        let standalone = !text[..start].ends_with(is_name_char);
        if standalone {
            let name = &text[start..end];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            names.insert(base.to_string());
        }
        from = end;
    }
    names
}

/// Every query string of a Grafana dashboard (`expr`, and `query` or
/// `definition` of template variables).
fn dashboard_queries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("expr" | "query" | "definition", Value::String(text)) => {
                        out.push(text.clone())
                    }
                    _ => dashboard_queries(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| dashboard_queries(i, out)),
        _ => {}
    }
}

/// Every `expr:` of a Prometheus rules file, inline or as a `|`/`>` block.
fn rule_expressions(yaml: &str) -> Vec<String> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let content = line.trim_start().trim_start_matches("- ");
        i += 1;
        let Some(rest) = content.strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if !(rest.starts_with('|') || rest.starts_with('>')) {
            out.push(rest.to_string());
            continue;
        }
        let mut block = String::new();
        while i < lines.len() && (lines[i].trim().is_empty() || indent(lines[i]) > indent(line)) {
            block.push_str(lines[i]);
            block.push('\n');
            i += 1;
        }
        out.push(block);
    }
    out
}

/// The text of every Rust source file under `dir`.
fn sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).expect("readable source"));
        }
    }
}

#[test]
fn the_dashboard_and_alerts_query_only_metrics_the_code_defines() {
    let root = workspace();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/grafana/hookline.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    let alerts =
        std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml")).expect("alerts");
    let expressions = rule_expressions(&alerts);
    assert!(!queries.is_empty() && !expressions.is_empty());

    let mut source = String::new();
    sources(&root.join("crates"), &mut source);
    for (file, texts) in [("hookline.json", &queries), ("alerts.yml", &expressions)] {
        let names: BTreeSet<String> = texts.iter().flat_map(|t| metric_names(t)).collect();
        assert!(
            names.contains("hookline_deliveries_total"),
            "{file} queries the delivery counter: {names:?}"
        );
        for name in names {
            assert!(
                source.contains(&format!("\"{name}\"")),
                "{file} queries {name}, which no code under crates/ defines"
            );
        }
    }
}

#[test]
fn metric_names_are_found_with_their_histogram_suffixes_stripped() {
    let names = metric_names(
        "histogram_quantile(0.9, rate(hookline_a_seconds_bucket[5m])) / xhookline_no + hookline_b_total{x=\"hookline.c\"}",
    );
    let expected: BTreeSet<String> = ["hookline_a_seconds", "hookline_b_total"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, expected);
    let yaml = "rules:\n  - alert: A\n    expr: up == 0\n  - alert: B\n    expr: |\n      sum(x)\n        / y\n    for: 5m\n";
    assert_eq!(
        rule_expressions(yaml),
        vec!["up == 0", "      sum(x)\n        / y\n"]
    );
}
