//! The shipped Grafana dashboard is valid JSON and queries only metrics the runtime emits; the
//! shipped alerting rules name only those metrics and their label values.

use resilience::telemetry::{
    ATTEMPTS_TOTAL, CALL_DURATION_SECONDS, CALLS_ABANDONED_TOTAL, CALLS_TOTAL, CIRCUIT_STATE,
    CIRCUIT_TRANSITIONS_TOTAL, RETRIES_TOTAL, RETRY_BUDGET_EXHAUSTED_TOTAL,
};

/// Every family the runtime emits.
const KNOWN: [&str; 8] = [
    CALLS_TOTAL,
    CALLS_ABANDONED_TOTAL,
    ATTEMPTS_TOTAL,
    RETRIES_TOTAL,
    RETRY_BUDGET_EXHAUSTED_TOTAL,
    CALL_DURATION_SECONDS,
    CIRCUIT_STATE,
    CIRCUIT_TRANSITIONS_TOTAL,
];

#[test]
fn dashboard_queries_known_metrics_with_the_provider_variable() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/resilience.json"
    ))
    .unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let known = KNOWN;
    let mut used = std::collections::BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            assert!(expr.contains("provider=~\"$provider\""), "{expr}");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("resilience_") {
                    let base = word
                        .trim_end_matches("_bucket")
                        .trim_end_matches("_count")
                        .trim_end_matches("_sum");
                    assert!(known.contains(&base), "unknown metric {word} in {expr}");
                    used.insert(base.to_string());
                }
            }
        }
    }
    assert_eq!(
        used.len(),
        known.len(),
        "every metric has a panel: {used:?}"
    );
    let vars: Vec<&str> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(vars.contains(&"provider") && vars.contains(&"job"));
}

/// Every `resilience_…` name in the rules is a metric we emit, every label they match or
/// group by is one it has, and every label value they match is one it takes: a typo in a rule
/// is an alert that never fires.
#[test]
fn alert_rules_name_known_metrics_and_label_values() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/alerts.yml"
    ))
    .unwrap();
    let known = KNOWN;
    let states = ["closed", "open", "half_open", "forced_open", "disabled"];
    let values: [(&str, &[&str]); 5] = [
        ("state", &states),
        ("from", &states),
        ("to", &states),
        ("outcome", &["success", "failure", "rejected"]),
        (
            "result",
            &["success", "transient", "throttled", "permanent", "timeout"],
        ),
    ];
    let mut alerts = 0;
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        alerts += usize::from(line.trim_start().starts_with("- alert: "));
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("resilience_") {
                assert!(known.contains(&word), "unknown metric {word} in: {line}");
            }
        }
        // Label names: matched inside `{…}` and grouped in `by (…)` / `on (…)`; not in the
        // annotations' `{{ … }}` templates.
        let query = !line.contains("{{");
        let labels = [
            "provider", "method", "outcome", "result", "state", "from", "to", "le", "job",
        ];
        let lists = ["{", "by (", "on ("]
            .into_iter()
            .filter(|_| query)
            .flat_map(|open| line.match_indices(open).map(move |(i, _)| i + open.len()));
        for start in lists {
            let inside = line[start..].split(['}', ')']).next().unwrap_or("");
            for item in inside.split(',') {
                let name = item.split(['=', '!']).next().unwrap_or("").trim();
                if !name.is_empty() {
                    assert!(labels.contains(&name), "no label {name:?}: {line}");
                }
            }
        }
        for (label, allowed) in values {
            for (i, _) in line.match_indices(&format!("{label}=")) {
                // `label="a"` or `label=~"a|b"`: each alternative must be a value it takes.
                let rest = line[i + label.len() + 1..].trim_start_matches('~');
                let quoted = rest.strip_prefix('"').and_then(|r| r.split('"').next());
                let quoted = quoted.unwrap_or_else(|| panic!("{label} not quoted in: {line}"));
                for v in quoted.split('|') {
                    assert!(
                        allowed.contains(&v),
                        "{label}={v:?} is no value of it: {line}"
                    );
                }
            }
        }
    }
    assert!(alerts >= 5, "{alerts} alerts");
}
