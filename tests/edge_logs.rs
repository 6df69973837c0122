//! Log lines against the counters under concurrency: one `[CIRCUIT] State transition` line per
//! counted transition, one `[RETRY] Attempt` line per retry made, one giving-up line per failed
//! call. Its own test binary: the subscriber and the recorder are the process's.

mod common;

use std::time::Duration;

use common::{TestError, capture, counter};
use resilience::{CircuitState, Jitter, Settings};

fn count(all: &str, provider: &str, needle: &str) -> usize {
    let tag = format!("provider=\"{provider}\"");
    all.lines()
        .filter(|l| l.contains(&tag) && l.contains(needle))
        .count()
}

fn logs() -> &'static common::Captured {
    static LOGS: std::sync::OnceLock<common::Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let (logs, subscriber) = capture();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        logs
    })
}

#[test]
fn one_line_per_transition_and_per_retry_under_concurrency() {
    let logs = logs();
    let handle = resilience::telemetry::install_recorder().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // 1. Fifty failures at once on a breaker that opens at the fifth.
        let p = resilience::configure(
            "elog-open",
            Settings::new()
                .max_attempts(1)
                .failure_threshold(5)
                .breaker_timeout(Duration::from_secs(600)),
        )
        .unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                tokio::spawn(async move {
                    p.execute(|| async {
                        tokio::task::yield_now().await;
                        Err::<u32, _>(TestError::Transient(1))
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().is_err());
        }
        assert_eq!(p.state(), CircuitState::Open);

        // 2. Retries: twenty calls that fail three times each.
        let r = resilience::configure(
            "elog-retry",
            Settings::new()
                .jitter(Jitter::None)
                .base_delay(Duration::ZERO)
                .max_attempts(3)
                .failure_threshold(1_000_000)
                .retry_budget_capacity(1000),
        )
        .unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                tokio::spawn(async move {
                    r.execute(|| async {
                        tokio::task::yield_now().await;
                        Err::<u32, _>(TestError::Transient(1))
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().is_err());
        }

        // 3. A half-open round with several probes at once.
        let h = resilience::configure(
            "elog-half",
            Settings::new()
                .max_attempts(1)
                .failure_threshold(1)
                .success_threshold(3)
                .half_open_max_calls(4)
                .breaker_timeout(Duration::ZERO),
        )
        .unwrap();
        assert!(
            h.execute(|| async { Err::<u32, _>(TestError::Transient(1)) })
                .await
                .is_err()
        );
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                tokio::spawn(async move {
                    h.execute(|| async {
                        tokio::task::yield_now().await;
                        Ok::<u32, TestError>(1)
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await.unwrap();
        }
        assert_eq!(h.state(), CircuitState::Closed);

        // 4. An operator's moves.
        let f = resilience::provider("elog-forced");
        f.force_open();
        f.reset();
    });
    let text = handle.render();
    let all = logs.text();
    for (provider, from, to) in [
        ("elog-open", "closed", "open"),
        ("elog-half", "closed", "open"),
        ("elog-half", "open", "half_open"),
        ("elog-half", "half_open", "closed"),
        ("elog-half", "half_open", "open"),
        ("elog-forced", "closed", "forced_open"),
        ("elog-forced", "forced_open", "closed"),
    ] {
        let counted = counter(
            &text,
            "resilience_circuit_transitions_total",
            &[("provider", provider), ("from", from), ("to", to)],
        );
        let logged = count(&all, provider, &format!("State transition: {from} → {to} "));
        assert_eq!(counted, logged as f64, "{provider} {from} → {to}");
    }
    let pm = [("provider", "elog-retry"), ("method", "execute")];
    let retries = counter(&text, "resilience_retries_total", &pm);
    assert_eq!(retries, 40.0);
    assert_eq!(
        count(&all, "elog-retry", "INFO resilience: [RETRY] Attempt"),
        40
    );
    assert_eq!(
        count(&all, "elog-retry", "DEBUG resilience: [RETRY] Attempt 1/3"),
        20
    );
    assert_eq!(count(&all, "elog-retry", "[RETRY] Giving up"), 20);
    assert_eq!(
        count(&all, "elog-retry", "reason=\"attempts_exhausted\""),
        20
    );
}

/// Probes that fail and succeed at random, on four threads, round after round: the counted
/// transitions form a path from `closed` to the final state, each logged once.
#[test]
fn transitions_form_a_path_and_each_is_logged_once() {
    let logs = logs();
    let handle = resilience::telemetry::install_recorder().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let name = "elog-mixed";
    let p = resilience::configure(
        name,
        Settings::new()
            .max_attempts(1)
            .failure_threshold(2)
            .success_threshold(2)
            .half_open_max_calls(3)
            .breaker_timeout(Duration::ZERO),
    )
    .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                tokio::spawn(async move {
                    for i in 0..400u32 {
                        // Two failures in a row in every five calls, so that one task alone
                        // opens the breaker (failure_threshold 2): how the tasks interleave
                        // on a loaded machine (they may run one after another) changes which
                        // moves are made, not whether there are any. With `(i * 7) % 5`, no
                        // two of a task's failures were adjacent, and a run where the tasks
                        // did not interleave made none (`moves > 10` failed in a full
                        // `cargo test --workspace` on two busy cores).
                        let fail = (i + t * 3) % 5 < 2;
                        let _ = p
                            .execute(|| async move {
                                tokio::task::yield_now().await;
                                if fail {
                                    Err::<u32, _>(TestError::Transient(1))
                                } else {
                                    Ok(1)
                                }
                            })
                            .await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let end = p.state();
    let text = handle.render();
    let all = logs.text();
    let states = ["closed", "open", "half_open", "forced_open", "disabled"];
    let mut net = std::collections::HashMap::new();
    let mut moves = 0.0;
    for from in states {
        for to in states {
            if from == to {
                continue;
            }
            let counted = counter(
                &text,
                "resilience_circuit_transitions_total",
                &[("provider", name), ("from", from), ("to", to)],
            );
            let logged = count(&all, name, &format!("State transition: {from} → {to} "));
            assert_eq!(counted, logged as f64, "{from} → {to}");
            *net.entry(from).or_insert(0.0) -= counted;
            *net.entry(to).or_insert(0.0) += counted;
            moves += counted;
        }
    }
    assert!(moves > 10.0, "{moves} moves");
    for s in states {
        let want = f64::from(u8::from(s == end.as_str())) - f64::from(u8::from(s == "closed"));
        assert_eq!(net[s], want, "{s}: {net:?}, ends {end}");
    }
}
