//! The shipped Grafana dashboard is valid JSON and queries only metrics the runtime emits; the
//! shipped alerting rules name only those metrics and their label values.

mod hermetic;

use resilience::telemetry::{
    ATTEMPT_DURATION_SECONDS, ATTEMPTS_TOTAL, CALL_DURATION_SECONDS, CALLS_ABANDONED_TOTAL,
    CALLS_TOTAL, CIRCUIT_STATE, CIRCUIT_TRANSITIONS_TOTAL, RETRIES_TOTAL,
    RETRY_BUDGET_EXHAUSTED_TOTAL,
};

/// Every family the runtime emits.
const KNOWN: [&str; 9] = [
    CALLS_TOTAL,
    CALLS_ABANDONED_TOTAL,
    ATTEMPTS_TOTAL,
    RETRIES_TOTAL,
    RETRY_BUDGET_EXHAUSTED_TOTAL,
    CALL_DURATION_SECONDS,
    ATTEMPT_DURATION_SECONDS,
    CIRCUIT_STATE,
    CIRCUIT_TRANSITIONS_TOTAL,
];

/// The labels a family's series carry (besides Prometheus's own `job` and `instance`), and the
/// values the enumerated ones take.
fn labels_of(metric: &str) -> Option<&'static [&'static str]> {
    Some(match metric {
        m if m == CALLS_TOTAL => &["provider", "method", "outcome"],
        m if m == ATTEMPTS_TOTAL => &["provider", "method", "result"],
        m if m == RETRIES_TOTAL || m == CALLS_ABANDONED_TOTAL => &["provider", "method"],
        m if m == RETRY_BUDGET_EXHAUSTED_TOTAL => &["provider"],
        m if m == format!("{CALL_DURATION_SECONDS}_bucket") => {
            &["provider", "method", "outcome", "le"]
        }
        m if m == format!("{CALL_DURATION_SECONDS}_sum")
            || m == format!("{CALL_DURATION_SECONDS}_count") =>
        {
            &["provider", "method", "outcome"]
        }
        m if m == format!("{ATTEMPT_DURATION_SECONDS}_bucket") => {
            &["provider", "method", "result", "le"]
        }
        m if m == format!("{ATTEMPT_DURATION_SECONDS}_sum")
            || m == format!("{ATTEMPT_DURATION_SECONDS}_count") =>
        {
            &["provider", "method", "result"]
        }
        m if m == CIRCUIT_STATE => &["provider", "state"],
        m if m == CIRCUIT_TRANSITIONS_TOTAL => &["provider", "from", "to"],
        _ => return None,
    })
}

/// The values `label` takes in `metric` (a family, or one of a histogram's series).
fn values_of(metric: &str, label: &str) -> Option<&'static [&'static str]> {
    const STATES: &[&str] = &["closed", "open", "half_open", "forced_open", "disabled"];
    Some(match label {
        "state" | "from" | "to" => STATES,
        "outcome" => &["success", "failure", "rejected"],
        // The error classes share one series there (see the README's Metrics).
        "result" if metric.starts_with(ATTEMPT_DURATION_SECONDS) => {
            &["success", "error", "timeout"]
        }
        "result" => &["success", "transient", "throttled", "permanent", "timeout"],
        _ => return None,
    })
}

