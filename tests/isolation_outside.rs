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

/// With no subscriber, the warning goes to the process's standard error itself, where
/// libtest's capture does not take it (through `eprintln!` it was shown only with a failing
/// test, and a worker's went to the capture of the test that built its runtime). Run in a
/// child process of this binary, which has no subscriber (the test above sets the parent's).
#[test]
fn without_a_subscriber_the_warning_is_written_to_standard_error() {
    // Not RESILIENCE_…: tests/hermetic removes those before main.
    const CHILD: &str = "ISOLATION_OUTSIDE_TEST_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let _isolated = testing::isolate();
        rt.block_on(async { tokio::spawn(call()).await.unwrap().unwrap() });
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "without_a_subscriber_the_warning_is_written_to_standard_error",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WARN resilience: [CONFIG] A call to provider `outside`")
            && stderr.contains(SAID),
        "stderr: {stderr}\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
