//! What a call leaves behind when it is cancelled or ends by a panic at each point of its life,
//! and what the provider's breaker and retry budget then say.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::TestError;
use resilience::{Jitter, Settings};

/// No jitter, a 100 ms backoff, and a retry budget of `capacity` that never refills by itself:
/// only `reset()` fills it again.
fn fixed_budget(capacity: u32) -> Settings {
    Settings::new()
        .jitter(Jitter::None)
        .base_delay(Duration::from_millis(100))
        .max_delay(Duration::from_secs(10))
        .max_attempts(2)
        .retry_budget_capacity(capacity)
        .retry_budget_ratio(0.0)
        .retry_budget_min_per_second(0.0)
}

/// A call that fails once, retries, and then succeeds, with the number of attempts it made.
async fn fail_once(p: resilience::Provider) -> (Result<u32, TestError>, u32) {
    let n = AtomicU32::new(0);
    let r = p
        .execute(|| {
            let first = n.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    Err(TestError::Transient(1))
                } else {
                    Ok(2)
                }
            }
        })
        .await;
    (r, n.load(Ordering::SeqCst))
}

/// A call cancelled in its backoff gives its budget token back, but a `reset()` that came
/// meanwhile has already filled the budget: given back then as well, the token was returned
/// twice, and the reset budget allowed one retry more than its capacity.
#[tokio::test(start_paused = true)]
async fn a_token_taken_before_a_reset_is_not_given_back_after_it() {
    let p = resilience::configure("cancel-reset-refund", fixed_budget(1)).unwrap();
    // The first call fails, takes the one token and sleeps its 100 ms backoff.
    let mut first = Box::pin(fail_once(p));
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut first)
            .await
            .is_err(),
        "still in its backoff"
    );
    assert_eq!(p.retry_budget_available(), 0.0);
    p.reset();
    assert_eq!(p.retry_budget_available(), 1.0, "filled by the reset");
    // Another call spends the reset's token.
    assert_eq!(fail_once(p).await, (Ok(2), 2));
    assert_eq!(p.retry_budget_available(), 0.0);
    // The first call, cancelled now, took its token from the budget before the reset.
    drop(first);
    assert_eq!(
        p.retry_budget_available(),
        0.0,
        "the reset's one retry was spent; the cancelled call's token was the old budget's"
    );
    assert_eq!(
        fail_once(p).await.1,
        1,
        "no retry left until the next reset"
    );
}

/// `execute`'s closure is the caller's code that builds each attempt (where it copies what the
/// attempt takes), as the argument copies are for `#[resilient]`: a retry whose closure panics
/// sent nothing, and gives its budget token back, as a retry whose argument copy panics does.
#[tokio::test(start_paused = true)]
async fn a_retry_whose_execute_closure_panics_gives_its_token_back() {
    let p = resilience::configure("cancel-closure-panics", fixed_budget(1)).unwrap();
    let r = tokio::spawn(async move {
        let n = AtomicU32::new(0);
        p.execute(|| {
            assert_eq!(n.fetch_add(1, Ordering::SeqCst), 0, "the retry's closure");
            async { Err::<u32, _>(TestError::Transient(1)) }
        })
        .await
    })
    .await;
    assert!(r.unwrap_err().is_panic());
    assert_eq!(
        p.retry_budget_available(),
        1.0,
        "the retry never reached the provider"
    );
}

/// The attempt's time limit is the provider's time, not the closure's: as for the argument
/// copies of a `#[resilient]` method, a closure that takes longer than the limit to build the
/// attempt must not use it up before the attempt's future is polled.
#[tokio::test]
async fn an_attempt_timeout_does_not_count_the_execute_closure() {
    let p = resilience::configure(
        "cancel-slow-closure",
        Settings::new()
            .attempt_timeout(Some(Duration::from_millis(200)))
            .max_attempts(1),
    )
    .unwrap();
    let r = p
        .execute(|| {
            // Longer than the limit, whatever the machine: a sleep is a lower bound.
            std::thread::sleep(Duration::from_millis(300));
            async {
                // Pending until the runtime's timers turn, so that the limit is looked at.
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok::<u32, TestError>(7)
            }
        })
        .await;
    assert_eq!(r, Ok(7));
}
