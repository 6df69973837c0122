//! A call cut off mid-attempt after `drain()` (a batch job's runtime dropped as `main`
//! returns, a service's grace period ending) keeps its debug line, but not the once-per-provider
//! warning to set an attempt timeout: the process is shutting down, and that says nothing of a
//! provider that hangs. Its own test binary: the subscriber, the recorder and the drain are the
//! process's.

mod common;

use std::sync::Arc;

use common::{TestError, capture_globally, current_thread};
use resilience::Settings;

#[test]
fn a_call_cut_off_after_drain_gives_no_timeout_hint() {
    let logs = capture_globally();
    // As a batch job's `#[tokio::main(flavor = "current_thread")]`.
    let rt = current_thread();
    rt.block_on(async {
        let _recorder = resilience::telemetry::install_recorder().unwrap();
        let p = resilience::configure("drain-hint", Settings::new()).unwrap();
        // In flight (a provider that answers slowly) when the job is told to stop: told once
        // its attempt has begun, not after a sleep that guesses when that is.
        let begun = Arc::new(tokio::sync::Notify::new());
        let told = begun.clone();
        tokio::spawn(p.execute(move || {
            told.notify_one();
            std::future::pending::<Result<u32, TestError>>()
        }));
        begun.notified().await;
        resilience::drain();
    });
    // `main` returns: the runtime drops the task, mid-attempt.
    drop(rt);
    let text = logs.text();
    assert!(
        text.contains("[RETRY] Call to execute abandoned during attempt 1"),
        "{text}"
    );
    assert!(!text.contains("has no attempt or total timeout"), "{text}");
}
