//! `drain()` in the metrics: a call it ends counts as a failed call, as other give-ups do,
//! with no retry and nothing abandoned. Its own test binary: the recorder and the drain are the
//! process's.

mod common;

use std::time::Duration;

use common::{TestError, counter};
use resilience::{Jitter, Settings};

#[tokio::test(start_paused = true)]
async fn a_call_the_drain_ends_counts_as_a_failed_call() {
    let handle = resilience::telemetry::install_recorder().unwrap();
    let p = resilience::configure(
        "drain-metrics",
        Settings::new()
            .jitter(Jitter::None)
            .base_delay(Duration::from_secs(30)),
    )
    .unwrap();
    // Asleep in its 30 s backoff when the drain starts.
    let asleep = tokio::spawn(p.execute(|| async { Err::<u32, _>(TestError::Transient(1)) }));
    tokio::time::sleep(Duration::from_secs(1)).await;
    resilience::drain();
    assert!(matches!(
        asleep.await.unwrap(),
        Err(TestError::Resilience(
            resilience::ResilienceError::Draining { .. }
        ))
    ));
    // Failing after it, and succeeding after it.
    let failed = p.execute(|| async { Err::<u32, _>(TestError::Transient(2)) });
    assert_eq!(failed.await, Err(TestError::Transient(2)));
    assert_eq!(p.execute(|| async { Ok::<_, TestError>(3) }).await, Ok(3));

    let text = handle.render();
    let of = |name: &str, extra: &[(&str, &str)]| {
        let mut labels = vec![("provider", "drain-metrics"), ("method", "execute")];
        labels.extend_from_slice(extra);
        counter(&text, name, &labels)
    };
    assert_eq!(
        of("resilience_calls_total", &[("outcome", "failure")]),
        2.0,
        "{text}"
    );
    assert_eq!(of("resilience_calls_total", &[("outcome", "success")]), 1.0);
    assert_eq!(
        of("resilience_attempts_total", &[("result", "transient")]),
        2.0
    );
    assert_eq!(of("resilience_retries_total", &[]), 0.0);
    assert_eq!(of("resilience_calls_abandoned_total", &[]), 0.0);
    // Each attempt made has one duration, under its result; the call woken in its backoff
    // made one, and its retry none.
    let durations = |family: &str, label: &str, values: [&str; 3]| {
        values.map(|v| {
            common::sample(
                &text,
                &format!("{family}_count"),
                &[
                    ("provider", "drain-metrics"),
                    ("method", "execute"),
                    (label, v),
                ],
            )
        })
    };
    assert_eq!(
        durations(
            "resilience_attempt_duration_seconds",
            "result",
            ["success", "error", "timeout"]
        ),
        [Some(1.0), Some(2.0), Some(0.0)],
        "{text}"
    );
    assert_eq!(
        durations(
            "resilience_call_duration_seconds",
            "outcome",
            ["success", "failure", "rejected"]
        ),
        [Some(1.0), Some(2.0), Some(0.0)],
        "{text}"
    );
}
