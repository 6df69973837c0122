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
    // SAFETY: the only test in this process, and no other thread runs yet.
    unsafe {
        common::only_these_variables(&[
            ("RESILIENCE_ENVN_RETRY_MAX_ATEMPTS", "5"),
            ("RESILIENCE_envn_RETRY_MAX_ATTEMPTS", "5"),
            ("RETRY_BASE_DELAY", "soon"),
            // A global value in conflict with each provider's own setting: a problem of each.
            ("CIRCUIT_BREAKER_FAILURE_RATE", "0.5"),
            ("CIRCUIT_BREAKER_MINIMUM_CALLS", "50"),
            ("RESILIENCE_ENVN_CIRCUIT_BREAKER_WINDOW_SIZE", "10"),
            ("RESILIENCE_ENVN_2_CIRCUIT_BREAKER_WINDOW_SIZE", "20"),
            // One edit off the method's provider: configures a provider nobody calls.
            ("RESILIENCE_ENVNSITE_RETRY_MAX_ATTEMPTS", "5"),
            // A switch written as the other globals are: read by nothing.
            ("RETRY_ENABLED", "false"),
            // A prefixed global misspelt whole: no provider part to split off.
            ("RESILIENCE_STICT", "1"),
            // A global misspelt without the prefix: near ours, maybe another program's.
            ("RETRY_MAX_ATEMPTS", "5"),
        ]);
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
         #[resilient] method, call site, setting or provider made so far names: did you mean provider \
         `envn-site` (RESILIENCE_ENVN_SITE_…)?",
        "WARN resilience: [CONFIG] RETRY_ENABLED matches no resilience setting; it is ignored: \
         did you mean RESILIENCE_RETRY_ENABLED (the on/off switches take the RESILIENCE_ \
         prefix)?",
        "WARN resilience: [CONFIG] RESILIENCE_STICT matches no resilience setting; it is \
         ignored: did you mean RESILIENCE_STRICT?",
        "WARN resilience: [CONFIG] RETRY_MAX_ATEMPTS is no resilience setting, but near one: \
         did you mean RETRY_MAX_ATTEMPTS? It is ignored (if it is another program's variable, \
         nothing is wrong) variable=\"RETRY_MAX_ATEMPTS\" meant=\"RETRY_MAX_ATTEMPTS\"",
    ] {
        assert_eq!(text.matches(line).count(), 1, "{line:?} in:\n{text}");
    }
    assert_eq!(text.matches("[CONFIG]").count(), 9, "{text}");
    // A global variable is not named as its own fallback.
    let global_next = "; it uses 1 instead (the next setting in line: the global code \
                       settings, then the built-in default, where the provider sets none of its \
                       own, at most the maximum delay).";
    assert_eq!(text.matches(global_next).count(), 1, "{text}");
    // A minimum above the window is no bad value: it falls back to the window size, not to the
    // next setting in line (the default, 20, is above envn's window of 10), and says so.
    let (first, second) = (resilience::provider("envn"), resilience::provider("envn-2"));
    assert_eq!(first.config().minimum_calls, 10);
    assert_eq!(second.config().minimum_calls, 20);
    assert_eq!(
        text.matches("=20); it uses 20 instead (the window size).")
            .count(),
        1,
        "{text}"
    );
    assert_eq!(
        text.matches("=10); it uses 10 instead (the window size).")
            .count(),
        1,
        "{text}"
    );
    assert!(
        !text.contains("the global variable, the global code"),
        "{text}"
    );
    // `init()` after them reports the same typo once more only as the error it makes of it,
    // not as a second warning. A name given settings in code one edit off the method's
    // provider (and no provider made) is a warning of its own, each time it is given.
    let (logs, subscriber) = capture();
    let err = tracing::subscriber::with_default(subscriber, || {
        resilience::Builder::new()
            .provider("envn-sit", resilience::Settings::new().max_attempts(7))
            // Given twice (settings layered): one warning.
            .provider("envn-sit", resilience::Settings::new().max_attempts(6))
            .provider("envn", resilience::Settings::new())
            // Given no setting: a computed name made known, as the README advises, no slip.
            .provider("envn-sitx", resilience::Settings::new())
            .init()
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("RESILIENCE_envn_RETRY_MAX_ATTEMPTS"),
        "{err}"
    );
    let text = logs.text();
    assert!(!text.contains("matches no resilience setting"), "{text}");
    let line = "WARN resilience: [CONFIG] Builder::provider(\"envn-sit\", …) sets up a provider \
                that no #[resilient] method, call site or provider made so far names: did you mean \
                provider `envn-site`?";
    assert_eq!(text.matches(line).count(), 1, "{line:?} in:\n{text}");
    assert_eq!(text.matches("did you mean").count(), 1, "{text}");
    // After an `init()` (which may have been given the name, and refused it), a bad name's
    // line gives no advice to call it.
    let (logs, subscriber) = capture();
    tracing::subscriber::with_default(subscriber, || resilience::provider(" envn-bad"));
    let text = logs.text();
    assert!(text.contains("provider ` envn-bad`"), "{text}");
    assert!(!text.contains("init()"), "{text}");
}
