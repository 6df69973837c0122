//! A call made outside every isolation while a test's guard is alive on another thread (a
//! task spawned onto a `multi_thread` runtime's workers, unwrapped) uses the process's
//! provider: a warning says so, once per name and process. Its own binary, for the once.
//! Needs the `testing` feature.

// With tests/hermetic: without the runner's resilience variables.
mod common;

use resilience::{resilient, testing};

#[derive(Debug)]
struct E;

impl From<resilience::ResilienceError> for E {
    fn from(_: resilience::ResilienceError) -> Self {
        E
    }
}

impl resilience::Classify for E {
    fn classify(&self) -> resilience::ErrorClass {
        resilience::ErrorClass::Permanent
    }
}

#[resilient(provider = "outside")]
async fn call() -> Result<(), E> {
    Ok(())
}

#[resilient(provider = "outside-too")]
async fn another() -> Result<(), E> {
    Ok(())
}

const SAID: &str = "ran outside every testing::isolate() while a test's guard was alive";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_task_outside_its_test_s_isolation_is_warned_of_once() {
    let logs = common::capture_globally();
    let said = || logs.text().matches(SAID).count();
    let isolated = testing::isolate();
    // Under the guard, and in a task wrapped with its isolation: nothing to say.
    call().await.unwrap();
    tokio::spawn(isolated.isolation().run(call()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(said(), 0, "{}", logs.text());
    // A task spawned onto a worker as it is: the process's provider, said once for the name.
    for _ in 0..3 {
        tokio::spawn(call()).await.unwrap().unwrap();
    }
    assert_eq!(said(), 1, "{}", logs.text());
    assert!(
        logs.text().contains("provider=\"outside\""),
        "{}",
        logs.text()
    );
    // Another name is said too: one test without a guard on purpose does not use it up.
    tokio::spawn(another()).await.unwrap().unwrap();
    assert_eq!(said(), 2, "{}", logs.text());
}
