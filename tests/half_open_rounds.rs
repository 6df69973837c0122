//! The README's half-open rounds (Semantics, breaker): a round is decided by the answers that
//! come first, its other probes' later answers counting for nothing; and the limit on probes
//! is a round's, so a probe still running when its round re-opened the breaker holds no slot
//! in the next round, nor counts there. One thread, a paused clock: the probes are tasks held
//! on channels, so no answer depends on timing.

mod common;

use std::time::Duration;

use common::TestError;
use resilience::{CircuitState, Provider, Settings};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

fn settings() -> Settings {
    Settings::new()
        .max_attempts(1)
        .failure_threshold(1)
        .breaker_timeout(Duration::from_secs(10))
        .half_open_max_calls(2)
        .success_threshold(1)
}

/// Opens the breaker and waits out its timeout: the next call is a probe.
async fn open_then_wait(p: &Provider) {
    let _ = p
        .execute(|| async { Err::<(), _>(TestError::Transient(0)) })
        .await;
    assert_eq!(p.state(), CircuitState::Open);
    tokio::time::advance(Duration::from_secs(11)).await;
}

/// A call, on a task of its own, whose attempt answers what is sent on the returned channel.
async fn held_call(
    p: &Provider,
) -> (
    oneshot::Sender<Result<(), TestError>>,
    JoinHandle<Result<(), TestError>>,
) {
    let (tx, rx) = oneshot::channel();
    let mut rx = Some(rx);
    let p = *p;
    let task = tokio::spawn(async move {
        p.execute(|| {
            let rx = rx.take().expect("one attempt");
            async move { rx.await.expect("an answer") }
        })
        .await
    });
    // Let it in (a probe slot taken) before going on.
    tokio::task::yield_now().await;
    (tx, task)
}

#[tokio::test(start_paused = true)]
async fn a_round_closes_on_its_first_successes_and_its_stragglers_count_nothing() {
    let p = resilience::configure("rounds-first-answers", settings()).unwrap();
    open_then_wait(&p).await;
    let (slow, slow_task) = held_call(&p).await;
    assert_eq!(p.state(), CircuitState::HalfOpen);
    p.execute(|| async { Ok::<_, TestError>(()) })
        .await
        .unwrap();
    assert_eq!(
        p.state(),
        CircuitState::Closed,
        "closed with the other probe still running"
    );
    slow.send(Err(TestError::Transient(9))).unwrap();
    let _ = slow_task.await.unwrap();
    assert_eq!(p.state(), CircuitState::Closed);
    assert_eq!(
        p.consecutive_failures(),
        0,
        "the straggler's failure counts nothing, at threshold 1 it would have opened it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_probe_of_a_failed_round_holds_no_slot_in_the_next() {
    let p = resilience::configure("rounds-straggler", settings()).unwrap();
    open_then_wait(&p).await;
    let (straggler, straggler_task) = held_call(&p).await;
    let _ = p
        .execute(|| async { Err::<(), _>(TestError::Transient(1)) })
        .await;
    assert_eq!(
        p.state(),
        CircuitState::Open,
        "the round's failure re-opens it"
    );
    tokio::time::advance(Duration::from_secs(11)).await;
    // As many probes as the limit, beside the straggler.
    let (first, first_task) = held_call(&p).await;
    let (second, second_task) = held_call(&p).await;
    let third = p.execute(|| async { Ok::<_, TestError>(()) }).await;
    assert!(
        matches!(third, Err(TestError::Resilience(_))),
        "the round's two slots are taken: {third:?}"
    );
    // The straggler's success does not count in this round (one success would close it).
    straggler.send(Ok(())).unwrap();
    straggler_task.await.unwrap().unwrap();
    assert_eq!(p.state(), CircuitState::HalfOpen);
    first.send(Ok(())).unwrap();
    first_task.await.unwrap().unwrap();
    assert_eq!(p.state(), CircuitState::Closed);
    second.send(Ok(())).unwrap();
    second_task.await.unwrap().unwrap();
}
