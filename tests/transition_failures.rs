//! The `failures` field of the `[CIRCUIT]` lines in every way a breaker leaves `half_open` for
//! `open` (one failed probe, several failing together, failure-rate mode, a probe cut off by its time
//! limit): 1, the probe that failed; and on `forced_open` lines, the count as it stands. One
//! test function: the subscriber is process-global.

mod common;

use std::time::Duration;

use common::{TestError, capture_globally, current_thread, fail};
use resilience::{CircuitState, Settings};

fn lines_with(all: &str, needle: &str) -> Vec<String> {
    all.lines()
        .filter(|l| l.contains(needle) && l.contains("State transition"))
        .map(str::to_owned)
        .collect()
}

fn failures_of(line: &str) -> Option<&str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("failures="))
}

#[test]
fn failures_on_every_opening_line() {
    let logs = capture_globally();
    let rt = current_thread();
    rt.block_on(async {
        // 0. One failed probe: one failure, not the streak (2) that opened the breaker.
        let p = resilience::configure(
            "log-reopen",
            Settings::new()
                .max_attempts(1)
                .failure_threshold(2)
                .breaker_timeout(Duration::ZERO),
        )
        .unwrap();
        fail(p, 3).await;
        let reopen_text = lines_with(&logs.text(), "for log-reopen").join("\n");
        for expected in [
            "from=\"closed\" to=\"open\" failures=2",
            "from=\"open\" to=\"half_open\"",
            "from=\"half_open\" to=\"open\" failures=1",
        ] {
            assert!(
                reopen_text.contains(expected),
                "missing {expected:?} in:\n{reopen_text}"
            );
        }
        // Each line has the breaker's generation after its move, one more for each move: what
        // orders two lines that two threads logged out of order.
        let generations: Vec<&str> = reopen_text
            .lines()
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("generation="))
            })
            .collect();
        assert_eq!(generations, ["1", "2", "3"], "{reopen_text}");

        // A. Three probes in flight (half_open_max_calls 3), all failing.
        let p = resilience::configure(
            "rv-many",
            Settings::new()
                .max_attempts(1)
                .failure_threshold(4)
                .half_open_max_calls(3)
                .success_threshold(3)
                .breaker_timeout(Duration::ZERO),
        )
        .unwrap();
        fail(p, 4).await;
        assert_eq!(p.state(), CircuitState::HalfOpen);
        let gate = std::sync::Arc::new(tokio::sync::Barrier::new(3));
        let probes = (0..3).map(|_| {
            let gate = gate.clone();
            async move {
                let r: Result<u32, TestError> = p
                    .execute(|| {
                        let gate = gate.clone();
                        async move {
                            gate.wait().await;
                            Err(TestError::Transient(1))
                        }
                    })
                    .await;
                r
            }
        });
        let _ = futures_util::future::join_all(probes).await;
        let many = lines_with(&logs.text(), "for rv-many");

        // B. Failure-rate mode: 4 of 4 failures open it, then one failed probe.
        let p = resilience::configure(
            "rv-rate",
            Settings::new()
                .max_attempts(1)
                .failure_rate(Some(0.5))
                .window_size(4)
                .minimum_calls(4)
                .breaker_timeout(Duration::ZERO),
        )
        .unwrap();
        fail(p, 5).await;
        let rate = lines_with(&logs.text(), "for rv-rate");

        // C. A probe cut off by its time limit.
        let p = resilience::configure(
            "rv-timeout",
            Settings::new()
                .max_attempts(1)
                .failure_threshold(2)
                .attempt_timeout(Some(Duration::from_millis(20)))
                .breaker_timeout(Duration::ZERO),
        )
        .unwrap();
        fail(p, 2).await;
        let _: Result<u32, TestError> = p
            // Never ready: only the time limit ends it. (A 5 s sleep raced the 20 ms limit,
            // and the attempt polls its body before its timer: after a stall of the thread
            // past 5 s the sleep was ready first and the probe succeeded.)
            .execute(std::future::pending::<Result<u32, TestError>>)
            .await;
        let timeout = lines_with(&logs.text(), "for rv-timeout");

        // D. force_open() from half_open, and from closed with one failure counted.
        let p = resilience::configure(
            "rv-forced",
            Settings::new()
                .max_attempts(1)
                .failure_threshold(3)
                .breaker_timeout(Duration::ZERO),
        )
        .unwrap();
        fail(p, 3).await;
        assert_eq!(p.state(), CircuitState::HalfOpen);
        p.force_open();
        p.reset();
        fail(p, 1).await;
        p.force_open();
        let forced = lines_with(&logs.text(), "for rv-forced");

        let reopen = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .filter(|l| l.contains("half_open → open"))
                .map(|l| failures_of(l).unwrap_or("none").to_owned())
                .collect()
        };
        assert_eq!(reopen(&many), ["1"], "A");
        assert_eq!(reopen(&rate), ["1"], "B");
        assert_eq!(reopen(&timeout), ["1"], "C");
        let forced_open: Vec<_> = forced
            .iter()
            .filter(|l| l.contains("→ forced_open"))
            .map(|l| failures_of(l).unwrap_or("none").to_owned())
            .collect();
        // No failure made these moves: the count as it stands, the opening's streak (3) from
        // half_open, the streak so far (1) from closed.
        assert_eq!(forced_open, ["3", "1"], "D");
    });
}
