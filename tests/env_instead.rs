//! Without `init()`, the line that ignores a bad variable names the value the provider it is
//! logged for uses, as `provider(…).config()` has it. Its own test binary: it sets the
//! process's environment, which no other test may see.

mod common;

use std::time::Duration;

use common::capture;

#[test]
fn the_line_names_the_value_the_provider_uses() {
    // SAFETY: the only test in this process, and no other thread runs yet.
    unsafe {
        common::only_these_variables(&[
            // Bad globals: the first provider sets its own attempts, and its own jitter.
            ("RETRY_MAX_ATTEMPTS", "abc"),
            ("RESILIENCE_ENVI_A_RETRY_MAX_ATTEMPTS", "7"),
            ("RETRY_TOTAL_TIMEOUT", "soon"),
            // A bad provider variable over a valid global one.
            ("RESILIENCE_ENVI_A_RETRY_JITTER", "sometimes"),
            ("RETRY_JITTER", "equal"),
        ]);
    }
    let (logs, subscriber) = capture();
    let (a, b) = tracing::subscriber::with_default(subscriber, || {
        (
            resilience::provider("envi-a"),
            resilience::provider("envi-b"),
        )
    });
    let text = logs.text();
    assert_eq!(a.config().max_attempts, 7);
    assert_eq!(b.config().max_attempts, 3);
    assert_eq!(a.config().total_timeout, None::<Duration>);
    assert_eq!(a.config().jitter, resilience::Jitter::Equal);
    // The first provider's own value is named as its own: not as what the global code
    // settings or the default gave, which the other provider uses.
    for line in [
        "Ignoring RETRY_MAX_ATTEMPTS=abc for provider envi-a: expected a whole number of \
         attempts from 1 to 1000 (the first attempt counts); it uses 7 instead (the provider's \
         own setting, which comes before the global variable; a provider that sets none of its \
         own uses the global code settings, then the built-in default).",
        "Ignoring RETRY_TOTAL_TIMEOUT=soon for provider envi-a: expected a number of seconds \
         above 0 (1 ns at least) and below 31536000 (a year; or with a unit: 300ms, 2s, 1.5m, \
         1h), or none; it uses none instead \
         (the next setting in line: the global code settings, then the built-in default, where \
         the provider sets none of its own).",
        "Ignoring RESILIENCE_ENVI_A_RETRY_JITTER=sometimes for provider envi-a: expected one \
         of full, none, equal, decorrelated, true (= full), false (= none); it uses equal \
         instead (the next setting in line: the provider's code settings, the global variable, \
         the global code settings, then the built-in default).",
    ] {
        assert_eq!(text.matches(line).count(), 1, "{line:?} in:\n{text}");
    }
    // Each bad global once, however many providers find it.
    assert_eq!(text.matches("[CONFIG] Ignoring").count(), 3, "{text}");
}
