//! Review (extremes): settings at the ends of their ranges, and the combinations between them,
//! driven through real calls on a paused clock. Every call must end (no panic, no hang beyond
//! the configured times, no busy loop) with what the settings say; every refused value must
//! be named with its setting, its value and what was expected.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::TestError;
use resilience::{CircuitState, HttpError, Jitter, ResilienceError, Settings};
use tokio::time::Instant;

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// No breaker, no budget: the retry loop alone.
fn loop_only() -> Settings {
    Settings::new()
        .circuit_breaker_enabled(false)
        .retry_budget_enabled(false)
}

/// The `i`th attempt's answer of a provider that is down.
fn failing(i: u32) -> Result<(), TestError> {
    Err(TestError::Transient(i))
}

/// Runs `op(attempt)` through `p` under a paused-clock bound of `limit` (a hang shows as the
/// bound passing) and counts the attempts, failing on more than `max` (a busy loop).
async fn run<T: std::fmt::Debug>(
    p: resilience::Provider,
    limit: Duration,
    max: u32,
    op: impl Fn(u32) -> Result<T, TestError>,
) -> (Result<T, TestError>, u32, Duration) {
    let n = AtomicU32::new(0);
    let t0 = Instant::now();
    let r = tokio::time::timeout(
        limit,
        p.execute(|| {
            let i = n.fetch_add(1, Ordering::SeqCst) + 1;
            assert!(
                i <= max,
                "attempt {i} of at most {max}: the loop does not stop"
            );
            let out = op(i);
            async move { out }
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("the call did not end within {limit:?} (paused clock)"));
    (r, n.load(Ordering::SeqCst), t0.elapsed())
}

/// Attempt 60 and beyond with every cap at its largest: a delay of a year each time, never
/// an overflow in the multiplication, in `Instant + Duration` or in the timer.
#[tokio::test(start_paused = true)]
async fn exponential_backoff_at_attempt_60_plus_with_the_largest_caps() {
    for (i, jitter) in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ]
    .into_iter()
    .enumerate()
    {
        let p = resilience::configure(
            &format!("xt-caps-{i}"),
            loop_only()
                .jitter(jitter)
                .max_attempts(70)
                .base_delay(Duration::from_nanos(1))
                .max_delay(YEAR)
                .exponential_base(1000.0),
        )
        .unwrap();
        let (r, attempts, elapsed) = run(p, YEAR * 70, 70, failing).await;
        assert_eq!(
            (r, attempts),
            (Err(TestError::Transient(70)), 70),
            "{jitter}"
        );
        assert!(elapsed <= YEAR * 69, "{jitter}: {elapsed:?}");
        if jitter == Jitter::None {
            // 1 ns, 1 µs, 1 ms (each a tick of Tokio's timer, 1 ms), 1 s, 1000 s, 11.6 days,
            // then a year for each of the other 63.
            let first: Duration = (0..6).map(|k| Duration::from_nanos(1000u64.pow(k))).sum();
            let at_least = first + YEAR * 63;
            assert!(
                elapsed >= at_least && elapsed <= at_least + Duration::from_millis(3),
                "{elapsed:?}"
            );
        }
    }
}

/// The most attempts with no delay at all (a zero range for every jitter): 1000 attempts
/// at once, each made and each counted, with no time passing.
#[tokio::test(start_paused = true)]
async fn a_thousand_attempts_with_zero_delays_end_at_once() {
    for (i, jitter) in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ]
    .into_iter()
    .enumerate()
    {
        let p = resilience::configure(
            &format!("xt-zero-{i}"),
            loop_only()
                .jitter(jitter)
                .max_attempts(1000)
                .base_delay(Duration::ZERO)
                .max_delay(Duration::ZERO)
                .exponential_base(1000.0),
        )
        .unwrap();
        let (r, attempts, elapsed) = run(p, Duration::from_secs(1), 1000, failing).await;
        assert_eq!((r, attempts), (Err(TestError::Transient(1000)), 1000));
        assert_eq!(elapsed, Duration::ZERO, "{jitter}");
    }
}

