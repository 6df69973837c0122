//! With an exporter of the user's own, installed before `use_installed_recorder()`: every
//! family goes into it under its documented name and type, the durations as histograms with
//! `DURATION_BUCKETS` (the dashboard's quantiles read their `_bucket` series), and `serve()` says
//! the process already has a recorder. Its own test binary: one process, one global recorder,
//! installed once for its tests.

mod hermetic;

use std::io::ErrorKind;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use resilience::resilient;

#[resilient(provider = "own-exporter")]
async fn upload(fail: bool) -> Result<u32, std::io::Error> {
    if fail {
        Err(std::io::ErrorKind::ConnectionReset.into())
    } else {
        Ok(7)
    }
}

/// The value of `family`'s series for `provider`'s `execute` with the further `labels`.
fn sample(text: &str, provider: &str, family: &str, labels: &str) -> String {
    let prefix = format!("{family}{{provider=\"{provider}\",method=\"execute\"{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in:\n{text}"))
        .to_owned()
}

/// The process's one exporter, installed by whichever test comes first.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let mut builder = PrometheusBuilder::new();
        for name in [
            "resilience_call_duration_seconds",
            "resilience_attempt_duration_seconds",
        ] {
            builder = builder
                .set_buckets_for_metric(
                    Matcher::Full(name.into()),
                    resilience::telemetry::DURATION_BUCKETS,
                )
                .unwrap();
        }
        let handle = builder.install_recorder().unwrap();
        resilience::telemetry::use_installed_recorder();
        handle
    })
}

#[tokio::test(start_paused = true)]
async fn our_metrics_go_into_the_users_exporter() {
    let handle = recorder();
    assert_eq!(upload(false).await.unwrap(), 7);
    assert!(upload(true).await.is_err(), "three failed attempts");
    let text = handle.render();
    for family in [
        "# TYPE resilience_calls_total counter",
        "# TYPE resilience_attempts_total counter",
        "# TYPE resilience_retries_total counter",
        "# TYPE resilience_call_duration_seconds histogram",
        "# TYPE resilience_attempt_duration_seconds histogram",
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
    assert!(
        text.contains("resilience_retries_total{provider=\"own-exporter\",method=\"upload\"} 2\n"),
        "three attempts are two retries:\n{text}"
    );
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
    // Each attempt's duration, by result: the success, and the three failed attempts under
    // `error`; every bucket for each.
    let attempts = |result: &str| {
        let labels = format!("provider=\"own-exporter\",method=\"upload\",result=\"{result}\"");
        let count = format!("resilience_attempt_duration_seconds_count{{{labels}}} ");
        let buckets = text
            .lines()
            .filter(|l| {
                l.starts_with("resilience_attempt_duration_seconds_bucket{") && l.contains(&labels)
            })
            .count();
        let count = text
            .lines()
            .find_map(|l| l.strip_prefix(&count))
            .unwrap_or_else(|| panic!("no {count:?} in:\n{text}"));
        (count.to_owned(), buckets)
    };
    let every = resilience::telemetry::DURATION_BUCKETS.len() + 1;
    // The first-attempt success, which our own store keeps once for both families, is
    // recorded in each here: count 1, and the same sample.
    let value = |line: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(line))
            .unwrap_or_else(|| panic!("no {line:?} in:\n{text}"))
    };
    let success = "{provider=\"own-exporter\",method=\"upload\",outcome=\"success\"} ";
    let ok = "{provider=\"own-exporter\",method=\"upload\",result=\"success\"} ";
    for suffix in ["_count", "_sum"] {
        let call = value(&format!(
            "resilience_call_duration_seconds{suffix}{success}"
        ));
        let attempt = value(&format!("resilience_attempt_duration_seconds{suffix}{ok}"));
        assert_eq!(call, attempt, "{suffix}:\n{text}");
        if suffix == "_count" {
            assert_eq!(call, "1");
        }
    }
    // Nothing but our documented families, and of the durations' only their documented
    // series for the method: three outcomes, three results.
    let families = [
        "resilience_calls_total",
        "resilience_attempts_total",
        "resilience_retries_total",
        "resilience_calls_abandoned_total",
        "resilience_retry_budget_exhausted_total",
        "resilience_call_duration_seconds",
        "resilience_attempt_duration_seconds",
        "resilience_circuit_state",
        "resilience_circuit_transitions_total",
    ];
    for l in text.lines().filter(|l| l.contains("resilience")) {
        let name = l
            .trim_start_matches("# HELP ")
            .trim_start_matches("# TYPE ");
        let name = name.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| families.contains(f))
            .unwrap_or(name);
        assert!(families.contains(&family), "{l}");
    }
    for (family, label, values) in [
        (
            "resilience_call_duration_seconds_count",
            "outcome",
            ["success", "failure", "rejected"],
        ),
        (
            "resilience_attempt_duration_seconds_count",
            "result",
            ["success", "error", "timeout"],
        ),
    ] {
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{family}{{provider=\"own-exporter\",")))
            .collect();
        assert_eq!(series.len(), 3, "{series:?}");
        for v in values {
            let want =
                format!("{family}{{provider=\"own-exporter\",method=\"upload\",{label}=\"{v}\"}} ");
            assert!(
                series.iter().any(|l| l.starts_with(&want)),
                "{want}: {series:?}"
            );
        }
    }
    assert_eq!(attempts("success"), ("1".to_owned(), every), "{text}");
    assert_eq!(attempts("error"), ("3".to_owned(), every), "{text}");
    assert_eq!(attempts("timeout"), ("0".to_owned(), every), "{text}");
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

