//! `/health` says when the process drains. A binary of its own: `drain()` is one-way and
//! process-wide, and would stop the retries of every other test in a shared binary.

// Without the runner's resilience variables, as every test binary (tests/hermetic).
mod hermetic;

use std::time::Duration;

/// `draining` is false until the process's `drain()`, then true; the status still reports
/// the breakers only.
#[tokio::test]
async fn health_says_the_process_is_draining() {
    let server = resilience::telemetry::serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let get = || async {
        // No proxy: one set in the environment would be asked for 127.0.0.1 too.
        let body = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(server.health_url())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let before = get().await;
    assert_eq!(before["draining"], false, "{before}");
    resilience::drain();
    let after = get().await;
    assert_eq!(after["draining"], true, "{after}");
    assert_eq!(after["status"], "ok", "{after}");
}
