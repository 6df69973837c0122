//! A conflict between a code setting and a built-in default that a variable settles is no
//! problem (helper-240): `base_delay(120 s)` beside `RESILIENCE_<P>_RETRY_MAX_DELAY=300` is
//! 120 s under 300 s, yet was refused, named against the default 60 s nobody's settings use,
//! once the code settings' own problems were read whatever else was wrong (helper-235's fix).
//! What stays the code's own: a bad value, and a conflict between two values given in code,
//! even where a variable overrides one side. Its own test binary: it sets the process's
//! environment, which no other test may see.

mod common;

use std::time::Duration;

use resilience::{Builder, Settings};

#[test]
fn a_variable_that_settles_a_conflict_with_a_default_leaves_the_settings_sound() {
    // SAFETY: the only test in this process, and no other thread runs yet.
    unsafe {
        common::only_these_variables(&[
            ("RESILIENCE_SETTLED_INIT_RETRY_MAX_DELAY", "300"),
            ("RESILIENCE_SETTLED_CFG_RETRY_MAX_DELAY", "300"),
            (
                "RESILIENCE_SETTLED_WINDOW_CIRCUIT_BREAKER_WINDOW_SIZE",
                "500",
            ),
            ("RESILIENCE_BOTH_CODE_RETRY_BASE_DELAY", "1"),
            ("RESILIENCE_CAP_FROM_ENV_RETRY_MAX_DELAY", "2"),
        ]);
    }
    let slow = Settings::new().base_delay(Duration::from_secs(120));

    Builder::new()
        .provider("settled-init", slow.clone())
        .init()
        .expect("120 s under the variable's 300 s");
    let c = resilience::provider("settled-init").config().clone();
    assert_eq!(
        (c.base_delay, c.max_delay),
        (Duration::from_secs(120), Duration::from_secs(300))
    );
    let p = resilience::configure("settled-cfg", slow).expect("the same through configure()");
    assert_eq!(p.config().base_delay, Duration::from_secs(120));
    // Failure-rate mode: a minimum above the default window (100), which the variable widens.
    let rate = Settings::new().failure_rate(Some(0.5)).minimum_calls(200);
    let p = resilience::configure("settled-window", rate).expect("200 calls in a window of 500");
    assert_eq!(
        (p.config().minimum_calls, p.config().window_size),
        (200, 500)
    );

    // Two values given in code that conflict: the code's own, though the variable that
    // overrides one side (a base of 1 s) leaves the values that apply sound.
    let both = Settings::new()
        .base_delay(Duration::from_secs(5))
        .max_delay(Duration::from_secs(2));
    let err = resilience::configure("both-code", both).unwrap_err();
    assert!(
        err.to_string()
            .contains("Settings::base_delay=5: expected at most the maximum delay"),
        "{err}"
    );
    // A conflict the variable makes (its cap of 2 s under the code's base of 5 s) is the
    // environment's: returned, and the code settings kept, as for any variable's problem.
    let five = Settings::new()
        .base_delay(Duration::from_secs(5))
        .max_attempts(7);
    let err = resilience::configure("cap-from-env", five).unwrap_err();
    assert!(
        err.to_string()
            .contains("(RESILIENCE_CAP_FROM_ENV_RETRY_MAX_DELAY=2)"),
        "{err}"
    );
    assert_eq!(err.problems().len(), 1, "{err}");
    let p = resilience::provider("cap-from-env");
    assert_eq!(p.config().max_attempts, 7, "the code settings are kept");
    // And with no variable in the way, a conflict with the default is the code's own.
    let err = Builder::new()
        .provider(
            "unsettled",
            Settings::new().base_delay(Duration::from_secs(120)),
        )
        .init()
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "Settings::base_delay=120: expected at most the maximum delay (RETRY_MAX_DELAY=60)"
        ),
        "{err}"
    );
}