/// `Retry-After` beyond anything (`u64::MAX` seconds, `Duration::MAX`, a header of 1e400):
/// above the max delay, so the call gives up at once with that error.
#[tokio::test(start_paused = true)]
async fn a_retry_after_of_u64_max_seconds_ends_the_call_at_once() {
    let p = resilience::configure("xt-retry-after", loop_only().max_delay(YEAR)).unwrap();
    for ra in [
        Duration::from_secs(u64::MAX),
        Duration::MAX,
        YEAR + Duration::from_nanos(1),
    ] {
        let (r, attempts, elapsed) = run(p, Duration::from_secs(1), 3, |i| {
            Err::<(), _>(TestError::Throttled(i, Some(ra)))
        })
        .await;
        assert_eq!((r, attempts), (Err(TestError::Throttled(1, Some(ra))), 1));
        assert_eq!(elapsed, Duration::ZERO);
    }
    for header in [
        "18446744073709551615",
        "18446744073709551616",
        "1e400",
        "1e30",
    ] {
        let e = HttpError::from_header(503, Some(header));
        assert!(e.retry_after().is_some_and(|d| d > YEAR), "{header}");
        let n = AtomicU32::new(0);
        let t0 = Instant::now();
        let r: Result<(), common::UploadError> = p
            .execute(|| {
                n.fetch_add(1, Ordering::SeqCst);
                let e = e.clone();
                async move { Err(common::UploadError::Http(e)) }
            })
            .await;
        assert!(matches!(r, Err(common::UploadError::Http(_))), "{header}");
        assert_eq!(
            (n.load(Ordering::SeqCst), t0.elapsed()),
            (1, Duration::ZERO)
        );
    }
    // Exactly the cap (a year) is waited for, once.
    let (r, attempts, elapsed) = run(p, YEAR * 3, 2, |i| {
        if i == 1 {
            Err(TestError::Throttled(i, Some(YEAR)))
        } else {
            Ok(i)
        }
    })
    .await;
    assert_eq!((r, attempts), (Ok(2), 2));
    assert!(
        elapsed >= YEAR && elapsed <= YEAR + Duration::from_millis(2),
        "{elapsed:?}"
    );
}

/// The longest deadline and attempt timeout there are, around an operation that never
/// answers: the call ends at the deadline, not later, and not at once.
#[tokio::test(start_paused = true)]
async fn the_longest_timeouts_end_a_hung_call_on_time() {
    let just_under = YEAR - Duration::from_nanos(1);
    for (name, attempt, total) in [
        ("xt-hung-both", Some(just_under), Some(just_under)),
        ("xt-hung-total", None, Some(just_under)),
        ("xt-hung-attempt", Some(just_under), None),
        // An attempt timeout above the deadline never fires: the deadline ends the attempt.
        (
            "xt-hung-over",
            Some(just_under),
            Some(Duration::from_secs(1)),
        ),
        // The shortest ones.
        (
            "xt-hung-ns",
            Some(Duration::from_nanos(1)),
            Some(Duration::from_nanos(1)),
        ),
    ] {
        let p = resilience::configure(
            name,
            loop_only()
                .max_attempts(2)
                .base_delay(Duration::ZERO)
                .attempt_timeout(attempt)
                .total_timeout(total),
        )
        .unwrap();
        let bound = total.unwrap_or(YEAR * 3) + Duration::from_secs(1);
        let t0 = Instant::now();
        let r: Result<(), TestError> = tokio::time::timeout(
            bound,
            p.execute(std::future::pending::<Result<(), TestError>>),
        )
        .await
        .unwrap_or_else(|_| panic!("{name}: did not end within {bound:?}"));
        let elapsed = t0.elapsed();
        match (total, r) {
            (Some(t), Err(TestError::Resilience(ResilienceError::DeadlineExceeded { .. })))
            | (Some(t), Err(TestError::Resilience(ResilienceError::AttemptTimeout { .. }))) => {
                assert!(
                    elapsed <= t + Duration::from_millis(1),
                    "{name}: {elapsed:?}"
                );
                assert!(elapsed >= t, "{name}: {elapsed:?}");
            }
            (None, Err(TestError::Resilience(ResilienceError::AttemptTimeout { timeout, .. }))) => {
                assert_eq!(timeout, just_under);
                assert!(
                    elapsed >= just_under * 2,
                    "{name}: two attempts, {elapsed:?}"
                );
            }
            (_, other) => panic!("{name}: {other:?}"),
        }
    }
}

