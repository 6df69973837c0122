//! A second `init()` layers its code settings over the first's: said, at warn, for each
//! value it changes, as a library and its application may both call `init()`. Its own test
//! binary: the process's registry, which isolation would bypass.

mod common;

use std::time::Duration;

use common::capture;
use resilience::{Builder, Settings};

#[test]
fn a_later_init_that_changes_an_earlier_one_s_settings_says_so() {
    let (logs, subscriber) = capture();
    tracing::subscriber::with_default(subscriber, || {
        Builder::new()
            .defaults(Settings::new().max_attempts(2))
            .provider(
                "init-twice",
                Settings::new().breaker_timeout(Duration::from_secs(30)),
            )
            .init()
            .unwrap();
        assert!(!logs.text().contains("[CONFIG]"), "{}", logs.text());
        Builder::new()
            .defaults(Settings::new().max_attempts(5))
            .provider(
                "init-twice",
                Settings::new()
                    .breaker_timeout(Duration::from_secs(10))
                    .failure_threshold(3),
            )
            .init()
            .unwrap();
    });
    let text = logs.text();
    for line in [
        "WARN resilience: [CONFIG] init() sets Settings::max_attempts of the defaults to 5, over \
         the 2 given in code before (an earlier init(), or configure()): settings in code layer \
         over those before them setting=\"max_attempts\" earlier=\"2\" value=\"5\"",
        "WARN resilience: [CONFIG] init() sets Settings::breaker_timeout of provider \
         `init-twice` to 10, over the 30 given in code before (an earlier init(), or \
         configure()): settings in code layer over those before them provider=\"init-twice\" \
         setting=\"breaker_timeout\" earlier=\"30\" value=\"10\"",
    ] {
        assert_eq!(text.matches(line).count(), 1, "{line:?} in:\n{text}");
    }
    // A value set for the first time (failure_threshold) is no change.
    assert_eq!(text.matches("[CONFIG]").count(), 2, "{text}");
    let config = resilience::provider("init-twice").config();
    assert_eq!(
        (
            config.max_attempts,
            config.breaker_timeout,
            config.failure_threshold
        ),
        (5, Duration::from_secs(10), 3)
    );
    // The same values again: nothing to say.
    let (logs, subscriber) = capture();
    tracing::subscriber::with_default(subscriber, || {
        Builder::new()
            .defaults(Settings::new().max_attempts(5))
            .init()
            .unwrap();
    });
    assert!(!logs.text().contains("[CONFIG]"), "{}", logs.text());

    // A library's `configure()` after its application's `init()` changes the application's
    // setting: said too (it was silent, where the same change by `init()` was a warning).
    Builder::new()
        .provider("init-then-configure", Settings::new().max_attempts(5))
        .init()
        .unwrap();
    let (logs, subscriber) = capture();
    tracing::subscriber::with_default(subscriber, || {
        resilience::configure("init-then-configure", Settings::new().max_attempts(4)).unwrap();
    });
    let text = logs.text();
    let line = "WARN resilience: [CONFIG] configure() sets Settings::max_attempts of provider \
                `init-then-configure` to 4, over the 5 given in code before (an earlier init(), \
                or configure()): settings in code layer over those before them \
                provider=\"init-then-configure\" setting=\"max_attempts\" earlier=\"5\" value=\"4\"";
    assert_eq!(text.matches(line).count(), 1, "{line:?} in:\n{text}");
    assert_eq!(text.matches("[CONFIG]").count(), 1, "{text}");
    assert_eq!(
        resilience::provider("init-then-configure")
            .config()
            .max_attempts,
        4
    );
}
