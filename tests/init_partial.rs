//! `Builder::init()` installs the code settings when only the environment is wrong, with
//! providers made before it. Its own test binary: it sets the process's environment.

mod common;

use std::time::Duration;

use resilience::{Builder, Settings};

/// A provider made before `init()` (its first call, a `/health` handler) read its variables,
/// valid ones included. From helper-101's review: the soundness check compared such a
/// provider with its code settings read without the environment, so a valid variable that
/// shaped it (here `RESILIENCE_PARTIAL_EARLY_RETRY_MAX_ATTEMPTS=5`; a global one does the same
/// to every provider made) read as "a change to a provider made", and one bad variable
/// elsewhere kept every code setting out again: the service ran on the built-in defaults.
#[test]
fn a_valid_variable_of_a_provider_made_before_init_does_not_drop_sound_code_settings() {
    // SAFETY: the only test in this process, and no thread of its own runs yet.
    unsafe {
        common::only_these_variables(&[
            ("RESILIENCE_PARTIAL_EARLY_RETRY_MAX_ATTEMPTS", "5"),
            // The environment's one problem: a bad value for some other provider.
            ("RESILIENCE_PARTIAL_OTHER_RETRY_BASE_DELAY", "soon"),
        ]);
    }
    let early = resilience::provider("partial-early");
    assert_eq!(early.config().max_attempts, 5);
    let err = Builder::new()
        .provider(
            "partial-later",
            Settings::new().base_delay(Duration::from_millis(123)),
        )
        .init()
        .expect_err("a bad variable");
    assert!(
        err.problems()
            .iter()
            .all(|p| p.variable == "RESILIENCE_PARTIAL_OTHER_RETRY_BASE_DELAY"),
        "only the environment's problem: {err}"
    );
    assert_eq!(
        resilience::provider("partial-later").config().base_delay,
        Duration::from_millis(123),
        "the code settings, sound on their own, were not installed"
    );
}