/// A breaker open for a year: rejects with the year to wait, then lets a probe through; and
/// one with a zero timeout, half-open at once.
#[tokio::test(start_paused = true)]
async fn breaker_timeouts_of_a_year_and_of_zero() {
    let p = resilience::configure(
        "xt-breaker-year",
        Settings::new()
            .max_attempts(1)
            .failure_threshold(1)
            .breaker_timeout(YEAR),
    )
    .unwrap();
    let (r, _, _) = run(p, Duration::from_secs(1), 1, failing).await;
    assert_eq!(r, Err(TestError::Transient(1)));
    assert_eq!(p.state(), CircuitState::Open);
    let (r, attempts, _) = run(p, Duration::from_secs(1), 1, Ok).await;
    assert_eq!(attempts, 0);
    match r {
        Err(TestError::Resilience(ResilienceError::CircuitOpen {
            retry_in: Some(d), ..
        })) => {
            assert!(d <= YEAR && d > YEAR - Duration::from_secs(1), "{d:?}")
        }
        other => panic!("{other:?}"),
    }
    tokio::time::advance(YEAR).await;
    let (r, attempts, _) = run(p, Duration::from_secs(1), 1, Ok).await;
    assert_eq!((r, attempts), (Ok(1), 1));
    assert_eq!(p.state(), CircuitState::HalfOpen, "one success of two");

    let p = resilience::configure(
        "xt-breaker-zero",
        Settings::new()
            .max_attempts(1)
            .failure_threshold(1)
            .success_threshold(1)
            .breaker_timeout(Duration::ZERO),
    )
    .unwrap();
    let _ = run(p, Duration::from_secs(1), 1, failing).await;
    assert_eq!(
        p.state(),
        CircuitState::HalfOpen,
        "a zero timeout is over at once"
    );
    let (r, _, _) = run(p, Duration::from_secs(1), 1, Ok).await;
    assert_eq!(r, Ok(1));
    assert_eq!(p.state(), CircuitState::Closed);
}

/// More successes to close than probes at a time: the probes come one after another, and the
/// last of them closes the breaker.
#[tokio::test(start_paused = true)]
async fn a_success_threshold_above_the_probe_slots_closes_after_that_many_probes() {
    let p = resilience::configure(
        "xt-half-open",
        Settings::new()
            .max_attempts(1)
            .failure_threshold(1)
            .success_threshold(500)
            .half_open_max_calls(1)
            .breaker_timeout(Duration::from_secs(1)),
    )
    .unwrap();
    let _ = run(p, Duration::from_secs(1), 1, failing).await;
    tokio::time::advance(Duration::from_secs(1)).await;
    for k in 0..500 {
        assert_eq!(p.state(), CircuitState::HalfOpen, "after {k} successes");
        let (r, _, _) = run(p, Duration::from_secs(1), 1, Ok).await;
        assert_eq!(r, Ok(1));
    }
    assert_eq!(p.state(), CircuitState::Closed);
}

