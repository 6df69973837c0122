//! Without `init()`, a misspelt or wrongly cased `RESILIENCE_*` variable is a warning at the
//! first provider's creation, once per process. Its own test binary: it sets the process's
//! environment, which no other test may see.

mod common;

use common::capture;

#[test]
fn misspelt_variables_are_warned_about_once_without_init() {
    // SAFETY: the only test in this process, and no other thread runs yet.
    unsafe {
        std::env::set_var("RESILIENCE_ENVN_RETRY_MAX_ATEMPTS", "5");
        std::env::set_var("RESILIENCE_envn_RETRY_MAX_ATTEMPTS", "5");
    }
    let (logs, subscriber) = capture();
    tracing::subscriber::with_default(subscriber, || {
        let first = resilience::provider("envn");
        assert_eq!(
            first.config().max_attempts,
            3,
            "the default: the misspelt ones are ignored"
        );
        let text = logs.text();
        assert!(
            text.contains(
                "WARN resilience: [CONFIG] RESILIENCE_ENVN_RETRY_MAX_ATEMPTS matches no resilience \
                 setting (a typo?); it is ignored"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "WARN resilience: [CONFIG] RESILIENCE_envn_RETRY_MAX_ATTEMPTS is read by no \
                 provider: expected the provider upper-cased"
            ),
            "{text}"
        );
        // Once: another provider, made by `configure`, says nothing more.
        resilience::configure("envn-2", resilience::Settings::new()).unwrap();
        assert_eq!(
            logs.text().matches("[CONFIG]").count(),
            2,
            "{}",
            logs.text()
        );
    });
}
