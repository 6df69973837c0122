//! Without `init()`, a misspelt or wrongly cased `RESILIENCE_*` variable is a warning at the
//! first provider's creation, once per process, and a bad global value is logged once, not
//! once per provider. Its own test binary: it sets the process's environment, which no other
//! test may see.

mod common;

use std::time::Duration;

use common::capture;

/// Never called: known from program load, its provider part (`ENVN_SITE`) is what a near miss
/// is told apart from.
#[allow(dead_code)]
#[resilience::resilient(provider = "envn-site")]
async fn upload() -> Result<(), common::TestError> {
    Ok(())
}

#[test]
fn misspelt_variables_are_warned_about_once_without_init() {
    let stale: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("RESILIENCE_") || resilience::variables().any(|v| v == k))
        .collect();
    // SAFETY: the only test in this process, and no other thread runs yet.
    unsafe {
        // The runner's own settings would add lines of their own.
        for k in stale {
            std::env::remove_var(k);
        }
        std::env::set_var("RESILIENCE_ENVN_RETRY_MAX_ATEMPTS", "5");
        std::env::set_var("RESILIENCE_envn_RETRY_MAX_ATTEMPTS", "5");
        std::env::set_var("RETRY_BASE_DELAY", "soon");
        // A global value in conflict with each provider's own setting: a problem of each.
        std::env::set_var("CIRCUIT_BREAKER_FAILURE_RATE", "0.5");
        std::env::set_var("CIRCUIT_BREAKER_MINIMUM_CALLS", "50");
        std::env::set_var("RESILIENCE_ENVN_CIRCUIT_BREAKER_WINDOW_SIZE", "10");
        std::env::set_var("RESILIENCE_ENVN_2_CIRCUIT_BREAKER_WINDOW_SIZE", "20");
        // One edit off the method's provider: configures a provider nobody calls.
        std::env::set_var("RESILIENCE_ENVNSITE_RETRY_MAX_ATTEMPTS", "5");
    }
    let (logs, subscriber) = capture();
    tracing::subscriber::with_default(subscriber, || {
        let first = resilience::provider("envn");
        assert_eq!(
            first.config().max_attempts,
            3,
            "the default: the misspelt ones are ignored"
        );
        // Another provider finds the bad global value too, and ignores it as the first did.
        let second = resilience::provider("envn-2");
        assert_eq!(second.config().base_delay, Duration::from_secs(1));
    });
    let text = logs.text();
    for line in [
        "WARN resilience: [CONFIG] RESILIENCE_ENVN_RETRY_MAX_ATEMPTS matches no resilience \
         setting; it is ignored: did you mean RESILIENCE_ENVN_RETRY_MAX_ATTEMPTS?",
        "WARN resilience: [CONFIG] RESILIENCE_envn_RETRY_MAX_ATTEMPTS is read by no provider: \
         expected the provider upper-cased",
        // One line, though both providers find it.
        "ERROR resilience: [CONFIG] Ignoring RETRY_BASE_DELAY=soon for provider envn: \
         expected",
        // One for each provider's own conflict.
        "ERROR resilience: [CONFIG] Ignoring CIRCUIT_BREAKER_MINIMUM_CALLS=50 for provider \
         envn: expected at most the window size (RESILIENCE_ENVN_CIRCUIT_BREAKER_WINDOW_SIZE=10)",
        "ERROR resilience: [CONFIG] Ignoring CIRCUIT_BREAKER_MINIMUM_CALLS=50 for provider \
         envn-2: expected at most the window size \
         (RESILIENCE_ENVN_2_CIRCUIT_BREAKER_WINDOW_SIZE=20)",
        "WARN resilience: [CONFIG] RESILIENCE_ENVNSITE_… configures a provider that no \
         #[resilient] method, setting or provider made so far names: did you mean provider \
         `envn-site` (RESILIENCE_ENVN_SITE_…)?",
    ] {
        assert_eq!(text.matches(line).count(), 1, "{line:?} in:\n{text}");
    }
    assert_eq!(text.matches("[CONFIG]").count(), 6, "{text}");
    // `init()` after them reports the same typo once more only as the error it makes of it,
    // not as a second warning.
    let (logs, subscriber) = capture();
    let err = tracing::subscriber::with_default(subscriber, resilience::init).unwrap_err();
    assert!(
        err.to_string()
            .contains("RESILIENCE_envn_RETRY_MAX_ATTEMPTS"),
        "{err}"
    );
    assert!(
        !logs.text().contains("matches no resilience setting")
            && !logs.text().contains("did you mean"),
        "{}",
        logs.text()
    );
}
