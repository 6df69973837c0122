//! `configure()` says what it changes of the code settings before it whenever it keeps its
//! own: when its error's every problem is the environment's (kept, as README says), and when
//! a variable overrides the setting it changes of a provider made already. Its own test
//! binary: it sets the process's environment, which no other test may see.

mod common;

use common::capture;
use resilience::Settings;

#[test]
fn configure_says_what_it_changes_whenever_its_settings_are_kept() {
    // SAFETY: the only test in this process, and no other thread runs yet.
    unsafe {
        common::only_these_variables(&[
            ("RESILIENCE_CFG_KEPT_RETRY_JITTER", "sometimes"),
            ("RESILIENCE_CFG_OVER_RETRY_MAX_ATTEMPTS", "9"),
        ]);
    }
    resilience::Builder::new()
        .provider("cfg-kept", Settings::new().max_attempts(5))
        .init()
        .unwrap_err();
    let cfg_over = resilience::configure("cfg-over", Settings::new().max_attempts(5)).unwrap();
    assert_eq!(cfg_over.config().max_attempts, 9);
    let (logs, subscriber) = capture();
    tracing::subscriber::with_default(subscriber, || {
        // Every problem the environment's: kept, and so a change of the 5 given before.
        let err = resilience::configure("cfg-kept", Settings::new().max_attempts(4)).unwrap_err();
        assert!(
            err.problems()
                .iter()
                .all(|p| p.variable == "RESILIENCE_CFG_KEPT_RETRY_JITTER"),
            "{err}"
        );
        // The provider made already keeps the variable's 9; the code's 5 is now 4.
        resilience::configure("cfg-over", Settings::new().max_attempts(4)).unwrap();
        // Refused (a setting's own problem): nothing kept, nothing said.
        resilience::configure(
            "cfg-kept",
            Settings::new().max_attempts(3).failure_threshold(0),
        )
        .unwrap_err();
        // The same value again: nothing changed.
        resilience::configure("cfg-over", Settings::new().max_attempts(4)).unwrap();
    });
    let text = logs.text();
    for name in ["cfg-kept", "cfg-over"] {
        let line = format!(
            "WARN resilience: [CONFIG] configure() sets Settings::max_attempts of provider \
             `{name}` to 4, over the 5 given in code before"
        );
        assert_eq!(text.matches(&line).count(), 1, "{line:?} in:\n{text}");
    }
    assert_eq!(text.matches("configure() sets").count(), 2, "{text}");
}
