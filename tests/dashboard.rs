//! The shipped Grafana dashboard is valid JSON and queries only metrics the runtime emits.

use resilience::telemetry::{
    ATTEMPTS_TOTAL, CALL_DURATION_SECONDS, CALLS_TOTAL, CIRCUIT_STATE, CIRCUIT_TRANSITIONS_TOTAL,
    RETRIES_TOTAL, RETRY_BUDGET_EXHAUSTED_TOTAL,
};

#[test]
fn dashboard_queries_known_metrics_with_the_provider_variable() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/resilience.json"
    ))
    .unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let known = [
        CALLS_TOTAL,
        ATTEMPTS_TOTAL,
        RETRIES_TOTAL,
        RETRY_BUDGET_EXHAUSTED_TOTAL,
        CALL_DURATION_SECONDS,
        CIRCUIT_STATE,
        CIRCUIT_TRANSITIONS_TOTAL,
    ];
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
    assert!(vars.contains(&"provider"));
}
