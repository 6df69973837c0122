//! Settings given in code must hold without the environment: `init()` and `configure()`
//! refuse them, and keep none of them, when read alone they have a problem of their own,
//! whatever the variables make of the values that apply (helper-235, helper-240,
//! helper-241, helper-242). A conflict that a variable makes is the variable's: returned, and
//! the code settings kept. Its own test binary: it sets the process's environment, which no
//! other test may see.

mod common;

use std::time::Duration;

use resilience::{Builder, ConfigError, Settings};

/// Whether `name`'s provider, made after its settings were given, got their `max_attempts(7)`.
fn kept(name: &str) -> bool {
    resilience::provider(name).config().max_attempts == 7
}

/// The error's text holds every one of `parts`.
#[track_caller]
fn says(err: &ConfigError, parts: &[&str]) {
    let text = err.to_string();
    for part in parts {
        assert!(text.contains(part), "no {part:?} in: {text}");
    }
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
            ("RESILIENCE_LOW_CAP_RETRY_MAX_DELAY", "30"),
            ("RESILIENCE_BAD_CAP_RETRY_MAX_DELAY", "300"),
            ("RESILIENCE_BOTH_CODE_RETRY_BASE_DELAY", "1"),
            (
                "RESILIENCE_RATE_FROM_ENV_CIRCUIT_BREAKER_FAILURE_RATE",
                "0.5",
            ),
            ("RESILIENCE_IMPLICIT_CIRCUIT_BREAKER_FAILURE_RATE", "0.5"),
            ("RESILIENCE_EXPLICIT_CIRCUIT_BREAKER_FAILURE_RATE", "0.5"),
            ("RESILIENCE_CAP_FROM_ENV_RETRY_MAX_DELAY", "2"),
        ]);
    }
    let seven = || Settings::new().max_attempts(7);
    let slow = || seven().base_delay(Duration::from_secs(120));
    let alone = "of the code settings read without the environment, its default";

    // Above the default 60 s maximum, which a variable raises to 300 s for this provider:
    // the values that apply are sound, the code's are not, and the error says which default
    // the code settings alone meet, and what to give in code.
    let err = Builder::new()
        .provider("raised-init", slow())
        .init()
        .unwrap_err();
    says(
        &err,
        &[
            "Settings::base_delay=120: expected at most the maximum delay",
            &format!("{alone} (RETRY_MAX_DELAY=60)"),
            "give a valid max_delay in code beside it",
        ],
    );
    assert_eq!(err.problems().len(), 1, "{err}");
    assert!(!kept("raised-init"));
    let err = resilience::configure("raised-cfg", slow()).unwrap_err();
    says(&err, &[alone, "give a valid max_delay in code"]);
    assert!(!kept("raised-cfg"));
    // Failure-rate mode: a minimum above the default window (100), which a variable widens.
    let rate = seven().failure_rate(Some(0.5)).minimum_calls(200);
    let err = resilience::configure("raised-window", rate).unwrap_err();
    says(&err, &["give a valid window_size in code"]);
    // A variable that overrides the value (a base of 5 s) hides it as well, and one that sets
    // the cap to the default's own 60 s settles nothing.
    for name in ["hidden-base", "cap-as-default"] {
        let err = resilience::configure(name, slow()).unwrap_err();
        says(&err, &["base_delay=120", alone]);
        assert!(!kept(name), "{name}");
    }
    // A variable's cap that leaves the conflict in place (30 s): the values that apply have
    // it, named by the variable, and the code settings alone theirs, with the default; the
    // second claims nothing of the values that apply (it said they were sound: helper-242).
    let err = resilience::configure("low-cap", slow()).unwrap_err();
    says(
        &err,
        &[
            "base_delay=120: expected at most the maximum delay (RESILIENCE_LOW_CAP_RETRY_MAX_DELAY=30)",
            alone,
        ],
    );
    assert_eq!(err.problems().len(), 2, "{err}");
    assert!(!err.to_string().contains("sound"), "{err}");
    assert!(!kept("low-cap"));
    // A cap given in code but refused: the default stands in for it, and the advice is to
    // give a valid one.
    let year_and_more = Duration::from_secs(400 * 86_400);
    let err = resilience::configure("bad-cap", slow().max_delay(year_and_more)).unwrap_err();
    says(
        &err,
        &["Settings::max_delay=34560000", "give a valid max_delay"],
    );
    // Two values given in code that conflict, whichever side a variable overrides.
    let both = seven()
        .base_delay(Duration::from_secs(5))
        .max_delay(Duration::from_secs(2));
    let err = resilience::configure("both-code", both).unwrap_err();
    says(
        &err,
        &["Settings::base_delay=5: expected at most the maximum delay"],
    );
    assert!(!kept("both-code"));
    // Also where only the environment shows it: a variable that turns failure-rate mode on
    // finds a minimum above the window, both given in code; or above the default window,
    // alike whether its 100 is written out or not (left out, the conflict counted as the
    // variable's, and the settings were kept: helper-242).
    let over_default = || seven().minimum_calls(200);
    for (name, settings) in [
        ("rate-from-env", over_default().window_size(50)),
        ("implicit", over_default()),
        ("explicit", over_default().window_size(100)),
    ] {
        let err = resilience::configure(name, settings).unwrap_err();
        says(
            &err,
            &["Settings::minimum_calls=200: expected at most the window size"],
        );
        assert!(!kept(name), "{name}");
    }

    // A conflict the variable makes (its cap of 2 s under the code's base of 5 s) is the
    // environment's: returned, and the code settings kept, as for any variable's problem.
    let five = seven().base_delay(Duration::from_secs(5));
    let err = resilience::configure("cap-from-env", five).unwrap_err();
    says(&err, &["(RESILIENCE_CAP_FROM_ENV_RETRY_MAX_DELAY=2)"]);
    assert_eq!(err.problems().len(), 1, "{err}");
    assert!(kept("cap-from-env"));
    // And with no variable in the way, the conflict with the default names it as it applies.
    let err = Builder::new()
        .provider("unsettled", slow())
        .init()
        .unwrap_err();
    says(
        &err,
        &["Settings::base_delay=120: expected at most the maximum delay (RETRY_MAX_DELAY=60)"],
    );
    // Once: the code settings alone have it as the values that apply do, in the same words.
    let text = err.to_string();
    assert_eq!(text.matches("base_delay=120").count(), 1, "{text}");
}