/// A retry that the breaker refuses after its backoff (an operator opened it meanwhile) was
/// never made: it is not counted in `resilience_retries_total`, and the retry-budget token it
/// took is given back; so is the token of a call cancelled during its backoff.
#[tokio::test(start_paused = true)]
async fn a_retry_refused_after_its_backoff_is_not_counted_and_spends_no_budget() {
    let handle = recorder();
    let p = resilience::configure(
        "own-refused",
        resilience::Settings::new()
            .jitter(resilience::Jitter::None)
            .base_delay(Duration::from_millis(100))
            // Only retries move the budget: no refill by the clock or by calls.
            .retry_budget_min_per_second(0.0)
            .retry_budget_ratio(0.0),
    )
    .unwrap();
    let full = p.retry_budget_available();
    let failing = move || async move {
        p.execute(|| async { Err::<u32, _>(std::io::Error::from(ErrorKind::ConnectionReset)) })
            .await
    };
    let call = tokio::spawn(failing());
    // The first attempt fails; the call sleeps its 100 ms backoff, a token taken.
    tokio::task::yield_now().await;
    assert_eq!(p.retry_budget_available(), full - 1.0);
    p.force_open();
    tokio::time::advance(Duration::from_millis(200)).await;
    let err = call.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("circuit"), "{err}");
    assert_eq!(p.retry_budget_available(), full, "the token is given back");
    let text = handle.render();
    let line = |family: &str, labels: &str| sample(&text, "own-refused", family, labels);
    assert_eq!(line("resilience_retries_total", ""), "0", "{text}");
    assert_eq!(
        line("resilience_attempts_total", ",result=\"transient\""),
        "1"
    );
    assert_eq!(line("resilience_calls_total", ",outcome=\"failure\""), "1");

    // Cancelled during its backoff: the token comes back too.
    p.reset();
    let call = tokio::spawn(failing());
    tokio::task::yield_now().await;
    assert_eq!(p.retry_budget_available(), full - 1.0);
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    assert_eq!(p.retry_budget_available(), full, "the token is given back");
    let text = handle.render();
    assert_eq!(
        sample(&text, "own-refused", "resilience_calls_abandoned_total", ""),
        "1",
        "the cancelled call, abandoned; the refused one had its outcome"
    );
}

