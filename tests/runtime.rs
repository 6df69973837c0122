//! The retry loop and the breaker together, through `Provider::execute`, on a paused clock.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::TestError;
use resilience::{CircuitState, Jitter, ResilienceError, Settings};
use tokio::time::Instant;

/// No jitter and short, exact delays: 100 ms, 200 ms, 400 ms, …
fn exact() -> Settings {
    Settings::new()
        .jitter(Jitter::None)
        .base_delay(Duration::from_millis(100))
        .max_delay(Duration::from_secs(10))
}

/// The outcome of one attempt: a value, or an error built from the attempt number.
type Outcome = Result<u32, fn(u32) -> TestError>;

/// Runs `outcomes[i]` as the result of attempt `i + 1` (the last one repeats) and returns the
/// call's result and the number of attempts.
async fn run(p: resilience::Provider, outcomes: Vec<Outcome>) -> (Result<u32, TestError>, u32) {
    let n = AtomicU32::new(0);
    let r = p
        .execute(|| {
            let i = n.fetch_add(1, Ordering::SeqCst) as usize;
            let o = outcomes[i.min(outcomes.len() - 1)];
            async move { o.map_err(|f| f(i as u32 + 1)) }
        })
        .await;
    (r, n.load(Ordering::SeqCst))
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_with_backoff_until_success() {
    let p = resilience::configure("rt-transient", exact()).unwrap();
    let t0 = Instant::now();
    let (r, attempts) = run(
        p,
        vec![Err(TestError::Transient), Err(TestError::Transient), Ok(7)],
    )
    .await;
    assert_eq!(r, Ok(7));
    assert_eq!(attempts, 3);
    assert_eq!(
        t0.elapsed(),
        Duration::from_millis(100 + 200),
        "delays 100 ms then 200 ms"
    );
    assert_eq!(p.consecutive_failures(), 0);
}

#[tokio::test(start_paused = true)]
async fn max_attempts_is_enforced_and_the_last_error_is_returned_unchanged() {
    let p = resilience::configure("rt-exhaust", exact().max_attempts(4)).unwrap();
    let (r, attempts) = run(p, vec![Err(TestError::Transient)]).await;
    assert_eq!(attempts, 4, "RETRY_MAX_ATTEMPTS counts the first attempt");
    assert_eq!(
        r,
        Err(TestError::Transient(4)),
        "the error of the last attempt, unchanged"
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_return_at_once_and_leave_the_breaker_alone() {
    let p = resilience::configure("rt-permanent", exact().failure_threshold(1)).unwrap();
    let t0 = Instant::now();
    let (r, attempts) = run(p, vec![Err(TestError::Permanent)]).await;
    assert_eq!((r, attempts), (Err(TestError::Permanent(1)), 1));
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert_eq!(
        p.state(),
        CircuitState::Closed,
        "a permanent error is not a breaker failure"
    );
}

#[tokio::test(start_paused = true)]
async fn throttled_waits_at_least_retry_after_and_is_no_breaker_failure() {
    let p = resilience::configure("rt-throttled", exact().failure_threshold(1)).unwrap();
    let t0 = Instant::now();
    let (r, attempts) = run(
        p,
        vec![
            Err(|n| TestError::Throttled(n, Some(Duration::from_secs(2)))),
            Ok(1),
        ],
    )
    .await;
    assert_eq!((r, attempts), (Ok(1), 2));
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(2),
        "Retry-After 2 s beats the 100 ms backoff"
    );
    assert_eq!(p.state(), CircuitState::Closed);

    // Without Retry-After, the backoff applies.
    let t1 = Instant::now();
    let (r, _) = run(p, vec![Err(|n| TestError::Throttled(n, None)), Ok(2)]).await;
    assert_eq!(r, Ok(2));
    assert_eq!(t1.elapsed(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn retry_after_above_max_delay_fails_with_the_last_error_without_waiting() {
    let p = resilience::configure(
        "rt-retry-after-cap",
        exact().max_delay(Duration::from_secs(5)),
    )
    .unwrap();
    let t0 = Instant::now();
    let (r, attempts) = run(
        p,
        vec![
            Err(|n| TestError::Throttled(n, Some(Duration::from_secs(30)))),
            Ok(1),
        ],
    )
    .await;
    assert_eq!(attempts, 1);
    assert_eq!(
        r,
        Err(TestError::Throttled(1, Some(Duration::from_secs(30))))
    );
    assert_eq!(t0.elapsed(), Duration::ZERO);
}

/// An error that wraps `HttpError` the way the README shows, forwarding `retry_after()` when
/// `FORWARD` is set.
#[derive(Debug)]
enum Wrapped<const FORWARD: bool> {
    Http(resilience::HttpError),
    Resilience(ResilienceError),
}

impl<const F: bool> From<ResilienceError> for Wrapped<F> {
    fn from(e: ResilienceError) -> Self {
        Wrapped::Resilience(e)
    }
}

impl<const FORWARD: bool> resilience::Classify for Wrapped<FORWARD> {
    fn classify(&self) -> resilience::ErrorClass {
        match self {
            Wrapped::Http(e) => e.classify(),
            Wrapped::Resilience(e) => e.classify(),
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Wrapped::Http(e) if FORWARD => e.retry_after(),
            _ => None,
        }
    }
}

/// Calls `p` with a 503 carrying `Retry-After: retry_after` for the first `failures`
/// attempts, then success; returns the result, the attempts and the time taken.
async fn http_503s<const F: bool>(
    p: resilience::Provider,
    failures: u32,
    retry_after: &str,
) -> (Result<u32, Wrapped<F>>, u32, Duration) {
    let n = AtomicU32::new(0);
    let t0 = Instant::now();
    let r = p
        .execute(|| {
            let i = n.fetch_add(1, Ordering::SeqCst);
            let ra = retry_after.to_owned();
            async move {
                if i < failures {
                    Err(Wrapped::Http(resilience::HttpError::from_header(
                        503,
                        Some(&ra),
                    )))
                } else {
                    Ok(i + 1)
                }
            }
        })
        .await;
    (r, n.load(Ordering::SeqCst), t0.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_503s_retry_after_is_waited_for_and_still_counts_against_the_breaker() {
    let p = resilience::configure("rt-503-retry-after", exact().failure_threshold(10)).unwrap();
    let (r, attempts, took) = http_503s::<true>(p, 2, "2").await;
    assert_eq!((r.unwrap(), attempts), (3, 3));
    assert_eq!(
        took,
        Duration::from_secs(4),
        "Retry-After 2 s, twice, beats 100 + 200 ms"
    );

    let (r, attempts, took) = http_503s::<true>(p, 9, "1").await;
    assert!(
        matches!(r, Err(Wrapped::Http(ref e)) if e.status() == 503),
        "{r:?}"
    );
    assert_eq!((attempts, took), (3, Duration::from_secs(2)));
    assert_eq!(p.consecutive_failures(), 3, "each 503 is a breaker failure");

    // Above the max delay (10 s): the call gives up at once with the 503.
    let (r, attempts, took) = http_503s::<true>(p, 9, "30").await;
    assert!(r.is_err());
    assert_eq!((attempts, took), (1, Duration::ZERO));

    // An error type that does not forward `retry_after()` gets the plain backoff.
    let (r, attempts, took) = http_503s::<false>(p, 1, "2").await;
    assert_eq!((r.unwrap(), attempts), (2, 2));
    assert_eq!(took, Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn total_deadline_stops_retries_that_would_pass_it() {
    let p = resilience::configure(
        "rt-deadline",
        exact()
            .max_attempts(10)
            .base_delay(Duration::from_secs(1))
            .total_timeout(Some(Duration::from_millis(3500))),
    )
    .unwrap();
    let t0 = Instant::now();
    let (r, attempts) = run(p, vec![Err(TestError::Transient)]).await;
    // Attempts at 0 s, 1 s, 3 s; the next would be at 7 s, past the 3.5 s deadline.
    assert_eq!(attempts, 3);
    assert_eq!(r, Err(TestError::Transient(3)));
    assert_eq!(t0.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_is_transient_and_retried() {
    let p = resilience::configure(
        "rt-attempt-timeout",
        exact().attempt_timeout(Some(Duration::from_secs(1))),
    )
    .unwrap();
    let n = AtomicU32::new(0);
    let t0 = Instant::now();
    let r: Result<u32, TestError> = p
        .execute(|| {
            let first = n.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    tokio::time::sleep(Duration::from_secs(3600)).await; // hangs
                }
                Ok(5)
            }
        })
        .await;
    assert_eq!(r, Ok(5));
    assert_eq!(n.load(Ordering::SeqCst), 2);
    assert_eq!(t0.elapsed(), Duration::from_millis(1000 + 100));

    let (r, _) = {
        let p = resilience::configure(
            "rt-attempt-timeout-2",
            exact()
                .max_attempts(1)
                .attempt_timeout(Some(Duration::from_secs(1))),
        )
        .unwrap();
        let r: Result<u32, TestError> = p.execute(|| async { std::future::pending().await }).await;
        (r, ())
    };
    assert_eq!(
        r,
        Err(TestError::Resilience(ResilienceError::AttemptTimeout {
            provider: "rt-attempt-timeout-2",
            timeout: Duration::from_secs(1)
        }))
    );
}

#[tokio::test(start_paused = true)]
async fn each_attempt_gets_its_own_time_limit() {
    // The call's one timer serves each attempt's limit and each backoff in turn: a limit that
    // fired, then a backoff, must leave the next attempt a whole second of its own.
    let p = resilience::configure(
        "rt-attempt-timeout-each",
        exact().attempt_timeout(Some(Duration::from_secs(1))),
    )
    .unwrap();
    let n = AtomicU32::new(0);
    let t0 = Instant::now();
    let r: Result<u32, TestError> = p
        .execute(|| {
            let attempt = n.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                let work = if attempt < 3 { 3_600_000 } else { 900 };
                tokio::time::sleep(Duration::from_millis(work)).await;
                Ok(attempt)
            }
        })
        .await;
    assert_eq!(r, Ok(3), "the third attempt finishes inside its limit");
    assert_eq!(
        t0.elapsed(),
        Duration::from_millis(1000 + 100 + 1000 + 200 + 900),
        "two limits of 1 s, backoffs of 100 and 200 ms, then 900 ms of work"
    );
}

#[tokio::test(start_paused = true)]
async fn open_breaker_rejects_without_calling_and_rejection_is_not_retried() {
    let p = resilience::configure(
        "rt-reject",
        exact()
            .max_attempts(1)
            .failure_threshold(2)
            .breaker_timeout(Duration::from_secs(30)),
    )
    .unwrap();
    for _ in 0..2 {
        let (r, _) = run(p, vec![Err(TestError::Transient)]).await;
        assert!(matches!(r, Err(TestError::Transient(1))));
    }
    assert_eq!(p.state(), CircuitState::Open);
    let (r, attempts) = run(p, vec![Ok(1)]).await;
    assert_eq!(attempts, 0, "the operation never ran");
    // Matched as issue 2 spells the variant, `CircuitOpen { provider, retry_in }`, with no `..`:
    // code written from the contract must compile (a third field, stop 44's `state`, broke it).
    match r {
        Err(TestError::Resilience(ResilienceError::CircuitOpen {
            provider: "rt-reject",
            retry_in: Some(d),
        })) => {
            assert_eq!(d, Duration::from_secs(30))
        }
        other => panic!("expected CircuitOpen, got {other:?}"),
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    // Two probe successes (the default success threshold) close it again.
    assert_eq!(run(p, vec![Ok(1)]).await, (Ok(1), 1));
    assert_eq!(p.state(), CircuitState::HalfOpen);
    assert_eq!(run(p, vec![Ok(2)]).await, (Ok(2), 1));
    assert_eq!(p.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_call_whose_failure_opens_the_breaker_returns_its_own_error() {
    let p = resilience::configure(
        "rt-open-mid-call",
        exact().max_attempts(5).failure_threshold(2),
    )
    .unwrap();
    let (r, attempts) = run(p, vec![Err(TestError::Transient)]).await;
    assert_eq!(
        attempts, 2,
        "the second failure opened the breaker; no sleeping into a rejection"
    );
    assert_eq!(r, Err(TestError::Transient(2)));
    assert_eq!(p.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_does_not_wedge_the_breaker() {
    let p = resilience::configure(
        "rt-cancel",
        exact()
            .max_attempts(1)
            .failure_threshold(1)
            .breaker_timeout(Duration::from_secs(1)),
    )
    .unwrap();
    let _ = run(p, vec![Err(TestError::Transient)]).await;
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(p.state(), CircuitState::HalfOpen);
    // The probe hangs and its caller gives up: the future is dropped mid-flight.
    let hung = p.execute(|| async { std::future::pending::<Result<u32, TestError>>().await });
    assert!(
        tokio::time::timeout(Duration::from_millis(10), hung)
            .await
            .is_err()
    );
    assert_eq!(
        run(p, vec![Ok(1)]).await,
        (Ok(1), 1),
        "the probe slot was released"
    );
    assert_eq!(run(p, vec![Ok(1)]).await, (Ok(1), 1));
    assert_eq!(p.state(), CircuitState::Closed);
}

/// A switch that is off is said once, as the provider is made: an operator who flips
/// `RESILIENCE_ENABLED=false` sees that it took.
#[test]
fn a_provider_made_with_a_switch_off_says_so_once() {
    let (logs, subscriber) = common::capture();
    tracing::subscriber::with_default(subscriber, || {
        resilience::configure("rt-said-off", Settings::new().enabled(false)).unwrap();
        resilience::configure("rt-said-off", Settings::new().enabled(false)).unwrap();
        let _ = resilience::provider("rt-said-off");
        resilience::configure("rt-said-no-retry", Settings::new().retry_enabled(false)).unwrap();
        resilience::configure(
            "rt-said-no-breaker",
            Settings::new().circuit_breaker_enabled(false),
        )
        .unwrap();
        resilience::configure(
            "rt-said-neither",
            Settings::new()
                .retry_enabled(false)
                .circuit_breaker_enabled(false),
        )
        .unwrap();
        resilience::configure("rt-said-all-on", Settings::new()).unwrap();
    });
    let text = logs.text();
    for (line, times) in [
        (
            "INFO resilience: [CONFIG] Resilience is off for provider rt-said-off (RESILIENCE_ENABLED, \
             RESILIENCE_RT_SAID_OFF_ENABLED or Settings::enabled): each call runs once, directly",
            1,
        ),
        (
            "INFO resilience: [CONFIG] Retries are off for provider rt-said-no-retry",
            1,
        ),
        (
            "INFO resilience: [CONFIG] The circuit breaker is off for provider rt-said-no-breaker \
             (RESILIENCE_CIRCUIT_BREAKER_ENABLED, RESILIENCE_RT_SAID_NO_BREAKER_CIRCUIT_BREAKER_ENABLED",
            1,
        ),
        (
            "INFO resilience: [CONFIG] Retries and the circuit breaker are off for provider \
             rt-said-neither",
            1,
        ),
        ("rt-said-all-on", 0),
    ] {
        assert_eq!(text.matches(line).count(), times, "{line}\n{text}");
    }
    // The field names the setting (the line lists where it may come from).
    let off = text.lines().find(|l| l.contains("rt-said-off")).unwrap();
    assert!(off.contains("setting=\"enabled\""), "{off}");
}

#[tokio::test(start_paused = true)]
async fn spent_budget_returns_the_error_without_retrying() {
    // A budget that earns nothing is its capacity for good: allowed, but said at its making.
    let (logs, subscriber) = common::capture();
    let p = tracing::subscriber::with_default(subscriber, || {
        resilience::configure(
            "rt-budget",
            exact()
                .max_attempts(3)
                .retry_budget_capacity(2)
                .retry_budget_ratio(0.0)
                .retry_budget_min_per_second(0.0)
                .failure_threshold(1000),
        )
        .unwrap()
    });
    let text = logs.text();
    assert!(
        text.contains(
            "WARN resilience: [CONFIG] The retry budget of provider rt-budget never refills \
             (RETRY_BUDGET_RATIO=0 and RETRY_BUDGET_MIN_PER_SECOND=0): after 2 retries"
        ),
        "{text}"
    );
    // Either one above 0 refills it: no warning.
    let (logs, subscriber) = common::capture();
    tracing::subscriber::with_default(subscriber, || {
        for (name, ratio, per_second) in
            [("rt-budget-ratio", 0.1, 0.0), ("rt-budget-clock", 0.0, 1.0)]
        {
            resilience::configure(
                name,
                Settings::new()
                    .retry_budget_ratio(ratio)
                    .retry_budget_min_per_second(per_second),
            )
            .unwrap();
        }
    });
    assert!(!logs.text().contains("never refills"), "{}", logs.text());
    // Nor for a provider allowed one attempt: it never retries, and has nothing to refill.
    let (logs, subscriber) = common::capture();
    tracing::subscriber::with_default(subscriber, || {
        resilience::configure(
            "rt-budget-one-attempt",
            Settings::new()
                .max_attempts(1)
                .retry_budget_ratio(0.0)
                .retry_budget_min_per_second(0.0),
        )
        .unwrap();
    });
    assert!(!logs.text().contains("never refills"), "{}", logs.text());
    let (r, attempts) = run(p, vec![Err(TestError::Transient)]).await;
    assert_eq!(
        (r, attempts),
        (Err(TestError::Transient(3)), 3),
        "two retries fit the budget"
    );
    let (r, attempts) = run(p, vec![Err(TestError::Transient)]).await;
    assert_eq!(
        (r, attempts),
        (Err(TestError::Transient(1)), 1),
        "the budget is spent"
    );
}

/// A call the breaker refuses sends nothing, so it earns no retry: an open breaker's refusals
/// must not fill the bucket for the moment it closes. Both ways in: a plain call, and one with
/// a deadline (which starts with an `Ext`). Calls the breaker admits still earn theirs.
#[tokio::test(start_paused = true)]
async fn refused_calls_earn_no_retry_budget() {
    for (name, settings) in [
        ("rt-refused-earn", exact()),
        (
            "rt-refused-earn-deadline",
            exact().total_timeout(Some(Duration::from_secs(60))),
        ),
    ] {
        let p = resilience::configure(
            name,
            settings
                .max_attempts(3)
                .retry_budget_capacity(10)
                .retry_budget_ratio(0.5)
                .retry_budget_min_per_second(0.0)
                .failure_threshold(1000),
        )
        .unwrap();
        // Two retries spent (the call found the bucket full: nothing to earn).
        let (r, attempts) = run(p, vec![Err(TestError::Transient)]).await;
        assert_eq!((r, attempts), (Err(TestError::Transient(3)), 3), "{name}");
        assert_eq!(p.retry_budget_available(), 8.0, "{name}");

        p.force_open();
        for _ in 0..20 {
            let (r, attempts) = run(p, vec![Ok(1)]).await;
            assert!(matches!(r, Err(TestError::Resilience(_))), "{name}: {r:?}");
            assert_eq!(attempts, 0, "{name}");
        }
        assert_eq!(
            p.retry_budget_available(),
            8.0,
            "{name}: 20 refused calls earned nothing"
        );

        p.disable_breaker();
        let (r, _) = run(p, vec![Ok(1)]).await;
        assert_eq!(r, Ok(1), "{name}");
        assert_eq!(
            p.retry_budget_available(),
            8.5,
            "{name}: an admitted call earns"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn providers_are_isolated() {
    let a =
        resilience::configure("rt-iso-a", exact().max_attempts(1).failure_threshold(1)).unwrap();
    let b = resilience::provider("rt-iso-b");
    let _ = run(a, vec![Err(TestError::Transient)]).await;
    assert_eq!(a.state(), CircuitState::Open);
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(run(b, vec![Ok(3)]).await, (Ok(3), 1));
    // The same name from anywhere is the same breaker.
    assert_eq!(resilience::provider("rt-iso-a").state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn disable_switches() {
    // RESILIENCE_ENABLED=false: once, directly, even with the breaker forced open.
    let off = resilience::configure("rt-off", exact().enabled(false)).unwrap();
    assert_eq!(off.state(), CircuitState::Disabled, "calls never reach it");
    let seen: Result<u32, TestError> = off
        .execute(|| async { Ok(resilience::current_call().map_or(0, |c| c.max_attempts)) })
        .await;
    assert_eq!(seen, Ok(1), "one attempt, and it says so");
    off.force_open();
    assert_eq!(
        run(off, vec![Err(TestError::Transient), Ok(1)]).await,
        (Err(TestError::Transient(1)), 1)
    );
    assert!(resilience::current_call().is_none());
    off.reset();
    assert_eq!(off.state(), CircuitState::Disabled);

    // RESILIENCE_RETRY_ENABLED=false: one attempt, breaker still on.
    let no_retry = resilience::configure(
        "rt-no-retry",
        exact().retry_enabled(false).failure_threshold(1),
    )
    .unwrap();
    assert_eq!(
        run(no_retry, vec![Err(TestError::Transient), Ok(1)]).await,
        (Err(TestError::Transient(1)), 1)
    );
    assert_eq!(no_retry.state(), CircuitState::Open);

    // RESILIENCE_CIRCUIT_BREAKER_ENABLED=false: retries, never opens.
    let no_breaker = resilience::configure(
        "rt-no-breaker",
        exact().circuit_breaker_enabled(false).failure_threshold(1),
    )
    .unwrap();
    for _ in 0..3 {
        assert_eq!(run(no_breaker, vec![Err(TestError::Transient)]).await.1, 3);
    }
    assert_eq!(no_breaker.state(), CircuitState::Disabled);
}

#[tokio::test(start_paused = true)]
async fn current_call_sees_attempts_and_a_stable_idempotency_key() {
    let p = resilience::configure("rt-current", exact()).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let r: Result<(), TestError> = p
        .execute(move || {
            let s = s.clone();
            // The closure is the caller's code too: what it reads before its future is the
            // same call and attempt as inside.
            let outside = resilience::current_call();
            async move {
                let c = resilience::current_call().unwrap();
                assert_eq!(outside, Some(c));
                s.lock().unwrap().push(c);
                if c.attempt < 3 {
                    Err(TestError::Transient(c.attempt))
                } else {
                    Ok(())
                }
            }
        })
        .await;
    assert!(r.is_ok());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|c| c.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(
        seen.iter()
            .all(|c| c.idempotency_key == seen[0].idempotency_key
                && c.provider == "rt-current"
                && c.method == "execute"
                && c.max_attempts == 3)
    );
    let other: Result<_, TestError> = p
        .execute(|| async { Ok(resilience::current_call().unwrap().idempotency_key) })
        .await;
    assert_ne!(
        other.unwrap(),
        seen[0].idempotency_key,
        "a new logical call gets a new key"
    );
}

#[tokio::test(start_paused = true)]
async fn reset_and_force_open() {
    let p = resilience::provider("rt-manual");
    p.force_open();
    assert_eq!(p.state(), CircuitState::ForcedOpen);
    let (r, attempts) = run(p, vec![Ok(1)]).await;
    assert_eq!(attempts, 0);
    let Err(TestError::Resilience(e @ ResilienceError::CircuitOpen { retry_in: None, .. })) = r
    else {
        panic!("{r:?}");
    };
    // No "is open" without a time: the text names both states that give none.
    assert_eq!(
        e.to_string(),
        "circuit breaker for provider `rt-manual` rejected the call: forced open (until it is \
         reset), or half-open (until its probes answer)"
    );
    p.reset();
    assert_eq!(run(p, vec![Ok(1)]).await, (Ok(1), 1));
}

#[tokio::test(start_paused = true)]
async fn a_provider_that_hangs_opens_the_breaker_with_only_a_deadline_set() {
    let p = resilience::configure(
        "rt-hang-deadline",
        exact()
            .failure_threshold(2)
            .total_timeout(Some(Duration::from_millis(100))),
    )
    .unwrap();
    for _ in 0..2 {
        let r: Result<u32, TestError> = p.execute(|| async { std::future::pending().await }).await;
        assert!(
            matches!(
                r,
                Err(TestError::Resilience(
                    ResilienceError::DeadlineExceeded { .. }
                ))
            ),
            "{r:?}"
        );
    }
    assert_eq!(
        p.state(),
        CircuitState::Open,
        "timeouts are breaker failures whatever their class"
    );
}

/// A provider whose calls have a 100 ms deadline, with this base delay (no jitter) and breaker
/// threshold.
fn with_deadline(name: &str, base_delay: Duration, failure_threshold: u32) -> resilience::Provider {
    resilience::configure(
        name,
        exact()
            .base_delay(base_delay)
            .failure_threshold(failure_threshold)
            .total_timeout(Some(Duration::from_millis(100))),
    )
    .unwrap()
}

/// A Retry-After that ends the sleep half a millisecond before the deadline: Tokio's timer
/// wakes on the deadline's tick, and the retry would have started with no time, been cut off,
/// and counted as a breaker failure. The call gives up at once with the throttled error.
#[tokio::test(start_paused = true)]
async fn no_retry_is_scheduled_within_a_timer_tick_of_the_deadline() {
    let p = with_deadline("rt-deadline-tick", Duration::from_millis(1), 1);
    let calls = AtomicU32::new(0);
    let r: Result<u32, TestError> = p
        .execute(|| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if n == 1 {
                    return Err(TestError::Throttled(n, Some(Duration::from_micros(99_500))));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok(n)
            }
        })
        .await;
    assert_eq!(
        r,
        Err(TestError::Throttled(1, Some(Duration::from_micros(99_500))))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        p.state(),
        CircuitState::Closed,
        "the provider was given no time"
    );
}

/// A backoff timer that wakes after the deadline, or less than a timer tick before it (a busy
/// runtime; here the clock is moved on by hand while the call sleeps): no attempt is started,
/// so none is cut off at once and counted against the provider; the call ends with
/// `DeadlineExceeded`.
#[tokio::test(start_paused = true)]
async fn a_backoff_that_wakes_past_the_deadline_starts_no_attempt() {
    for (name, late) in [("rt-deadline-late", 150_000), ("rt-deadline-just", 99_800)] {
        late_wake(name, Duration::from_micros(late)).await;
    }
}

async fn late_wake(name: &'static str, late: Duration) {
    let p = with_deadline(name, Duration::from_millis(10), 2);
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    let call = tokio::spawn(async move {
        p.execute(|| {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if n == 1 {
                    return Err(TestError::Transient(n));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok::<u32, TestError>(n)
            }
        })
        .await
    });
    // The first attempt fails and the call sleeps its 10 ms backoff; the clock then jumps
    // past the deadline before the call is polled again.
    tokio::task::yield_now().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::advance(late).await;
    let r = call.await.unwrap();
    assert!(
        matches!(
            r,
            Err(TestError::Resilience(
                ResilienceError::DeadlineExceeded { .. }
            ))
        ),
        "{r:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "{name}: no second attempt");
    assert_eq!(
        p.consecutive_failures(),
        1,
        "{name}: only the first attempt's failure"
    );
}

/// A call nested in an attempt on the same provider, ending in its backoff at the deadline,
/// tells the outer attempt that its failure was counted, as every other failing end does: the
/// outer attempt, failing with it, does not count it again.
#[tokio::test(start_paused = true)]
async fn a_nested_call_ending_in_its_backoff_is_counted_once() {
    let p = with_deadline("rt-deadline-nested", Duration::from_millis(10), 5);
    let outer = tokio::spawn(async move {
        p.execute(|| async move {
            let inner: Result<u32, TestError> =
                p.execute(|| async { Err(TestError::Transient(1)) }).await;
            inner.map_err(|_| TestError::Transient(9))
        })
        .await
    });
    tokio::task::yield_now().await;
    tokio::time::advance(Duration::from_millis(150)).await;
    assert_eq!(outer.await.unwrap(), Err(TestError::Transient(9)));
    assert_eq!(
        p.consecutive_failures(),
        1,
        "the inner attempt's failure, counted once"
    );
}

#[tokio::test(start_paused = true)]
async fn force_open_works_with_the_breaker_switched_off() {
    let p = resilience::configure("rt-off-forced", exact().circuit_breaker_enabled(false)).unwrap();
    p.force_open();
    let (r, attempts) = run(p, vec![Ok(7)]).await;
    assert_eq!(attempts, 0);
    assert!(matches!(
        r,
        Err(TestError::Resilience(ResilienceError::CircuitOpen { .. }))
    ));
    p.reset();
    assert_eq!(p.state(), CircuitState::Disabled);
    assert_eq!(run(p, vec![Ok(7)]).await, (Ok(7), 1));
}

/// A Tokio runtime built without its time driver: Tokio's `sleep` panics there, and it offers
/// no way to ask first. The call makes its one attempt, runs it without its time limit, and
/// returns its own error: no panic reaches the caller.
#[test]
fn a_runtime_without_timers_makes_one_attempt_and_does_not_panic() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let p = resilience::configure("rt-no-timers", exact()).unwrap();
    let (r, attempts) = rt.block_on(run(p, vec![Err(TestError::Transient), Ok(1)]));
    assert_eq!((r, attempts), (Err(TestError::Transient(1)), 1));
    let limited = resilience::configure(
        "rt-no-timers-limited",
        exact().attempt_timeout(Some(Duration::from_secs(1))),
    )
    .unwrap();
    let (r, attempts) = rt.block_on(run(limited, vec![Ok(5)]));
    assert_eq!((r, attempts), (Ok(5), 1), "run without its time limit");
    // A timed attempt that fails: no time limit, then no retry (one caught panic, not two).
    let (r, attempts) = rt.block_on(run(limited, vec![Err(TestError::Transient), Ok(1)]));
    assert_eq!((r, attempts), (Err(TestError::Transient(1)), 1));
}

/// No runtime at all (another executor): one attempt, no panic.
#[test]
fn outside_any_runtime_a_call_makes_one_attempt() {
    let p = resilience::configure("rt-no-runtime", exact()).unwrap();
    let call = std::pin::pin!(run(p, vec![Err(TestError::Transient), Ok(1)]));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::future::Future::poll(call, &mut cx) {
        std::task::Poll::Ready(out) => assert_eq!(out, (Err(TestError::Transient(1)), 1)),
        std::task::Poll::Pending => panic!("a call with nothing to wait for is pending"),
    }
}

/// A loopback server that answers each request with the next of `answers` (raw HTTP, written
/// as is, then the connection is closed), the last one repeating; a `None` answer sends
/// headers promising 100 bytes and one byte, then holds the connection open.
async fn raw_server(answers: Vec<Option<&'static str>>) -> (String, Arc<AtomicU32>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicU32::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let n = counted.fetch_add(1, Ordering::SeqCst) as usize;
            let answer = answers[n.min(answers.len() - 1)];
            tokio::spawn(async move {
                let _ = s.read(&mut [0u8; 4096]).await;
                match answer {
                    Some(raw) => {
                        let _ = s.write_all(raw.as_bytes()).await;
                    }
                    None => {
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
                            .await;
                        std::future::pending::<()>().await;
                    }
                }
            });
        }
    });
    (url, hits)
}

const CUT_SHORT: &str = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"id\":";
const OK_JSON: &str =
    "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"id\":\"f1\"}";
const BAD_JSON: &str = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot json!";
const CUT_JSON: &str = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"id\":";
const GARBLED_CHUNK: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{\"id\"\r\nZZ\r\n";
const EMPTY: &str = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// reqwest takes any status from 100 to 999: `check_status()` lets through 2xx, 304 and an
/// upgrade's 101 only, so a broken server's 600–999 is an error (permanent), not a success the breaker
/// counts; so is a 3xx that reqwest did not follow.
#[tokio::test]
async fn check_status_refuses_statuses_above_599() {
    use resilience::{Classify, ErrorClass, ResponseExt};
    let (url, _) = raw_server(vec![
        Some("HTTP/1.1 799 Weird\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        Some("HTTP/1.1 600 Weird\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        Some("HTTP/1.1 399 Odd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    ])
    .await;
    let client = common::client();
    for status in [799, 600] {
        let resp = client.get(&url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status);
        let e = resp.check_status().unwrap_err();
        assert_eq!(e.status(), status);
        assert_eq!(e.classify(), ErrorClass::Permanent, "{status}");
    }
    let resp = client.get(&url).send().await.unwrap();
    let e = resp.check_status().unwrap_err();
    assert_eq!((e.status(), e.classify()), (399, ErrorClass::Permanent));
}

/// A 101 to a request that asked for no upgrade (a broken or hostile server, a proxy): the
/// upload had no answer, and `check_status()` passed it as a success, recorded as done. Only a
/// 101 that switches protocols (`Upgrade`) passes, for reqwest's `upgrade()`.
#[tokio::test]
async fn check_status_passes_a_101_only_with_an_upgrade() {
    use resilience::{Classify, ErrorClass, ResponseExt};
    let (url, _) = raw_server(vec![
        Some("HTTP/1.1 101 Switching Protocols\r\nConnection: close\r\n\r\n"),
        Some(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: \
             websocket\r\n\r\n",
        ),
    ])
    .await;
    let client = common::client();
    let resp = client.post(&url).body("file").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    let e = resp.check_status().unwrap_err();
    assert_eq!((e.status(), e.classify()), (101, ErrorClass::Permanent));
    let resp = client
        .get(&url)
        .header("Connection", "upgrade")
        .header("Upgrade", "websocket")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    assert!(resp.check_status().is_ok());
}

/// A 307 for a file sent as a stream: reqwest cannot send the body again, so it returns the
/// redirect, and the file went nowhere. `check_status()` passed it on as a success (an upload
/// that reads no body recorded it as done); it is a permanent error.
#[tokio::test]
async fn check_status_refuses_a_redirect_left_unfollowed_for_a_streamed_body() {
    use resilience::{Classify, ErrorClass, ResponseExt};
    let (url, hits) = raw_server(vec![Some(
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n",
    )])
    .await;
    let chunks = [Ok::<_, std::io::Error>(b"file".to_vec())];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let resp = common::client().put(&url).body(body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 307);
    assert_eq!(hits.load(Ordering::SeqCst), 1, "not followed");
    let e = resp.check_status().unwrap_err();
    assert_eq!((e.status(), e.classify()), (307, ErrorClass::Permanent));
}

/// reqwest reports every failure of `bytes()`/`text()`/`json()` as a decode error; only a body
/// that arrived whole and is not the JSON expected is permanent.
#[tokio::test]
async fn reqwest_body_failures_are_transient_and_bad_json_permanent() {
    use resilience::{Classify, ErrorClass};
    let client = common::client();
    let cases = [
        (
            CUT_SHORT,
            ErrorClass::Transient,
            "connection closed mid-body",
        ),
        (
            CUT_JSON,
            ErrorClass::Transient,
            "JSON cut short, no length sent",
        ),
        (
            BAD_JSON,
            ErrorClass::Permanent,
            "a whole body that is not JSON",
        ),
        (
            EMPTY,
            ErrorClass::Transient,
            "an empty body: JSON that ends early, as a cut one does",
        ),
        (
            GARBLED_CHUNK,
            ErrorClass::Transient,
            "a garbled chunked body (hyper's InvalidInput: not a local error)",
        ),
    ];
    for (raw, class, what) in cases {
        let (url, _) = raw_server(vec![Some(raw)]).await;
        let resp = client.get(&url).send().await.unwrap();
        let e = resp.json::<serde_json::Value>().await.err().unwrap();
        assert!(e.is_decode(), "{what}: {e:?}");
        assert_eq!(e.classify(), class, "{what}: {e:?}");
    }
    // The client's timeout firing while the body is read.
    let (url, _) = raw_server(vec![None]).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let e = client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap_err();
    assert!(e.is_timeout() && e.is_decode(), "{e:?}");
    assert_eq!(e.classify(), ErrorClass::Transient, "{e:?}");
}

/// A body that is JSON but not of the shape expected: serde_json's error quotes the value it
/// met (`invalid type: string "…", expected u64`), the provider's own text, which may echo
/// what it was sent (a key, a token). The log text says where the JSON went wrong, not what
/// it held; reqwest's own text said neither.
#[tokio::test]
async fn a_json_body_of_the_wrong_shape_is_logged_without_its_values() {
    use resilience::{Classify, ErrorClass};
    // A body such as `{"id": 42}` was expected.
    const ECHOED: &str = "HTTP/1.1 200 OK\r\nContent-Length: 28\r\nConnection: close\r\n\r\n\
                          {\"id\":\"sk-live-BODY-SECRET\"}";
    let (url, _) = raw_server(vec![Some(ECHOED)]).await;
    let resp = common::client().get(&url).send().await.unwrap();
    let e = resp
        .json::<std::collections::HashMap<String, u64>>()
        .await
        .unwrap_err();
    assert_eq!(e.classify(), ErrorClass::Permanent, "{e:?}");
    // What the runtime logs: the summary, redacted.
    let logged = resilience::redact(&e.log_summary().unwrap());
    assert!(!logged.contains("BODY-SECRET"), "{logged}");
    assert!(
        logged.starts_with("error decoding response body"),
        "{logged}"
    );
    assert!(logged.contains("line 1 column"), "{logged}");
}

/// A request body streamed from a file that cannot be read fails the request with the
/// stream's `io::Error` inside: a local fault, permanent (retried, it counted against the
/// provider's breaker). The server only reads, so the body's failure is the only one.
#[tokio::test]
async fn a_request_body_that_fails_locally_is_permanent() {
    use resilience::{Classify, ErrorClass};
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/upload", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    });
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"first chunk".to_vec()),
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "reading /home/alice/.config/kimi/key failed: token=STREAM-SECRET-9",
        )),
    ];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let e = common::client()
        .post(&url)
        .body(body)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.classify(), ErrorClass::Permanent, "{e:?}");
    // The stream's own message (a path, a token) is the application's text, not reqwest's or
    // the OS's: logged as its kind, as an `io::Error` of the method's own is.
    let logged = e.log_summary().unwrap();
    assert!(
        !logged.contains("STREAM-SECRET") && !logged.contains("alice"),
        "{logged}"
    );
    assert!(logged.ends_with("io error: permission denied"), "{logged}");
}

/// The OS's text for a refused connection is kept on the log line: it says what happened,
/// and carries nothing of the caller's.
#[tokio::test]
async fn a_refused_connection_logs_the_os_text() {
    use resilience::Classify;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/upload", listener.local_addr().unwrap());
    drop(listener);
    let e = common::client().get(&url).send().await.unwrap_err();
    let logged = e.log_summary().unwrap();
    assert!(logged.contains("(os error "), "{logged}");
}

/// End to end: a body cut short is retried, and the next attempt's answer is the call's.
#[tokio::test]
async fn a_body_cut_short_is_retried() {
    let (url, hits) = raw_server(vec![Some(CUT_SHORT), Some(OK_JSON)]).await;
    let p =
        resilience::configure("rt-body-cut", exact().base_delay(Duration::from_millis(1))).unwrap();
    let client = common::client();
    let r: Result<String, common::UploadError> = p
        .execute(|| async {
            let resp = client
                .get(&url)
                .send()
                .await
                .map_err(common::UploadError::Network)?;
            let v: serde_json::Value = resp.json().await.map_err(common::UploadError::Network)?;
            Ok(v["id"].as_str().unwrap_or_default().to_owned())
        })
        .await;
    assert_eq!(r.unwrap(), "f1");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

/// An `io::Error` carrying an `HttpError` is classified as the status, with its `Retry-After`
/// (a body read through `StreamReader`, or `io::Error::other(..)`).
#[test]
fn an_io_error_wrapping_an_http_error_keeps_its_class_and_retry_after() {
    use resilience::{Classify, ErrorClass, HttpError};
    let e = std::io::Error::other(HttpError::from_header(503, Some("2")));
    assert_eq!(e.classify(), ErrorClass::Transient);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(
        e.log_summary().as_deref(),
        Some(HttpError::from_header(503, Some("2")).to_string().as_str())
    );
    let e = std::io::Error::other(HttpError::from_header(404, None));
    assert_eq!(e.classify(), ErrorClass::Permanent);
    let plain = std::io::Error::other("boom");
    assert_eq!(plain.classify(), ErrorClass::Permanent);
    assert_eq!(plain.retry_after(), None);
    // An io::Error inside one keeps the outer kind.
    let nested = std::io::Error::new(std::io::ErrorKind::TimedOut, std::io::Error::other("x"));
    assert_eq!(nested.classify(), ErrorClass::Transient);
}

/// A method may return `anyhow::Result` (the `anyhow` feature): classified by the errors in its
/// chain, unknown ones permanent; an open breaker comes back inside it.
#[resilience::resilient(provider = "rt-anyhow")]
async fn anyhow_call(n: &AtomicU32) -> anyhow::Result<u32> {
    use anyhow::Context;
    match n.fetch_add(1, Ordering::SeqCst) {
        0 => Err(resilience::HttpError::from_header(503, None)).context("uploading a.txt")?,
        1 => Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))?,
        2 => anyhow::bail!("a failure we cannot classify"),
        i => Ok(i),
    }
}

#[tokio::test(start_paused = true)]
async fn anyhow_errors_are_classified_by_their_chain() {
    use resilience::{Classify, ErrorClass};
    let p = resilience::configure("rt-anyhow", exact().max_attempts(5)).unwrap();
    let n = AtomicU32::new(0);
    // A 503 and a reset connection are retried; the unknown error is returned at once.
    let e = anyhow_call(&n).await.unwrap_err();
    assert_eq!(n.load(Ordering::SeqCst), 3);
    assert_eq!(e.to_string(), "a failure we cannot classify");
    assert_eq!(e.classify(), ErrorClass::Permanent);
    let throttled: anyhow::Error = resilience::HttpError::from_header(429, Some("3")).into();
    assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)));
    // A 503 inside an io::Error (a body read as a stream), under a context: the io::Error's
    // own Classify finds it, though anyhow's chain cannot see past the io::Error.
    let streamed = anyhow::Error::new(std::io::Error::other(resilience::HttpError::from_header(
        503,
        Some("2"),
    )))
    .context("reading the body");
    assert_eq!(streamed.classify(), ErrorClass::Transient);
    assert_eq!(streamed.retry_after(), Some(Duration::from_secs(2)));
    // A rejection comes back inside anyhow.
    p.force_open();
    let e = anyhow_call(&n).await.unwrap_err();
    assert!(matches!(
        e.downcast_ref::<ResilienceError>(),
        Some(ResilienceError::CircuitOpen { .. })
    ));
    assert_eq!(n.load(Ordering::SeqCst), 3);
}

/// A type of the user's own that derives `Classify` is found in an error chain too, with its
/// class and `Retry-After` (from helper-100's review: a transient error of one's own, `?`'d into
/// an `anyhow::Result`, was permanent there, never retried). Also through thiserror's
/// `#[error(transparent)]`, which hides the `ResilienceError` inside from anyhow's chain.
#[derive(Debug, thiserror::Error, resilience::Classify)]
enum Own {
    #[error("overloaded")]
    #[classify(transient)]
    Overloaded,
    #[error(transparent)]
    #[classify(transparent)]
    Resilience(#[from] ResilienceError),
    #[error("bad request")]
    #[classify(permanent)]
    Bad,
}

/// Derives `Classify` but is no `Error`: nothing to find in a chain, and still compiles.
#[derive(Debug, resilience::Classify)]
#[classify(transient)]
#[allow(dead_code)]
struct NotAnError;

#[resilience::resilient(provider = "rt-anyhow-own")]
async fn anyhow_own(n: &AtomicU32) -> anyhow::Result<u32> {
    use anyhow::Context;
    match n.fetch_add(1, Ordering::SeqCst) {
        0 => Err(Own::Overloaded)?,
        1 => Err(Own::Overloaded).context("uploading a.txt")?,
        i => Ok(i),
    }
}

#[tokio::test(start_paused = true)]
async fn derived_errors_are_found_in_chains() {
    use resilience::{Classify, ErrorClass};
    resilience::configure("rt-anyhow-own", exact().max_attempts(5)).unwrap();
    let n = AtomicU32::new(0);
    assert_eq!(anyhow_own(&n).await.unwrap(), 2, "both retried");
    let of = |e: Own| anyhow::Error::new(e).classify();
    assert_eq!(of(Own::Overloaded), ErrorClass::Transient);
    assert_eq!(of(Own::Bad), ErrorClass::Permanent);
    let timeout = ResilienceError::AttemptTimeout {
        provider: "rt-anyhow-own",
        timeout: Duration::from_secs(1),
    };
    assert_eq!(of(Own::from(timeout)), ErrorClass::Transient);
    // Inside an io::Error too (a body read as a stream).
    assert_eq!(
        std::io::Error::other(Own::Overloaded).classify(),
        ErrorClass::Transient
    );
}

/// `Classify` written by hand: found in chains once named to `classify_in_chains!`, a generic
/// type by each instantiation named.
#[derive(Debug, thiserror::Error)]
#[error("busy")]
struct HandWritten<T: std::fmt::Debug + 'static>(T);

impl<T: std::fmt::Debug> resilience::Classify for HandWritten<T> {
    fn classify(&self) -> resilience::ErrorClass {
        resilience::ErrorClass::Throttled {
            retry_after: Some(Duration::from_secs(7)),
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        Some(Duration::from_secs(7))
    }
}

resilience::classify_in_chains!(HandWritten<u8>,);

#[test]
fn hand_written_errors_named_to_the_macro_are_found_in_chains() {
    use resilience::{Classify, ErrorClass};
    let throttled = ErrorClass::Throttled {
        retry_after: Some(Duration::from_secs(7)),
    };
    let e = anyhow::Error::new(HandWritten(1u8)).context("uploading a.txt");
    assert_eq!(
        (e.classify(), e.retry_after()),
        (throttled, Some(Duration::from_secs(7)))
    );
    let e = std::io::Error::other(HandWritten(1u8));
    assert_eq!(e.classify(), throttled);
    // Not named: another instantiation is not found.
    let e = anyhow::Error::new(HandWritten(1u16));
    assert_eq!(e.classify(), ErrorClass::Permanent);
    // Inside an io::Error inside anyhow: the wrapped type's class, not its source's (an
    // io::Error's `source()` skips what it wraps, to that error's own source).
    let e = anyhow::Error::new(std::io::Error::other(Outer(
        resilience::HttpError::from_header(503, None),
    )));
    assert_eq!(e.classify(), ErrorClass::Permanent);
}

/// Its own class, whatever its source's.
#[derive(Debug, thiserror::Error)]
#[error("outer")]
struct Outer(#[source] resilience::HttpError);

impl resilience::Classify for Outer {
    fn classify(&self) -> resilience::ErrorClass {
        resilience::ErrorClass::Permanent
    }
}

resilience::classify_in_chains!(Outer);

/// A provider opened by one failure, whose timeout has then passed: its next call is a probe.
async fn half_open(name: &'static str, timeout: Duration) -> resilience::Provider {
    let p =
        resilience::configure(name, exact().failure_threshold(1).breaker_timeout(timeout)).unwrap();
    assert_eq!(run(p, vec![Err(TestError::Transient)]).await.1, 1);
    assert_eq!(p.state(), CircuitState::Open);
    tokio::time::advance(timeout).await;
    assert_eq!(p.state(), CircuitState::HalfOpen);
    p
}

/// A call made inside an attempt on the same provider (an upload that fetches a token first,
/// both `#[resilient]` on one provider) is part of that attempt: admitted whenever the attempt
/// was, so a half-open breaker whose one probe slot the outer call holds can still close, and
/// a provider failure it reports is counted once, not again by the attempt that hands it up.
#[tokio::test(start_paused = true)]
async fn a_call_nested_in_an_attempt_on_the_same_provider_is_part_of_it() {
    let inner_attempts = AtomicU32::new(0);
    // A call on `p` whose body makes a nested call on `p`, whose attempts follow `inner`.
    let nested = |p: resilience::Provider, inner: Vec<Outcome>| {
        let inner_attempts = &inner_attempts;
        async move {
            p.execute(move || {
                let inner = inner.clone();
                async move {
                    let (r, n) = run(p, inner).await;
                    inner_attempts.fetch_add(n, Ordering::SeqCst);
                    r
                }
            })
            .await
        }
    };

    let p = resilience::configure("rt-nested", exact().failure_threshold(20)).unwrap();
    let r: Result<u32, TestError> = nested(p, vec![Err(TestError::Transient)]).await;
    assert_eq!(r, Err(TestError::Transient(3)));
    assert_eq!(
        inner_attempts.swap(0, Ordering::SeqCst),
        9,
        "3 attempts of 3"
    );
    assert_eq!(
        p.consecutive_failures(),
        9,
        "the provider's 9 failures, not 3 more for the attempts that handed them up"
    );
    let r: Result<u32, TestError> = nested(p, vec![Err(TestError::Transient), Ok(5)]).await;
    assert_eq!(r, Ok(5));
    assert_eq!(inner_attempts.swap(0, Ordering::SeqCst), 2);
    assert_eq!(p.consecutive_failures(), 0, "reset by the nested success");
    // An attempt's own failure, after a nested call that succeeded, still counts (each of
    // the three: the nested success before it resets the count, so 1 is left).
    let r: Result<u32, TestError> = p
        .execute(|| async {
            run(p, vec![Ok(1)]).await.0?;
            Err::<u32, _>(TestError::Transient(0))
        })
        .await;
    assert_eq!(r, Err(TestError::Transient(0)));
    assert_eq!(p.consecutive_failures(), 1);

    // Three deep, each with one attempt: one failure, counted once.
    let d = resilience::configure("rt-nested-deep", exact().max_attempts(1)).unwrap();
    let r: Result<u32, TestError> = d
        .execute(|| async move {
            d.execute(|| async move {
                d.execute(|| async move { Err::<u32, _>(TestError::Transient(3)) })
                    .await
            })
            .await
        })
        .await;
    assert_eq!(r, Err(TestError::Transient(3)));
    assert_eq!(d.consecutive_failures(), 1);

    // A nested call whose first attempt fails and whose retry succeeds (here after another
    // call's success reset the count, so on the inline path) leaves nothing behind: the
    // attempt's own failure after it counts.
    static ONCE: resilience::CallSite =
        resilience::CallSite::new("rt-nested-stale", "once").without_retry();
    let e = resilience::configure("rt-nested-stale", exact().failure_threshold(20)).unwrap();
    let tries = AtomicU32::new(0);
    let r: Result<u32, TestError> = ONCE
        .execute(|| async {
            let inner: Result<u32, TestError> = e
                .execute(|| async {
                    if tries.fetch_add(1, Ordering::SeqCst) == 0 {
                        return Err(TestError::Transient(1));
                    }
                    // Spawned: a call of its own, not nested in this one.
                    let other = tokio::spawn(async move {
                        e.execute(|| async { Ok::<u32, TestError>(1) }).await
                    });
                    assert_eq!(other.await.unwrap(), Ok(1));
                    assert_eq!(e.consecutive_failures(), 0);
                    Ok(2)
                })
                .await;
            assert_eq!(inner, Ok(2));
            Err(TestError::Transient(0))
        })
        .await;
    assert_eq!(r, Err(TestError::Transient(0)));
    assert_eq!(e.consecutive_failures(), 1, "the attempt's own failure");

    // Half-open: the outer call holds the only probe slot, its nested call is let through,
    // and their success closes the breaker.
    let q = half_open("rt-nested-probe", Duration::from_secs(1)).await;
    for _ in 0..2 {
        assert_eq!(q.state(), CircuitState::HalfOpen);
        let r: Result<u32, TestError> = nested(q, vec![Ok(9)]).await;
        assert_eq!(r, Ok(9), "the probe's nested call was let through");
    }
    assert_eq!(inner_attempts.swap(0, Ordering::SeqCst), 2);
    assert_eq!(q.state(), CircuitState::Closed, "two probes succeeded");
    // Outside an attempt on it, an open breaker rejects as before.
    q.force_open();
    assert!(matches!(
        run(q, vec![Ok(1)]).await,
        (
            Err(TestError::Resilience(ResilienceError::CircuitOpen { .. })),
            0
        )
    ));
    q.reset();
}

/// An error whose `Classify` panics after its first call (a bug in the caller's code).
#[derive(Debug)]
struct PanicsOnSecondLook(Arc<AtomicU32>);

impl From<ResilienceError> for PanicsOnSecondLook {
    fn from(_: ResilienceError) -> Self {
        PanicsOnSecondLook(Arc::new(AtomicU32::new(0)))
    }
}

impl resilience::Classify for PanicsOnSecondLook {
    fn classify(&self) -> resilience::ErrorClass {
        assert_eq!(self.0.fetch_add(1, Ordering::SeqCst), 0, "looked at twice");
        resilience::ErrorClass::Transient
    }
}

/// A probe whose error type's `Classify` panics gives its slot back as the call unwinds,
/// as a panic in the body does; it was held until the probes' wait ran out.
#[tokio::test(start_paused = true)]
async fn a_panicking_classify_gives_the_probe_slot_back() {
    let p = half_open("rt-panicking-classify", Duration::from_secs(5)).await;
    let probe = tokio::spawn(async move {
        p.execute(|| async { Err::<u32, _>(PanicsOnSecondLook(Arc::new(AtomicU32::new(0)))) })
            .await
    });
    assert!(probe.await.unwrap_err().is_panic());
    let (r, attempts) = run(p, vec![Ok(1)]).await;
    assert_eq!(
        (r, attempts),
        (Ok(1), 1),
        "the next call is a probe at once"
    );
}

/// The handles a service keeps can be used across `catch_unwind` and shared between threads
/// as they are, and are printable.
#[test]
fn handles_are_send_sync_unwind_safe_and_debug() {
    fn check<
        T: Send + Sync + std::panic::UnwindSafe + std::panic::RefUnwindSafe + std::fmt::Debug,
    >() {
    }
    check::<resilience::Provider>();
    check::<resilience::CallSite>();
    check::<&'static resilience::CallSite>();
    static SITE: resilience::CallSite = resilience::CallSite::new("unwind-safe", "call");
    let state = std::panic::catch_unwind(|| SITE.provider().state());
    assert_eq!(state.unwrap(), CircuitState::Closed);
    assert!(format!("{SITE:?}").contains("unwind-safe"));
    // One provider per name: equal handles.
    assert_eq!(SITE.provider(), resilience::provider("unwind-safe"));
    assert_ne!(SITE.provider(), resilience::provider("unwind-safe-2"));
    assert_eq!(resilience::ErrorClass::Permanent.to_string(), "permanent");
}

/// `force_open()` while an attempt is in flight: the retry is refused before its backoff (the
/// call returns its own error at once, and takes no budget token) whether or not the breaker
/// is switched off in the configuration, which still honours `force_open()`. Switched off, it
/// slept the backoff and then ended with `CircuitOpen` (helper-111's review).
#[tokio::test(start_paused = true)]
async fn a_forced_open_seen_before_the_backoff_ends_the_call_with_its_own_error() {
    for (name, on) in [("rt-forced-mid-on", true), ("rt-forced-mid-off", false)] {
        let p = resilience::configure(name, exact().circuit_breaker_enabled(on)).unwrap();
        let t0 = Instant::now();
        let r: Result<u32, TestError> = p
            .execute(|| async move {
                p.force_open();
                Err(TestError::Transient(1))
            })
            .await;
        assert_eq!(
            (r, t0.elapsed()),
            (Err(TestError::Transient(1)), Duration::ZERO),
            "breaker enabled: {on}"
        );
        assert_eq!(p.retry_budget_available(), 100.0, "breaker enabled: {on}");
    }
}

/// An owned argument whose copy takes longer than the attempt's time limit.
#[derive(Debug)]
struct SlowClone;

impl Clone for SlowClone {
    fn clone(&self) -> Self {
        // Longer than the limit below, whatever the machine: a sleep is a lower bound.
        std::thread::sleep(Duration::from_millis(300));
        SlowClone
    }
}

#[resilience::resilient(provider = "rt-slow-clone")]
async fn slow_clone(arg: SlowClone) -> Result<u32, TestError> {
    let _ = &arg;
    // Pending until the runtime's timers turn, so that the attempt's is looked at then.
    tokio::time::sleep(Duration::from_millis(1)).await;
    Ok(7)
}

/// The attempt's time limit is the body's: it starts after the per-attempt argument copies,
/// which are the caller's work (helper-121's review: with the attempt begun in the permit,
/// a 300 ms copy used up a 200 ms limit before the body ran).
#[tokio::test]
async fn an_attempt_timeout_does_not_count_the_argument_copies() {
    resilience::configure(
        "rt-slow-clone",
        exact()
            .attempt_timeout(Some(Duration::from_millis(200)))
            .max_attempts(1),
    )
    .unwrap();
    assert_eq!(slow_clone(SlowClone).await.unwrap(), 7);
}

static CLONES: AtomicU32 = AtomicU32::new(0);
static FAILING_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

/// Its second copy (the first retry's) panics.
#[derive(Debug)]
struct PanicsOnRetryCopy;

impl Clone for PanicsOnRetryCopy {
    fn clone(&self) -> Self {
        assert_ne!(CLONES.fetch_add(1, Ordering::SeqCst), 1, "the retry's copy");
        PanicsOnRetryCopy
    }
}

#[resilience::resilient(provider = "rt-copy-panics")]
async fn always_fails(arg: PanicsOnRetryCopy) -> Result<u32, TestError> {
    let _ = &arg;
    Err(TestError::Transient(
        FAILING_ATTEMPTS.fetch_add(1, Ordering::SeqCst) + 1,
    ))
}

/// A retry whose argument copy panics never reached the provider: its budget token is given
/// back, as only retries made spend the budget (helper-121's review: it was kept).
#[tokio::test(start_paused = true)]
async fn a_retry_whose_argument_copy_panics_gives_its_token_back() {
    resilience::configure(
        "rt-copy-panics",
        exact()
            .max_attempts(2)
            .retry_budget_capacity(1)
            .retry_budget_ratio(0.0)
            .retry_budget_min_per_second(0.0),
    )
    .unwrap();
    let r = tokio::spawn(always_fails(PanicsOnRetryCopy)).await;
    assert!(r.unwrap_err().is_panic());
    assert_eq!(FAILING_ATTEMPTS.swap(0, Ordering::SeqCst), 1);
    // The bucket's one token: attempt 1, then the retry it pays for.
    assert!(always_fails(PanicsOnRetryCopy).await.is_err());
    assert_eq!(FAILING_ATTEMPTS.load(Ordering::SeqCst), 2);
}

/// `Provider::call_site`: a site per provider, method and retry flag, made once; labelled
/// with the method; without retry, one attempt; the breaker applies to both.
#[tokio::test(start_paused = true)]
async fn a_provider_s_call_sites_are_made_once_and_keep_their_label_and_retry_flag() {
    let p =
        resilience::configure("rt-site-a", exact().max_attempts(3).failure_threshold(4)).unwrap();
    let other = resilience::configure("rt-site-b", exact()).unwrap();
    let upload = p.call_site("upload");
    assert!(std::ptr::eq(upload, p.call_site("upload")));
    assert!(std::ptr::eq(
        upload,
        resilience::provider("rt-site-a").call_site("upload")
    ));
    let once = p.call_site_without_retry("upload");
    assert!(!std::ptr::eq(upload, once));
    assert!(!std::ptr::eq(upload, p.call_site("create_job")));
    assert!(!std::ptr::eq(upload, other.call_site("upload")));
    assert_eq!(
        (upload.method(), upload.provider().name()),
        ("upload", "rt-site-a")
    );

    let n = AtomicU32::new(0);
    let seen = std::sync::Mutex::new(Vec::new());
    let op = || {
        n.fetch_add(1, Ordering::SeqCst);
        let call = resilience::current_call().unwrap();
        seen.lock().unwrap().push((call.method, call.max_attempts));
        async { Err::<u32, _>(TestError::Transient(0)) }
    };
    assert!(upload.execute(op).await.is_err());
    assert_eq!(n.swap(0, Ordering::SeqCst), 3, "retried to max_attempts");
    assert!(once.execute(op).await.is_err());
    assert_eq!(n.load(Ordering::SeqCst), 1, "one attempt");
    assert_eq!(
        *seen.lock().unwrap(),
        [("upload", 3), ("upload", 3), ("upload", 3), ("upload", 1)]
    );
    // Both count against the provider's one breaker: 3 + 1 failures reach its threshold of 4.
    assert_eq!(p.state(), CircuitState::Open);
    let r = upload.execute(op).await;
    assert!(
        matches!(
            r,
            Err(TestError::Resilience(ResilienceError::CircuitOpen { .. }))
        ),
        "{r:?}"
    );
}

/// Printing a handle moves nothing: `Debug` read the state through `state()`, which moves an
/// open breaker whose timeout has passed to half-open, so a `?provider` in a log line made a
/// transition (its log line and metric) of its own (helper-237).
#[tokio::test(start_paused = true)]
async fn printing_a_provider_moves_no_breaker() {
    let p = resilience::configure(
        "rt-debug-moves-nothing",
        exact()
            .max_attempts(1)
            .failure_threshold(1)
            .breaker_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    common::fail(p, 1).await;
    tokio::time::advance(Duration::from_secs(6)).await;
    let shown = format!("{p:?}");
    assert!(shown.contains("state: Open"), "{shown}");
    assert!(
        format!("{p:?}").contains("state: Open"),
        "moved by the first print"
    );
    assert_eq!(p.state(), CircuitState::HalfOpen, "the timeout has passed");
    assert!(format!("{p:?}").contains("state: HalfOpen"));
    // Hashed as compared: by the provider, not its name. (Clippy's lint sees the breaker's
    // atomics; the hash is the handle's address, which they do not change.)
    #[allow(clippy::mutable_key_type)]
    let set: std::collections::HashSet<_> = [p, p, resilience::provider("rt-debug-other")].into();
    assert_eq!(set.len(), 2);
}
