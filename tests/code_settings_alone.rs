//! Settings given in code must hold without the environment: `init()` and `configure()`
//! refuse them, and keep none of them, when read alone they have a problem of their own,
//! whatever the variables make of the values that apply (helper-235, helper-240,
//! helper-241). A conflict that a variable makes is the variable's: returned, and the code
//! settings kept. Its own test binary: it sets the process's environment, which no other test
//! may see.

mod common;

use std::time::Duration;

use resilience::{Builder, Settings};

/// Whether `name`'s provider, made after its settings were given, got their `max_attempts(7)`.
fn kept(name: &str) -> bool {
    resilience::provider(name).config().max_attempts == 7
}

#[test]
fn code_settings_must_hold_without_the_environment() {
    // SAFETY: the only test in this process, and no other thread runs yet.
    unsafe {
        common::only_these_variables(&[
            ("RESILIENCE_RAISED_INIT_RETRY_MAX_DELAY", "300"),
            ("RESILIENCE_RAISED_CFG_RETRY_MAX_DELAY", "300"),
            (
                "RESILIENCE_RAISED_WINDOW_CIRCUIT_BREAKER_WINDOW_SIZE",
                "500",
            ),
            ("RESILIENCE_HIDDEN_BASE_RETRY_BASE_DELAY", "5"),
            ("RESILIENCE_CAP_AS_DEFAULT_RETRY_MAX_DELAY", "60"),
            ("RESILIENCE_BOTH_CODE_RETRY_BASE_DELAY", "1"),
            (
                "RESILIENCE_RATE_FROM_ENV_CIRCUIT_BREAKER_FAILURE_RATE",
                "0.5",
            ),
            ("RESILIENCE_CAP_FROM_ENV_RETRY_MAX_DELAY", "2"),
        ]);
    }
    let seven = || Settings::new().max_attempts(7);
    let slow = || seven().base_delay(Duration::from_secs(120));

    // Above the default 60 s maximum, which a variable raises to 300 s for this provider:
    // the values that apply are sound, the code's are not, and the error says which default
    // the code settings alone meet, and what to give in code.
    let err = Builder::new()
        .provider("raised-init", slow())
        .init()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("Settings::base_delay=120: expected at most the maximum delay that the code settings alone leave at its default (RETRY_MAX_DELAY=60)")
            && text.contains("give max_delay in code too"),
        "{text}"
    );
    assert!(!kept("raised-init"));
    let err = resilience::configure("raised-cfg", slow()).unwrap_err();
    assert!(
        err.to_string().contains("give max_delay in code too"),
        "{err}"
    );
    assert!(!kept("raised-cfg"));
    // Failure-rate mode: a minimum above the default window (100), which a variable widens.
    let rate = seven().failure_rate(Some(0.5)).minimum_calls(200);
    let err = resilience::configure("raised-window", rate).unwrap_err();
    assert!(
        err.to_string().contains("give window_size in code too"),
        "{err}"
    );
    // A variable that overrides the value (a base of 5 s) hides it as well, and one that sets
    // the cap to the default's own 60 s settles nothing.
    for name in ["hidden-base", "cap-as-default"] {
        let err = resilience::configure(name, slow()).unwrap_err();
        assert!(err.to_string().contains("base_delay=120"), "{name}: {err}");
        assert!(!kept(name), "{name}");
    }
    // Two values given in code that conflict, whichever side a variable overrides.
    let both = seven()
        .base_delay(Duration::from_secs(5))
        .max_delay(Duration::from_secs(2));
    let err = resilience::configure("both-code", both).unwrap_err();
    assert!(
        err.to_string()
            .contains("Settings::base_delay=5: expected at most the maximum delay"),
        "{err}"
    );
    assert!(!kept("both-code"));
    // Also where only the environment shows it: a variable that turns failure-rate mode on
    // finds a minimum above the window, both given in code.
    let windows = seven().window_size(50).minimum_calls(200);
    let err = resilience::configure("rate-from-env", windows).unwrap_err();
    assert!(
        err.to_string()
            .contains("Settings::minimum_calls=200: expected at most the window size"),
        "{err}"
    );
    assert!(!kept("rate-from-env"));

    // A conflict the variable makes (its cap of 2 s under the code's base of 5 s) is the
    // environment's: returned, and the code settings kept, as for any variable's problem.
    let five = seven().base_delay(Duration::from_secs(5));
    let err = resilience::configure("cap-from-env", five).unwrap_err();
    assert!(
        err.to_string()
            .contains("(RESILIENCE_CAP_FROM_ENV_RETRY_MAX_DELAY=2)"),
        "{err}"
    );
    assert_eq!(err.problems().len(), 1, "{err}");
    assert!(kept("cap-from-env"));
    // And with no variable in the way, the conflict with the default names it as it applies.
    let err = Builder::new()
        .provider("unsettled", slow())
        .init()
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "Settings::base_delay=120: expected at most the maximum delay (RETRY_MAX_DELAY=60)"
        ),
        "{err}"
    );
}
