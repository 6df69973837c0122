//! The call sites made at run time (`Provider::call_site`, `resilience::call_site`) have their
//! counters at 0 from the moment the recorder is on, or from their making if that is later,
//! as a `#[resilient]` method's: an `increase()` over a window that holds a restart then
//! counts their first call, which a series born at 1 would hide. Its own test binary: the
//! process's recorder is switched on once, between the sites made before and after it.

mod common;

use common::{TestError, get};

/// The value of the one sample of `family` for `(provider, method)` with `label`, if shown.
fn sample(text: &str, family: &str, (provider, method): (&str, &str), label: &str) -> Option<f64> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == family
                && s.labels.get("provider") == Some(provider)
                && s.labels.get("method") == Some(method)
                && (label.is_empty() || {
                    let (k, v) = label.split_once('=').unwrap();
                    s.labels.get(k) == Some(v)
                })
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .collect();
    assert!(
        found.len() <= 1,
        "{family} {provider} {method} {label}: {found:?}"
    );
    found.first().copied()
}

#[tokio::test]
async fn run_time_sites_have_their_counters_at_0_before_their_first_call() {
    // Before the switch: one bound to a provider made now, one by name (no provider made).
    let bound_before = resilience::provider("rts-bound").call_site("upload_before");
    let named_before = resilience::call_site("rts-named", "upload_before");
    let server = resilience::telemetry::serve("127.0.0.1:0".parse().unwrap())
        .await
        .expect("serve");
    // After it, each kind again, one of them without retry.
    let bound_after = resilience::provider("rts-bound").call_site_without_retry("upload_after");
    let named_after = resilience::call_site("rts-named", "upload_after");

    let text = get(&server.metrics_url()).await.1;
    let sites = [
        ("rts-bound", "upload_before"),
        ("rts-named", "upload_before"),
        ("rts-bound", "upload_after"),
        ("rts-named", "upload_after"),
    ];
    for site in sites {
        for outcome in ["success", "failure", "rejected"] {
            let label = format!("outcome={outcome}");
            let got = sample(&text, "resilience_calls_total", site, &label);
            assert_eq!(got, Some(0.0), "{site:?} {label}\n{text}");
        }
        for result in ["success", "transient", "throttled", "permanent", "timeout"] {
            let label = format!("result={result}");
            let got = sample(&text, "resilience_attempts_total", site, &label);
            assert_eq!(got, Some(0.0), "{site:?} {label}");
        }
        for family in [
            "resilience_retries_total",
            "resilience_calls_abandoned_total",
        ] {
            assert_eq!(
                sample(&text, family, site, ""),
                Some(0.0),
                "{site:?} {family}"
            );
        }
        // Counters only: the duration histograms come with the first call.
        assert!(
            !text.contains(&format!(
                "resilience_call_duration_seconds_count{{provider=\"{}\",method=\"{}\"",
                site.0, site.1
            )),
            "{site:?}"
        );
    }
    // And their providers' automatic transitions, the named one's made by name.
    for provider in ["rts-bound", "rts-named"] {
        for (from, to) in [
            ("closed", "open"),
            ("open", "half_open"),
            ("half_open", "closed"),
            ("half_open", "open"),
        ] {
            let line = format!(
                "resilience_circuit_transitions_total{{provider=\"{provider}\",from=\"{from}\",to=\"{to}\"}} 0\n"
            );
            assert!(text.contains(&line), "{line}");
        }
    }
    // Counting its series made no provider for the named sites.
    assert!(
        !resilience::providers()
            .iter()
            .any(|p| p.name() == "rts-named"),
        "a named site's series made its provider"
    );

    // Their calls count on those same series.
    for site in [bound_before, named_before, bound_after, named_after] {
        let got = site.execute(|| async { Ok::<_, TestError>(1) }).await;
        assert_eq!(got.unwrap(), 1);
    }
    let text = get(&server.metrics_url()).await.1;
    for site in sites {
        let got = sample(&text, "resilience_calls_total", site, "outcome=success");
        assert_eq!(got, Some(1.0), "{site:?}");
    }
}