/// The failure-rate window at its ends: the largest window with a rate of 1 opens on its
/// 4096th failure and not before; a window of one with the smallest rate opens on one failure.
#[tokio::test(start_paused = true)]
async fn failure_rate_windows_at_their_ends() {
    let p = resilience::configure(
        "xt-window-max",
        Settings::new()
            .max_attempts(1)
            .failure_rate(Some(1.0))
            .window_size(4096)
            .minimum_calls(4096),
    )
    .unwrap();
    for k in 1..=4096u32 {
        assert_eq!(p.state(), CircuitState::Closed, "after {} failures", k - 1);
        let (r, _, _) = run(p, Duration::from_secs(1), 1, failing).await;
        assert_eq!(r, Err(TestError::Transient(1)));
    }
    assert_eq!(p.state(), CircuitState::Open);

    let p = resilience::configure(
        "xt-window-one",
        Settings::new()
            .max_attempts(1)
            .failure_rate(Some(f64::MIN_POSITIVE))
            .window_size(1)
            .minimum_calls(1),
    )
    .unwrap();
    for _ in 0..10 {
        let (r, _, _) = run(p, Duration::from_secs(1), 1, Ok).await;
        assert_eq!(r, Ok(1));
    }
    assert_eq!(p.state(), CircuitState::Closed);
    let _ = run(p, Duration::from_secs(1), 1, failing).await;
    assert_eq!(p.state(), CircuitState::Open);
}

/// The retry budget at its ends: the largest capacity and refill (a refill of `f64::MAX` a
/// second is infinite in millionths), and the smallest, one retry and no refill.
#[tokio::test(start_paused = true)]
async fn retry_budgets_at_their_ends() {
    let p = resilience::configure(
        "xt-budget-huge",
        Settings::new()
            .circuit_breaker_enabled(false)
            .max_attempts(1000)
            .base_delay(Duration::ZERO)
            .retry_budget_capacity(u32::MAX)
            .retry_budget_ratio(f64::MAX)
            .retry_budget_min_per_second(f64::MAX),
    )
    .unwrap();
    for _ in 0..3 {
        let (r, attempts, _) = run(p, Duration::from_secs(1), 1000, failing).await;
        assert_eq!((r, attempts), (Err(TestError::Transient(1000)), 1000));
        assert_eq!(p.retry_budget_available(), f64::from(u32::MAX));
        tokio::time::advance(Duration::from_millis(1)).await;
    }

    let p = resilience::configure(
        "xt-budget-one",
        Settings::new()
            .circuit_breaker_enabled(false)
            .max_attempts(1000)
            .base_delay(Duration::ZERO)
            .retry_budget_capacity(1)
            .retry_budget_ratio(0.0)
            .retry_budget_min_per_second(0.0),
    )
    .unwrap();
    let (r, attempts, _) = run(p, Duration::from_secs(1), 2, failing).await;
    assert_eq!(
        (r, attempts),
        (Err(TestError::Transient(2)), 2),
        "one retry"
    );
    tokio::time::advance(YEAR).await;
    let (r, attempts, _) = run(p, Duration::from_secs(1), 1, failing).await;
    assert_eq!(
        (r, attempts),
        (Err(TestError::Transient(1)), 1),
        "none a year later"
    );
}

