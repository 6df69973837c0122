//! Edge cases of the metric families: calls cancelled (by `timeout`, by `select!`) mid-attempt,
//! mid-backoff and holding a probe slot; bodies that panic; rejections, an empty budget, the
//! attempts, the deadline and a permanent error; and what each family then says. Its own test
//! binary, with our recorder (`install_recorder`); each test has providers of its own. Every
//! look at the families (`calls`) also checks that each attempt counted has one duration
//! sample under its result, and an attempt not counted (cut off by its caller or a panic) none.

mod common;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use common::{TestError, sample};
use resilience::{CircuitState, Jitter, Settings};

fn render() -> String {
    resilience::telemetry::install_recorder().unwrap().render()
}

/// Every per-call family of `provider`'s `execute`, in one line each.
#[derive(Debug, PartialEq, Default)]
struct Calls {
    success: f64,
    failure: f64,
    rejected: f64,
    abandoned: f64,
    retries: f64,
    a_success: f64,
    a_transient: f64,
    a_throttled: f64,
    a_permanent: f64,
    a_timeout: f64,
    d_success: f64,
    d_failure: f64,
    d_rejected: f64,
}

fn calls(provider: &str) -> Calls {
    let text = render();
    let pm = [("provider", provider), ("method", "execute")];
    let with = |k, v| [pm[0], pm[1], (k, v)];
    let c = |k, v| sample(&text, "resilience_calls_total", &with(k, v)).unwrap_or(0.0);
    let a = |v| sample(&text, "resilience_attempts_total", &with("result", v)).unwrap_or(0.0);
    let d = |v| {
        sample(
            &text,
            "resilience_call_duration_seconds_count",
            &with("outcome", v),
        )
        .unwrap_or(0.0)
    };
    let by_class = |v| {
        sample(
            &text,
            "resilience_attempt_duration_seconds_count",
            &with("result", v),
        )
        .unwrap_or(0.0)
    };
    let calls = Calls {
        success: c("outcome", "success"),
        failure: c("outcome", "failure"),
        rejected: c("outcome", "rejected"),
        abandoned: sample(&text, "resilience_calls_abandoned_total", &pm).unwrap_or(0.0),
        retries: sample(&text, "resilience_retries_total", &pm).unwrap_or(0.0),
        a_success: a("success"),
        a_transient: a("transient"),
        a_throttled: a("throttled"),
        a_permanent: a("permanent"),
        a_timeout: a("timeout"),
        d_success: d("success"),
        d_failure: d("failure"),
        d_rejected: d("rejected"),
    };
    // The error classes share one duration series.
    assert_eq!(
        (by_class("success"), by_class("error"), by_class("timeout")),
        (
            calls.a_success,
            calls.a_transient + calls.a_throttled + calls.a_permanent,
            calls.a_timeout
        ),
        "{provider}: attempt duration samples against attempts counted, {calls:?}"
    );
    calls
}

fn transitions(provider: &str, from: &str, to: &str) -> f64 {
    sample(
        &render(),
        "resilience_circuit_transitions_total",
        &[("provider", provider), ("from", from), ("to", to)],
    )
    .unwrap_or(0.0)
}

fn gauge(provider: &str) -> Vec<(String, f64)> {
    let text = render();
    ["closed", "open", "half_open", "forced_open", "disabled"]
        .iter()
        .map(|s| {
            (
                s.to_string(),
                sample(
                    &text,
                    "resilience_circuit_state",
                    &[("provider", provider), ("state", s)],
                )
                .unwrap_or(-1.0),
            )
        })
        .collect()
}

/// `FutureExt::catch_unwind`, without futures-util's `std` feature.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

fn settings() -> Settings {
    Settings::new()
        .jitter(Jitter::None)
        .base_delay(Duration::from_secs(10))
        .max_delay(Duration::from_secs(60))
}