/// Every `resilience_…{…}` selector in `text`: the series exists under that name (a histogram's
/// suffixes only on the histogram), each matcher names a label of that family, and each value
/// of an enumerated label (`=`, `!=`, or each alternative of `=~`/`!~`) is one it takes.
/// Returns the selectors' matcher lists.
fn check_selectors(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in text.match_indices("resilience_") {
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let Some(labels) = labels_of(&name) else {
            panic!("no series {name} in: {}", &text[i..text.len().min(i + 120)]);
        };
        let Some(body) = text[i + name.len()..].strip_prefix('{') else {
            continue;
        };
        let body = &body[..body.find('}').expect("selector closed")];
        for matcher in body.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            let at = matcher
                .find(['=', '!'])
                .unwrap_or_else(|| panic!("matcher {matcher:?}"));
            let label = matcher[..at].trim();
            assert!(
                labels.contains(&label) || label == "job" || label == "instance",
                "{name} has no label {label:?}: {body}"
            );
            let value = matcher[at..].trim_start_matches(['=', '!', '~']).trim();
            let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
            let value = value.unwrap_or_else(|| panic!("{label} not quoted in: {body}"));
            if let Some(allowed) = values_of(&name, label) {
                for v in value.split('|') {
                    assert!(
                        allowed.contains(&v),
                        "{label}={v:?} is no value of it: {body}"
                    );
                }
            }
        }
        found.push(body.to_string());
    }
    found
}

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
    let mut ids = std::collections::BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "duplicate id: {panel}"
        );
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        let legends: Vec<&str> = panel["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["legendFormat"].as_str())
            .collect();
        // "Fields with name" matches a series' whole display name: a legend with `{{…}}` in it
        // never equals a bare word, and the override silently does nothing.
        for o in panel["fieldConfig"]["overrides"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if o["matcher"]["id"] == "byName" {
                let name = o["matcher"]["options"].as_str().unwrap();
                assert!(
                    legends.contains(&name),
                    "override {name:?} names no series of {legends:?}"
                );
            }
        }
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            // Every selector, not just one of them: a ratio whose denominator lacks `$job`
            // sums over every job.
            for selector in check_selectors(expr) {
                assert!(selector.contains("provider=~\"$provider\""), "{expr}");
                assert!(selector.contains("job=~\"$job\""), "{expr}");
            }
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
    assert!(
        dash["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "datasource"
                && v["type"] == "datasource"
                && v["query"] == "prometheus"),
        "a Prometheus `datasource` variable"
    );
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
    let rules: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    check_selectors(&rules);
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

/// The rule for a breaker that keeps opening counts its openings of every kind together: one
/// breaker's openings are two series (`from="closed"` and `from="half_open"`, a failed probe),
/// and a `max` over them saw an opening followed by a failed probe as 1, not 2, so the rule
/// waited for a second failed probe: it fired one breaker timeout later (with a 5-minute
/// timeout, 15 minutes after the opening instead of 10, by `promtool test rules`; above 5
/// minutes neither fires). The `from` label is summed away before the `max` over replicas.
#[test]
fn the_not_closed_rule_sums_openings_over_from() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/alerts.yml"
    ))
    .unwrap();
    let rule = text
        .split("- alert: ")
        .find(|r| r.starts_with("ResilienceBreakerNotClosed"))
        .expect("the rule is there");
    let expr: String = rule
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    let at = expr
        .find("increase(resilience_circuit_transitions_total{to=\"open\"}")
        .expect("the rule counts openings");
    let before = expr[..at].trim_end();
    assert!(
        before.ends_with("sum without (from) (")
            || before.ends_with("sum by (job, provider, instance) ("),
        "openings are not summed over `from` before the max: {expr}"
    );
}

/// A provider refusing every call as permanent (an expired API key) opens no breaker and is no
/// fault of the provider's: one rule must look at failed calls whatever their class, or such an
/// outage fires nothing.
#[test]
fn a_rule_fires_on_failed_calls_whatever_their_class() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/alerts.yml"
    ))
    .unwrap();
    let exprs: Vec<String> = text
        .split("- alert: ")
        .skip(1)
        .map(|rule| {
            rule.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert!(
        exprs.iter().any(|e| {
            e.contains("resilience_calls_total{outcome=\"failure\"}") && e.contains("severity: ")
        }),
        "no rule on resilience_calls_total{{outcome=\"failure\"}}"
    );
}

/// The expression of each rule, comments left out, by alert name.
fn rules() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/alerts.yml"
    ))
    .unwrap();
    text.split("- alert: ")
        .skip(1)
        .map(|rule| {
            let name = rule.lines().next().unwrap_or("").trim().to_owned();
            let body = rule
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect::<Vec<_>>()
                .join(" ");
            (name, body)
        })
        .collect()
}

/// A breaker that opens on noise and closes again between openings refuses a share of the
/// calls while the rule on a breaker that has not closed resets its `for` at each closing (a
/// trial: 28% of calls refused, and no page): a rule must page on the refused share itself.
#[test]
fn a_rule_pages_on_the_share_of_calls_a_breaker_refuses() {
    let found = rules().into_iter().any(|(_, body)| {
        body.contains("resilience_calls_total{outcome=\"rejected\"}")
            && body.contains("/ sum by (job, provider) (rate(resilience_calls_total[5m]))")
            && body.contains("severity: page")
    });
    assert!(found, "no paging rule on the share of refused calls");
}

/// The budget's rule is a share of the retries asked for, with a floor: one refused retry in a
/// quiet hour fired the rule that alerted on any refusal (`increase(…) > 0`).
#[test]
fn the_budget_rule_needs_a_share_of_refused_retries() {
    let (_, body) = rules()
        .into_iter()
        .find(|(name, _)| name == "ResilienceRetryBudgetExhausted")
        .expect("the rule is there");
    assert!(
        body.contains("rate(resilience_retries_total[10m])"),
        "not a share of the retries asked for: {body}"
    );
    assert!(
        body.contains("increase(resilience_retry_budget_exhausted_total[10m])) > 5"),
        "no floor on refusals: {body}"
    );
    assert!(
        !body.contains("[10m])) > 0 "),
        "any refusal fires it: {body}"
    );
}

/// The variables list providers from a family every `#[resilient]` method has from the
/// recorder's start: the state gauge comes with a provider, at its first call, so a provider
/// not called yet was missing from the drop-down.
#[test]
fn dashboard_variables_list_providers_before_their_first_call() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/resilience.json"
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vars = json["templating"]["list"].as_array().unwrap();
    for name in ["job", "provider"] {
        let var = vars
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"));
        for field in [&var["definition"], &var["query"]["query"]] {
            let q = field.as_str().unwrap();
            assert!(
                q.starts_with("label_values(resilience_calls_total"),
                "{name}: {q}"
            );
        }
    }
}