/// Every setting given in code at its extremes: accepted, or refused by `configure` with a
/// problem that names the method (and where it was given), the value and what was expected.
#[test]
fn extreme_code_values_are_refused_by_name_or_accepted() {
    let durations = [
        Duration::ZERO,
        Duration::from_nanos(1),
        YEAR,
        YEAR + Duration::from_nanos(1),
        Duration::MAX,
    ];
    let floats = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -1.0,
        -0.0,
        0.0,
        f64::MIN_POSITIVE,
        1e-7,
        1e-6,
        0.5,
        1.0,
        1.5,
        1000.0,
        1000.5,
        f64::MAX,
    ];
    let counts = [0, 1, 1000, 1001, 4096, 4097, 65535, 65536, u32::MAX];
    type Case = (&'static str, String, Settings);
    let mut cases: Vec<Case> = Vec::new();
    for d in durations {
        let v = format!("{d:?}");
        cases.push(("base_delay", v.clone(), Settings::new().base_delay(d)));
        cases.push(("max_delay", v.clone(), Settings::new().max_delay(d)));
        cases.push((
            "breaker_timeout",
            v.clone(),
            Settings::new().breaker_timeout(d),
        ));
        cases.push((
            "attempt_timeout",
            v.clone(),
            Settings::new().attempt_timeout(Some(d)),
        ));
        cases.push(("total_timeout", v, Settings::new().total_timeout(Some(d))));
    }
    for f in floats {
        let v = format!("{f:?}");
        cases.push((
            "exponential_base",
            v.clone(),
            Settings::new().exponential_base(f),
        ));
        cases.push((
            "retry_budget_ratio",
            v.clone(),
            Settings::new().retry_budget_ratio(f),
        ));
        cases.push((
            "retry_budget_min_per_second",
            v.clone(),
            Settings::new().retry_budget_min_per_second(f),
        ));
        cases.push(("failure_rate", v, Settings::new().failure_rate(Some(f))));
    }
    for n in counts {
        let v = n.to_string();
        cases.push(("max_attempts", v.clone(), Settings::new().max_attempts(n)));
        cases.push((
            "retry_budget_capacity",
            v.clone(),
            Settings::new().retry_budget_capacity(n),
        ));
        cases.push((
            "failure_threshold",
            v.clone(),
            Settings::new().failure_threshold(n),
        ));
        cases.push((
            "success_threshold",
            v.clone(),
            Settings::new().success_threshold(n),
        ));
        cases.push((
            "half_open_max_calls",
            v.clone(),
            Settings::new().half_open_max_calls(n),
        ));
        cases.push(("window_size", v.clone(), Settings::new().window_size(n)));
        cases.push(("minimum_calls", v, Settings::new().minimum_calls(n)));
    }
    for (k, (method, value, settings)) in cases.into_iter().enumerate() {
        let name = format!("xt-code-{k}");
        match resilience::configure(&name, settings) {
            Ok(p) => {
                // Accepted: the value is one the runtime works with.
                let c = p.config();
                assert!(
                    c.max_delay <= YEAR && c.base_delay <= c.max_delay,
                    "{method}={value}"
                );
                assert!(c.breaker_timeout <= YEAR, "{method}={value}");
                assert!(c.exponential_base.is_finite() && c.exponential_base >= 1.0);
                assert!(c.retry_budget_ratio.is_finite() && c.retry_budget_ratio >= 0.0);
                assert!(
                    c.retry_budget_min_per_second.is_finite()
                        && c.retry_budget_min_per_second >= 0.0
                );
                assert!((1..=1000).contains(&c.max_attempts));
                assert!(
                    c.failure_rate.is_none_or(|r| r > 0.0 && r <= 1.0),
                    "{method}={value}"
                );
            }
            Err(e) => {
                assert_eq!(e.problems().len(), 1, "{method}={value}: {e}");
                let p = &e.problems()[0];
                let text = p.to_string();
                assert!(
                    p.variable == format!("configure(\"{name}\"): Settings::{method}"),
                    "{method}={value}: {text}"
                );
                assert!(!p.value.is_empty() && !p.expected.is_empty(), "{text}");
                assert!(text.contains(&format!("Settings::{method}=")), "{text}");
                assert!(!text.contains('\n'), "{text}");
            }
        }
    }
}

/// The combinations that conflict are refused, naming both settings' values.
#[test]
fn conflicting_extremes_are_refused_with_both_values() {
    let e = resilience::configure(
        "xt-conflict-delay",
        Settings::new().base_delay(YEAR).max_delay(Duration::ZERO),
    )
    .unwrap_err();
    assert_eq!(
        e.problems()[0].to_string(),
        "configure(\"xt-conflict-delay\"): Settings::base_delay=31536000: expected at most the \
         maximum delay (configure(\"xt-conflict-delay\"): Settings::max_delay=0)"
    );
    let e = resilience::configure(
        "xt-conflict-window",
        Settings::new()
            .failure_rate(Some(0.5))
            .window_size(1)
            .minimum_calls(u32::MAX),
    )
    .unwrap_err();
    assert_eq!(
        e.problems()[0].to_string(),
        "configure(\"xt-conflict-window\"): Settings::minimum_calls=4294967295: expected at most \
         the window size (configure(\"xt-conflict-window\"): Settings::window_size=1)"
    );
}