#[tokio::test(start_paused = true)]
async fn cancelled_by_timeout_mid_attempt() {
    render();
    let p = resilience::configure("edge-timeout-attempt", settings()).unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(1),
        p.execute(std::future::pending::<Result<u32, TestError>>),
    )
    .await;
    assert!(r.is_err());
    assert_eq!(
        calls("edge-timeout-attempt"),
        Calls {
            abandoned: 1.0,
            ..Calls::default()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn cancelled_by_select_mid_backoff() {
    render();
    let p = resilience::configure("edge-select-backoff", settings()).unwrap();
    let full = p.retry_budget_available();
    tokio::select! {
        _ = p.execute(|| async { Err::<u32, _>(TestError::Transient(1)) }) => panic!("ended"),
        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
    assert_eq!(
        calls("edge-select-backoff"),
        Calls {
            abandoned: 1.0,
            a_transient: 1.0,
            ..Calls::default()
        }
    );
    assert!(p.retry_budget_available() >= full - 1e-9);
}

#[tokio::test(start_paused = true)]
async fn cancelled_holding_a_probe_slot() {
    render();
    let name = "edge-probe-cancel";
    let p = resilience::configure(
        name,
        settings()
            .max_attempts(1)
            .failure_threshold(1)
            .success_threshold(1)
            .breaker_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    assert!(
        p.execute(|| async { Err::<u32, _>(TestError::Transient(1)) })
            .await
            .is_err()
    );
    assert_eq!(p.state(), CircuitState::Open);
    tokio::time::advance(Duration::from_secs(5)).await;
    let r = tokio::time::timeout(
        Duration::from_secs(1),
        p.execute(std::future::pending::<Result<u32, TestError>>),
    )
    .await;
    assert!(r.is_err());
    assert_eq!(p.state(), CircuitState::HalfOpen);
    // The slot is free again: the next call is the probe, and closes it.
    assert_eq!(p.execute(|| async { Ok::<_, TestError>(3) }).await, Ok(3));
    assert_eq!(p.state(), CircuitState::Closed);
    assert_eq!(
        calls(name),
        Calls {
            abandoned: 1.0,
            success: 1.0,
            failure: 1.0,
            a_success: 1.0,
            a_transient: 1.0,
            d_success: 1.0,
            d_failure: 1.0,
            ..Calls::default()
        }
    );
    for (from, to) in [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ] {
        assert_eq!(transitions(name, from, to), 1.0, "{from} → {to}");
    }
    assert_eq!(transitions(name, "half_open", "open"), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_body_caught_with_catch_unwind() {
    render();
    let name = "edge-panic-catch";
    let p = resilience::configure(name, settings()).unwrap();
    let r = CatchUnwind(Box::pin(p.execute(|| async {
        if true {
            panic!("body panics");
        }
        Ok::<u32, TestError>(1)
    })))
    .await;
    assert!(r.is_err());
    assert_eq!(
        calls(name),
        Calls {
            abandoned: 1.0,
            ..Calls::default()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_probe_in_a_spawned_task() {
    render();
    let name = "edge-panic-probe";
    let p = resilience::configure(
        name,
        settings()
            .max_attempts(1)
            .failure_threshold(1)
            .breaker_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    assert!(
        p.execute(|| async { Err::<u32, _>(TestError::Transient(1)) })
            .await
            .is_err()
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    let r = tokio::spawn(async move {
        p.execute(|| async {
            if true {
                panic!("probe panics");
            }
            Ok::<u32, TestError>(1)
        })
        .await
    })
    .await;
    assert!(r.unwrap_err().is_panic());
    assert_eq!(p.state(), CircuitState::HalfOpen);
    let c = calls(name);
    assert_eq!(c.abandoned, 1.0, "{c:?}");
    assert_eq!(c.a_transient, 1.0, "{c:?}");
    assert_eq!(c.failure, 1.0, "{c:?}");
    assert_eq!(transitions(name, "half_open", "open"), 0.0);
    assert_eq!(
        gauge(name)
            .iter()
            .filter(|(_, v)| *v == 1.0)
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>(),
        ["half_open"]
    );
}

#[tokio::test(start_paused = true)]
async fn rejected_budget_attempts_deadline_permanent() {
    render();
    // Rejected by a breaker forced open.
    let name = "edge-rejected";
    let p = resilience::configure(name, settings()).unwrap();
    p.force_open();
    assert!(
        p.execute(|| async { Ok::<u32, TestError>(1) })
            .await
            .is_err()
    );
    assert_eq!(
        calls(name),
        Calls {
            rejected: 1.0,
            d_rejected: 1.0,
            ..Calls::default()
        }
    );

    // Budget: one retry in it, then none.
    let name = "edge-budget";
    let p = resilience::configure(
        name,
        settings()
            .base_delay(Duration::from_millis(10))
            .max_attempts(2)
            .retry_budget_capacity(1)
            .retry_budget_ratio(0.0)
            .retry_budget_min_per_second(0.0),
    )
    .unwrap();
    for _ in 0..2 {
        assert!(
            p.execute(|| async { Err::<u32, _>(TestError::Transient(1)) })
                .await
                .is_err()
        );
    }
    assert_eq!(
        calls(name),
        Calls {
            failure: 2.0,
            retries: 1.0,
            a_transient: 3.0,
            d_failure: 2.0,
            ..Calls::default()
        }
    );
    assert_eq!(
        sample(
            &render(),
            "resilience_retry_budget_exhausted_total",
            &[("provider", name)]
        ),
        Some(1.0)
    );

    // Max attempts.
    let name = "edge-attempts";
    let p = resilience::configure(name, settings().base_delay(Duration::from_millis(10))).unwrap();
    assert!(
        p.execute(|| async { Err::<u32, _>(TestError::Transient(1)) })
            .await
            .is_err()
    );
    assert_eq!(
        calls(name),
        Calls {
            failure: 1.0,
            retries: 2.0,
            a_transient: 3.0,
            d_failure: 1.0,
            ..Calls::default()
        }
    );

    // Deadline cuts the attempt off.
    let name = "edge-deadline";
    let p = resilience::configure(name, settings().total_timeout(Some(Duration::from_secs(1))))
        .unwrap();
    assert!(
        p.execute(std::future::pending::<Result<u32, TestError>>)
            .await
            .is_err()
    );
    assert_eq!(
        calls(name),
        Calls {
            failure: 1.0,
            a_timeout: 1.0,
            d_failure: 1.0,
            ..Calls::default()
        }
    );

    // Permanent.
    let name = "edge-permanent";
    let p = resilience::configure(name, settings()).unwrap();
    assert!(
        p.execute(|| async { Err::<u32, _>(TestError::Permanent(1)) })
            .await
            .is_err()
    );
    assert_eq!(
        calls(name),
        Calls {
            failure: 1.0,
            a_permanent: 1.0,
            d_failure: 1.0,
            ..Calls::default()
        }
    );
}

/// An error type whose `From<ResilienceError>` panics: the README counts a call that such a
/// panic ends as abandoned ("ended by a panic ... in the method's own code the call runs (its
/// `Classify`, `From<ResilienceError>`, …)"), in no outcome of `resilience_calls_total`.
#[derive(Debug)]
struct PanicsOnConvert;

impl From<resilience::ResilienceError> for PanicsOnConvert {
    fn from(_: resilience::ResilienceError) -> Self {
        panic!("From<ResilienceError> panics")
    }
}

impl resilience::Classify for PanicsOnConvert {
    fn classify(&self) -> resilience::ErrorClass {
        resilience::ErrorClass::Transient
    }
}

/// Rejected at its first attempt (forced open): the rejection was counted, then the
/// conversion panicked.
#[tokio::test(start_paused = true)]
async fn a_panic_converting_a_rejection_is_abandoned() {
    render();
    let name = "edge-convert-rejected";
    let p = resilience::configure(name, settings()).unwrap();
    p.force_open();
    let r = CatchUnwind(Box::pin(
        p.execute(|| async { Ok::<u32, PanicsOnConvert>(1) }),
    ))
    .await;
    assert!(r.is_err(), "the conversion panicked");
    assert_eq!(
        calls(name),
        Calls {
            abandoned: 1.0,
            ..Calls::default()
        }
    );
}

/// A call of `name` (configured with `settings`) whose first attempt fails transiently, with
/// `meanwhile` run beside it once that attempt has failed (during the backoff): what ends the
/// call is converted by a `From<ResilienceError>` that panics, so the call counts as
/// abandoned, after its one attempt.
async fn converting_its_end_panics(
    name: &str,
    settings: Settings,
    meanwhile: impl Future<Output = ()>,
) {
    render();
    let p = resilience::configure(name, settings).unwrap();
    let call = CatchUnwind(Box::pin(
        p.execute(|| async { Err::<u32, _>(PanicsOnConvert) }),
    ));
    let (r, ()) = tokio::join!(call, async {
        tokio::task::yield_now().await;
        meanwhile.await;
    });
    assert!(r.is_err(), "the conversion panicked");
    assert_eq!(
        calls(name),
        Calls {
            abandoned: 1.0,
            a_transient: 1.0,
            ..Calls::default()
        }
    );
}

/// A retry refused after its backoff (forced open meanwhile), whose conversion panics.
#[tokio::test(start_paused = true)]
async fn a_panic_converting_a_refused_retry_is_abandoned() {
    let name = "edge-convert-refused";
    converting_its_end_panics(name, settings(), async {
        resilience::provider(name).force_open();
    })
    .await;
}

/// The deadline passed during the backoff, and the conversion of `DeadlineExceeded` panics.
#[tokio::test(start_paused = true)]
async fn a_panic_converting_a_deadline_passed_in_the_backoff_is_abandoned() {
    converting_its_end_panics(
        "edge-convert-deadline",
        settings()
            .base_delay(Duration::from_millis(10))
            .total_timeout(Some(Duration::from_millis(100))),
        tokio::time::advance(Duration::from_millis(150)),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_deadline_three_ways_and_a_timed_out_attempt_retried() {
    render();
    // The next retry would pass the deadline: one attempt, a failure.
    let name = "edge-deadline-next";
    let p = resilience::configure(
        name,
        settings()
            .base_delay(Duration::from_secs(10))
            .total_timeout(Some(Duration::from_secs(5))),
    )
    .unwrap();
    assert!(
        p.execute(|| async { Err::<u32, _>(TestError::Transient(1)) })
            .await
            .is_err()
    );
    assert_eq!(
        calls(name),
        Calls {
            failure: 1.0,
            a_transient: 1.0,
            d_failure: 1.0,
            ..Calls::default()
        }
    );

    // The deadline passes during the backoff (the clock moved on by hand).
    let name = "edge-deadline-backoff";
    let p = resilience::configure(
        name,
        settings()
            .base_delay(Duration::from_millis(10))
            .total_timeout(Some(Duration::from_millis(100))),
    )
    .unwrap();
    let call = p.execute(|| async { Err::<u32, _>(TestError::Transient(1)) });
    let (r, ()) = tokio::join!(call, async {
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_millis(150)).await;
    });
    assert!(r.is_err());
    assert_eq!(
        calls(name),
        Calls {
            failure: 1.0,
            a_transient: 1.0,
            d_failure: 1.0,
            ..Calls::default()
        }
    );

    // An attempt timed out, then a retry that succeeds.
    let name = "edge-timeout-retried";
    let p = resilience::configure(
        name,
        settings()
            .base_delay(Duration::from_millis(10))
            .attempt_timeout(Some(Duration::from_secs(1))),
    )
    .unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    let r = p
        .execute(|| {
            let first = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
            async move {
                if first {
                    std::future::pending::<()>().await;
                }
                Ok::<u32, TestError>(1)
            }
        })
        .await;
    assert_eq!(r, Ok(1));
    assert_eq!(
        calls(name),
        Calls {
            success: 1.0,
            retries: 1.0,
            a_timeout: 1.0,
            a_success: 1.0,
            d_success: 1.0,
            ..Calls::default()
        }
    );
}

/// On the real clock: the duration of a failed call holds its backoff sleep, in seconds.
#[tokio::test]
async fn the_duration_includes_the_backoff_in_seconds() {
    render();
    let name = "edge-duration-backoff";
    let p = resilience::configure(
        name,
        Settings::new()
            .jitter(Jitter::None)
            .max_attempts(2)
            .base_delay(Duration::from_millis(50)),
    )
    .unwrap();
    let around = std::time::Instant::now();
    assert!(
        p.execute(|| async { Err::<u32, _>(TestError::Transient(1)) })
            .await
            .is_err()
    );
    let around = around.elapsed().as_secs_f64();
    let sum = sample(
        &render(),
        "resilience_call_duration_seconds_sum",
        &[
            ("provider", name),
            ("method", "execute"),
            ("outcome", "failure"),
        ],
    )
    .unwrap();
    assert!((0.05..=around).contains(&sum), "{sum} s, {around} s around");
}

/// On the real clock, as durations are real time (the TSC, which a paused Tokio clock does not
/// move): each attempt's duration runs from its start to its end, so the backoffs between the
/// attempts are in the call's duration and in none of the attempts'; an attempt cut off by its
/// time limit is recorded as a `timeout`, and an error under `error`. The body's work is a
/// blocking 20 ms (the workload measured, not a wait); the backoffs are the call's own 50 ms.
#[tokio::test]
async fn attempt_durations_leave_the_backoff_out() {
    const WORK: Duration = Duration::from_millis(20);
    const LIMIT: Duration = Duration::from_millis(30);
    const BACKOFF: Duration = Duration::from_millis(50);
    render();
    let name = "edge-attempt-durations";
    let p = resilience::configure(
        name,
        Settings::new()
            .jitter(Jitter::None)
            .max_attempts(3)
            .base_delay(BACKOFF)
            .max_delay(BACKOFF)
            .attempt_timeout(Some(LIMIT)),
    )
    .unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    let around = std::time::Instant::now();
    let r = p
        .execute(|| {
            let attempt = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                if attempt == 1 {
                    std::future::pending::<()>().await;
                }
                std::thread::sleep(WORK);
                if attempt == 2 {
                    return Err(TestError::Transient(2));
                }
                Ok(attempt)
            }
        })
        .await;
    let around = around.elapsed().as_secs_f64();
    assert_eq!(r, Ok(3));
    let text = render();
    let series = |family: &str, label, value| {
        let labels = [("provider", name), ("method", "execute"), (label, value)];
        sample(&text, family, &labels).unwrap_or_else(|| panic!("no {family} {labels:?}"))
    };
    let attempt = |result| {
        let count = series(
            "resilience_attempt_duration_seconds_count",
            "result",
            result,
        );
        assert_eq!(count, 1.0, "{result}:\n{text}");
        series("resilience_attempt_duration_seconds_sum", "result", result)
    };
    let (timeout, error, success) = (attempt("timeout"), attempt("error"), attempt("success"));
    let call = series("resilience_call_duration_seconds_sum", "outcome", "success");
    assert!(timeout >= LIMIT.as_secs_f64(), "timeout {timeout} s");
    assert!(
        error >= WORK.as_secs_f64() && success >= WORK.as_secs_f64(),
        "error {error} s, success {success} s"
    );
    // A tenth of a millisecond for the TSC's calibration against Tokio's clock; an attempt
    // timed from the call's start, or from its backoff's, is 20 ms or more over.
    let backoffs = 2.0 * BACKOFF.as_secs_f64() - 1e-4;
    assert!(
        timeout + error + success + backoffs <= call && call <= around,
        "attempts {timeout} + {error} + {success} s and backoffs {backoffs} s, call {call} s, \
         {around} s around it"
    );
}

/// Every `_bucket` value (`+Inf` last), the `_sum` and the `_count` of `family`'s series for
/// `provider`'s `execute` with `label`, as the text writes them.
fn histogram(text: &str, family: &str, provider: &str, label: &str) -> (Vec<f64>, f64, f64) {
    let labels = format!("provider=\"{provider}\",method=\"execute\",{label}");
    let values = |suffix: &str, le: bool| -> Vec<f64> {
        let prefix = format!(
            "{family}{suffix}{{{labels}{}",
            if le { ",le=" } else { "} " }
        );
        text.lines()
            .filter(|l| l.starts_with(&prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect()
    };
    let (sum, count) = (values("_sum", false), values("_count", false));
    assert_eq!(
        (sum.len(), count.len()),
        (1, 1),
        "{family} {labels}:\n{text}"
    );
    (values("_bucket", true), sum[0], count[0])
}

/// Under our recorder a call that succeeds at its first attempt is one sample, which both
/// duration families show: count 1 in each, the same sum to the bit, the same buckets. A
/// method whose success series are made (at its first call) but have no success yet shows
/// them at 0, every bucket. A retried call still records its attempts and its call apart,
/// the call's span holding its last attempt's; and a method with both kinds adds them.
#[tokio::test(start_paused = true)]
async fn a_first_attempt_success_is_one_sample_in_both_families() {
    render();
    let every = resilience::telemetry::DURATION_BUCKETS.len() + 1;
    let call = "resilience_call_duration_seconds";
    let attempt = "resilience_attempt_duration_seconds";
    let (success, ok) = ("outcome=\"success\"", "result=\"success\"");

    // Made, not yet successful: its first call fails for good.
    let name = "edge-shared-made";
    let p = resilience::configure(name, settings()).unwrap();
    assert!(
        p.execute(|| async { Err::<u32, _>(TestError::Permanent(1)) })
            .await
            .is_err()
    );
    let text = render();
    for (family, label) in [(call, success), (attempt, ok)] {
        assert_eq!(
            histogram(&text, family, name, label),
            (vec![0.0; every], 0.0, 0.0),
            "{family}:\n{text}"
        );
    }
    assert_eq!(histogram(&text, call, name, "outcome=\"failure\"").2, 1.0);

    // A first-attempt success.
    let name = "edge-shared-first";
    let p = resilience::configure(name, settings()).unwrap();
    assert_eq!(p.execute(|| async { Ok::<u32, TestError>(1) }).await, Ok(1));
    assert_eq!(
        calls(name),
        Calls {
            success: 1.0,
            a_success: 1.0,
            d_success: 1.0,
            ..Calls::default()
        }
    );
    let text = render();
    let (buckets, sum, count) = histogram(&text, call, name, success);
    assert_eq!(count, 1.0);
    assert_eq!((buckets.len(), buckets.last()), (every, Some(&1.0)));
    assert!(sum > 0.0, "{text}");
    assert_eq!(
        histogram(&text, attempt, name, ok),
        (buckets, sum, count),
        "{text}"
    );

    // Failed once, then succeeded.
    let name = "edge-shared-retried";
    let p = resilience::configure(
        name,
        settings()
            .base_delay(Duration::from_millis(10))
            .max_attempts(2),
    )
    .unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    let once = || {
        let attempt = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        async move {
            if attempt == 1 {
                Err(TestError::Transient(1))
            } else {
                Ok(attempt)
            }
        }
    };
    assert_eq!(p.execute(once).await, Ok(2));
    assert_eq!(
        calls(name),
        Calls {
            success: 1.0,
            retries: 1.0,
            a_success: 1.0,
            a_transient: 1.0,
            d_success: 1.0,
            ..Calls::default()
        }
    );
    let text = render();
    let (_, call_sum, call_count) = histogram(&text, call, name, success);
    let (_, ok_sum, ok_count) = histogram(&text, attempt, name, ok);
    let (_, _, error_count) = histogram(&text, attempt, name, "result=\"error\"");
    assert_eq!((call_count, ok_count, error_count), (1.0, 1.0, 1.0));
    assert!(
        call_sum >= ok_sum && ok_sum > 0.0,
        "call {call_sum} s, its last attempt {ok_sum} s"
    );
    // Then a first-attempt success of the same method: each series adds it to its own.
    assert_eq!(p.execute(|| async { Ok::<u32, TestError>(3) }).await, Ok(3));
    let text = render();
    let (call_buckets, _, call_count) = histogram(&text, call, name, success);
    let (ok_buckets, _, ok_count) = histogram(&text, attempt, name, ok);
    assert_eq!((call_count, ok_count), (2.0, 2.0), "{text}");
    for buckets in [call_buckets, ok_buckets] {
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{text}");
        assert_eq!(buckets.last(), Some(&2.0), "{text}");
    }
    assert_eq!(calls(name).a_success, 2.0);
}

/// Counts the futures polled at least once: a call is made at its first poll (a `select!`
/// whose other branch is ready first drops it unpolled, and there is no call to count).
struct Polled<F>(Pin<Box<F>>, bool, &'static std::sync::atomic::AtomicU64);

impl<F: Future> Future for Polled<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if !self.1 {
            self.1 = true;
            self.2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.0.as_mut().poll(cx)
    }
}

/// Many calls on four threads, failing, timing out, retried, rejected, probing and cancelled
/// at random: every call made is in exactly one outcome or abandoned, and the counted
/// transitions form a path from `closed` to the state the gauge shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_call_is_counted_once_under_concurrency_and_cancellation() {
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    render();
    let name = "edge-stress";
    let p = resilience::configure(
        name,
        Settings::new()
            .jitter(Jitter::Full)
            .base_delay(Duration::from_millis(1))
            .max_delay(Duration::from_millis(3))
            .attempt_timeout(Some(Duration::from_millis(3)))
            .failure_threshold(6)
            .success_threshold(2)
            .half_open_max_calls(2)
            .breaker_timeout(Duration::from_millis(5))
            .retry_budget_capacity(20)
            .retry_budget_min_per_second(200.0),
    )
    .unwrap();
    let tasks: Vec<_> = (0..600u32)
        .map(|i| {
            tokio::spawn(async move {
                let call = Polled(
                    Box::pin(p.execute(move || async move {
                        let r = rand::random::<u32>() % 10;
                        tokio::time::sleep(Duration::from_micros(u64::from(r) * 400)).await;
                        match r {
                            0..=2 => Err::<u32, _>(TestError::Transient(1)),
                            3 => Err(TestError::Permanent(1)),
                            _ => Ok(1),
                        }
                    })),
                    false,
                    &MADE,
                );
                let cancel_after = Duration::from_micros(rand::random::<u64>() % 8000);
                match i % 3 {
                    0 => drop(tokio::time::timeout(cancel_after, call).await),
                    1 => tokio::select! {
                        _ = call => {}
                        _ = tokio::time::sleep(cancel_after) => {}
                    },
                    _ => drop(call.await),
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let made = MADE.load(std::sync::atomic::Ordering::Relaxed) as f64;
    let c = calls(name);
    assert_eq!(
        c.success + c.failure + c.rejected + c.abandoned,
        made,
        "{c:?}"
    );
    assert_eq!(
        (c.d_success, c.d_failure, c.d_rejected),
        (c.success, c.failure, c.rejected)
    );
    let ended = c.a_success + c.a_transient + c.a_throttled + c.a_permanent + c.a_timeout;
    // Every call with an outcome but a rejection ended its first attempt, and retries are
    // the attempts after a call's first.
    assert!(ended >= c.success + c.failure, "{c:?}");
    assert!(c.retries <= ended - (c.success + c.failure), "{c:?}");

    // The state may move on by itself (open → half_open) between two looks: compare the
    // transitions with the state the same scrape shows.
    let text = render();
    let states = ["closed", "open", "half_open", "forced_open", "disabled"];
    let shown: Vec<&str> = states
        .iter()
        .copied()
        .filter(|s| {
            sample(
                &text,
                "resilience_circuit_state",
                &[("provider", name), ("state", s)],
            ) == Some(1.0)
        })
        .collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    let mut net = std::collections::HashMap::new();
    for from in states {
        for to in states {
            if from != to {
                let n = sample(
                    &text,
                    "resilience_circuit_transitions_total",
                    &[("provider", name), ("from", from), ("to", to)],
                )
                .unwrap_or(0.0);
                *net.entry(from).or_insert(0.0) -= n;
                *net.entry(to).or_insert(0.0) += n;
            }
        }
    }
    for s in states {
        let want = f64::from(u8::from(s == shown[0])) - f64::from(u8::from(s == "closed"));
        assert_eq!(net[s], want, "{s}: {net:?}, shows {shown:?}");
    }
}

/// A call site whose handles are made inside the application's own
/// `metrics::with_local_recorder`, while our store is the global recorder: that recorder gets
/// every sample (a first-attempt success in both duration families), and our store's shared
/// cell none of it, nor any series of the site's.
#[test]
fn a_site_made_under_a_local_recorder_records_both_histograms_there() {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    static LOCAL_SITE: resilience::CallSite = resilience::CallSite::new("edge-local", "local");
    render();
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
    let local = builder.build_recorder();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let call = || rt.block_on(LOCAL_SITE.execute(|| async { Ok::<u32, TestError>(1) }));
    assert_eq!(metrics::with_local_recorder(&local, call), Ok(1));
    // Its handles are the local recorder's for good, wherever it is called from next.
    assert_eq!(call(), Ok(1));
    let text = local.handle().render();
    let labels = [("provider", "edge-local"), ("method", "local")];
    let with = |k, v| [labels[0], labels[1], (k, v)];
    let count = |family: &str, k, v| sample(&text, family, &with(k, v));
    assert_eq!(
        (
            count(
                "resilience_call_duration_seconds_count",
                "outcome",
                "success"
            ),
            count(
                "resilience_attempt_duration_seconds_count",
                "result",
                "success"
            ),
            count("resilience_attempts_total", "result", "success"),
        ),
        (Some(2.0), Some(2.0), Some(2.0)),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "resilience_call_duration_seconds_sum",
            &with("outcome", "success")
        ),
        sample(
            &text,
            "resilience_attempt_duration_seconds_sum",
            &with("result", "success")
        ),
    );
    let ours = render();
    assert!(
        !ours
            .lines()
            .any(|l| l.contains("provider=\"edge-local\",method=\"local\"")),
        "{ours}"
    );
}
