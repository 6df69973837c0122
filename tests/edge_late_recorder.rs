//! The recorder switched on after calls have run and providers were made, then served twice
//! (port 0). Its own test binary: it installs the process's recorder.

mod common;

use std::time::Duration;

use common::{TestError, get, sample};
use resilience::{CallSite, CircuitState, Settings};

#[resilience::resilient(provider = "late-a")]
async fn late_a(fail: bool) -> Result<u32, TestError> {
    if fail {
        Err(TestError::Transient(1))
    } else {
        Ok(1)
    }
}

static LATE_B: CallSite = CallSite::new("late-b", "own_site");

#[tokio::test(start_paused = true)]
async fn a_recorder_switched_on_after_calls_and_served_twice() {
    resilience::configure(
        "late-a",
        Settings::new()
            .max_attempts(1)
            .failure_threshold(1)
            .breaker_timeout(Duration::from_secs(600)),
    )
    .unwrap();
    assert_eq!(late_a(false).await, Ok(1));
    assert!(late_a(true).await.is_err());
    assert_eq!(resilience::provider("late-a").state(), CircuitState::Open);
    assert_eq!(
        LATE_B.execute(|| async { Ok::<u32, TestError>(2) }).await,
        Ok(2)
    );
    let c = resilience::provider("late-c");
    c.force_open();

    let first = resilience::telemetry::serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let second = resilience::telemetry::serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert_ne!(first.local_addr(), second.local_addr());
    assert_ne!(first.local_addr().port(), 0);

    let text = get(&first.metrics_url()).await.1;
    let a = |k, v| [("provider", "late-a"), ("method", "late_a"), (k, v)];
    // Calls made before the switch are not counted; the series are there, at 0.
    for o in ["success", "failure", "rejected"] {
        assert_eq!(
            sample(&text, "resilience_calls_total", &a("outcome", o)),
            Some(0.0),
            "{o}\n{text}"
        );
    }
    // The breaker's state as it is; its transitions from the switch on.
    let st = |p, s| {
        sample(
            &text,
            "resilience_circuit_state",
            &[("provider", p), ("state", s)],
        )
    };
    assert_eq!(st("late-a", "open"), Some(1.0));
    assert_eq!(st("late-a", "closed"), Some(0.0));
    assert_eq!(st("late-c", "forced_open"), Some(1.0));
    let tr = |p, f, t| {
        sample(
            &text,
            "resilience_circuit_transitions_total",
            &[("provider", p), ("from", f), ("to", t)],
        )
    };
    assert_eq!(tr("late-a", "closed", "open"), Some(0.0));

    // After the switch: counted, on either listener.
    assert!(late_a(false).await.is_err(), "rejected");
    assert_eq!(
        LATE_B.execute(|| async { Ok::<u32, TestError>(2) }).await,
        Ok(2)
    );
    drop(first);
    let text = get(&second.metrics_url()).await.1;
    assert_eq!(
        sample(&text, "resilience_calls_total", &a("outcome", "rejected")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "resilience_calls_total",
            &[
                ("provider", "late-b"),
                ("method", "own_site"),
                ("outcome", "success")
            ]
        ),
        Some(1.0),
        "{text}"
    );
}
