//! On a Tokio runtime built without its time driver, a call with a time limit runs its
//! attempt without one, and a failed attempt is not retried (retries sleep): each is an error
//! line, naming the method, with the call's key. Its own test binary: it installs a subscriber.

mod common;

use std::time::Duration;

use common::{TestError, capture};
use resilience::Settings;

#[test]
fn without_timers_the_limit_and_the_retry_are_each_an_error_line_of_the_call() {
    let (logs, subscriber) = capture();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r: Result<u32, TestError> = tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let p = resilience::configure(
                "no-time-driver",
                Settings::new().attempt_timeout(Some(Duration::from_secs(1))),
            )
            .unwrap();
            p.call_site("upload")
                .execute(|| async { Err(TestError::Transient(1)) })
                .await
        })
    });
    assert_eq!(
        r,
        Err(TestError::Transient(1)),
        "the attempt's error, not retried"
    );
    let text = logs.text();
    let limit = text
        .lines()
        .find(|l| l.contains("Timeouts need a Tokio runtime with its time driver"))
        .unwrap_or_else(|| panic!("no line for the time limit in:\n{text}"));
    let gave_up = text
        .lines()
        .find(|l| l.contains("reason=\"no_timers\""))
        .unwrap_or_else(|| panic!("no giving-up line in:\n{text}"));
    assert!(
        gave_up.contains("ERROR resilience: [RETRY] Giving up on upload after attempt 1/3"),
        "{gave_up}"
    );
    let key = |line: &str| {
        line.split_once("idempotency_key=")
            .map(|(_, rest)| rest.split(' ').next().unwrap_or("").to_owned())
    };
    for line in [limit, gave_up] {
        assert!(
            line.contains("ERROR") && line.contains("method=\"upload\""),
            "{line}"
        );
        assert_eq!(key(line).map(|k| k.len()), Some(36), "{line}");
    }
    assert_eq!(key(limit), key(gave_up), "one call, one key:\n{text}");
}