/// An error whose log text panics (user code that runs after the retry's budget token was
/// taken, before the retry is scheduled): the call unwinds, and the token is given back.
#[tokio::test(start_paused = true)]
async fn a_panic_before_the_retry_is_scheduled_spends_no_budget() {
    #[derive(Debug)]
    struct PanickySummary;
    impl resilience::Classify for PanickySummary {
        fn classify(&self) -> resilience::ErrorClass {
            resilience::ErrorClass::Transient
        }
        fn log_summary(&self) -> Option<std::borrow::Cow<'_, str>> {
            panic!("the user's log_summary panics")
        }
    }
    impl From<resilience::ResilienceError> for PanickySummary {
        fn from(_: resilience::ResilienceError) -> Self {
            PanickySummary
        }
    }
    let p = resilience::configure(
        "own-panicky",
        resilience::Settings::new()
            .retry_budget_min_per_second(0.0)
            .retry_budget_ratio(0.0),
    )
    .unwrap();
    let full = p.retry_budget_available();
    let r =
        tokio::spawn(async move { p.execute(|| async { Err::<u32, _>(PanickySummary) }).await })
            .await;
    assert!(r.unwrap_err().is_panic());
    assert_eq!(p.retry_budget_available(), full, "the token is given back");
}

/// A retry attempt cut off by its caller has no result in `resilience_attempts_total`, so it
/// is no retry in `resilience_retries_total` either: retries stay the attempts after each
/// call's first.
#[tokio::test(start_paused = true)]
async fn a_retry_cut_off_by_its_caller_is_counted_with_its_attempt_or_not_at_all() {
    let handle = recorder();
    let p = resilience::configure(
        "own-cut-retry",
        resilience::Settings::new()
            .jitter(resilience::Jitter::None)
            .base_delay(Duration::from_millis(100)),
    )
    .unwrap();
    let call = tokio::spawn(async move {
        let n = std::sync::atomic::AtomicU32::new(0);
        p.execute(|| {
            let first = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
            async move {
                if first {
                    return Err(std::io::Error::from(ErrorKind::ConnectionReset));
                }
                std::future::pending::<Result<u32, std::io::Error>>().await
            }
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    let text = handle.render();
    let line = |family: &str, labels: &str| sample(&text, "own-cut-retry", family, labels);
    assert_eq!(
        line("resilience_attempts_total", ",result=\"transient\""),
        "1"
    );
    assert_eq!(line("resilience_retries_total", ""), "0", "{text}");
    // The call itself has no outcome: it is counted as abandoned, and in no outcome.
    assert_eq!(line("resilience_calls_abandoned_total", ""), "1", "{text}");
    for outcome in ["success", "failure", "rejected"] {
        let labels = format!(",outcome=\"{outcome}\"");
        assert_eq!(line("resilience_calls_total", &labels), "0", "{text}");
    }
}

/// The state gauge in an exporter of the user's own moves with the breaker, not with the
/// scrape: an open breaker whose timeout has passed still reads `open` there until something
/// moves it (a call, `state()`, `health()`), where `serve()`'s `/metrics` shows `half_open`.
#[tokio::test(start_paused = true)]
async fn the_state_gauge_moves_when_the_breaker_does() {
    let handle = recorder();
    let p = resilience::configure(
        "own-stale-open",
        resilience::Settings::new()
            .max_attempts(1)
            .failure_threshold(1)
            .breaker_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    let failing = p
        .execute(|| async { Err::<u32, _>(std::io::Error::from(ErrorKind::ConnectionReset)) })
        .await;
    assert!(failing.is_err());
    tokio::time::advance(Duration::from_secs(6)).await;
    let gauge = |text: &str, state: &str| {
        let prefix =
            format!("resilience_circuit_state{{provider=\"own-stale-open\",state=\"{state}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in:\n{text}"))
            .to_owned()
    };
    let text = handle.render();
    assert_eq!(gauge(&text, "open"), "1", "{text}");
    let health = resilience::telemetry::health().into_body();
    assert!(health.to_string().contains("\"half_open\""), "{health}");
    let text = handle.render();
    assert_eq!(gauge(&text, "half_open"), "1", "{text}");
    assert_eq!(gauge(&text, "open"), "0", "{text}");
}
