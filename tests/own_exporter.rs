//! With an exporter of the user's own, installed before `use_installed_recorder()`: every
//! family goes into it under its documented name and type, the duration as a histogram with
//! `DURATION_BUCKETS` (the dashboard's quantiles read its `_bucket` series), and `serve()` says
//! the process already has a recorder. Its own test binary: one process, one global recorder.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use resilience::resilient;

#[resilient(provider = "own-exporter")]
async fn upload(fail: bool) -> Result<u32, std::io::Error> {
    if fail {
        Err(std::io::ErrorKind::ConnectionReset.into())
    } else {
        Ok(7)
    }
}

#[tokio::test(start_paused = true)]
async fn our_metrics_go_into_the_users_exporter() {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("resilience_call_duration_seconds".into()),
            &resilience::telemetry::DURATION_BUCKETS,
        )
        .unwrap()
        .install_recorder()
        .unwrap();
    resilience::telemetry::use_installed_recorder();
    assert_eq!(upload(false).await.unwrap(), 7);
    assert!(upload(true).await.is_err(), "three failed attempts");
    let text = handle.render();
    for family in [
        "# TYPE resilience_calls_total counter",
        "# TYPE resilience_attempts_total counter",
        "# TYPE resilience_retries_total counter",
        "# TYPE resilience_call_duration_seconds histogram",
        "# TYPE resilience_circuit_state gauge",
    ] {
        assert!(text.contains(family), "no {family:?} in:\n{text}");
    }
    let calls = |outcome: &str| {
        format!(
            "resilience_calls_total{{provider=\"own-exporter\",method=\"upload\",outcome=\"{outcome}\"}} 1"
        )
    };
    assert!(text.contains(&calls("success")), "{text}");
    assert!(text.contains(&calls("failure")), "{text}");
    // Every bucket `serve()` uses, then `+Inf`, for each outcome.
    let buckets = text
        .lines()
        .filter(|l| {
            l.starts_with("resilience_call_duration_seconds_bucket{")
                && l.contains("own-exporter")
                && l.contains("outcome=\"success\"")
        })
        .count();
    assert_eq!(
        buckets,
        resilience::telemetry::DURATION_BUCKETS.len() + 1,
        "{text}"
    );
    let err = resilience::telemetry::serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            resilience::telemetry::TelemetryError::RecorderAlreadyInstalled
        ),
        "{err}"
    );
}
