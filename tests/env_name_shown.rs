//! A variable whose name would not show plainly (a space or an invisible character at its end,
//! from an env file's `NAME =value` or a pasted snippet; a line feed) is named quoted and
//! escaped, as a value is: shown as it is, a warning read "X matches no resilience setting: did
//! you mean X?" with the two names alike on screen, and a line feed split the log line and the
//! one-problem-a-line list of `init()`'s error. Its own test binary: it sets the process's
//! environment, which no other test may see.

mod common;

use common::capture;

#[test]
fn names_that_would_not_show_plainly_are_quoted() {
    // SAFETY: the only test in this process, and no other thread runs yet.
    unsafe {
        common::only_these_variables(&[
            ("RESILIENCE_ENVQ_RETRY_MAX_ATTEMPTS ", "5"),
            ("RESILIENCE_ENVQ_RETRY_BASE_DELAY\u{200b}", "1"),
            // Review (helper-137): a mark that never shows, inside the name.
            ("RESILIENCE_ENVQ_RETRY_JITTE\u{34f}R", "none"),
            ("RESILIENCE_ENVQ_RETRY_JITTER\nFORGED", "none"),
            ("RESILIENCE_envq\n_RETRY_MAX_ATTEMPTS", "2"),
        ]);
    }
    let (logs, subscriber) = capture();
    tracing::subscriber::with_default(subscriber, || resilience::provider("envq"));
    let text = logs.text();
    for line in [
        "WARN resilience: [CONFIG] \"RESILIENCE_ENVQ_RETRY_MAX_ATTEMPTS \" matches no \
         resilience setting; it is ignored: did you mean RESILIENCE_ENVQ_RETRY_MAX_ATTEMPTS?",
        "WARN resilience: [CONFIG] \"RESILIENCE_ENVQ_RETRY_BASE_DELAY\\u{200b}\" matches no \
         resilience setting",
        "WARN resilience: [CONFIG] \"RESILIENCE_ENVQ_RETRY_JITTE\\u{34f}R\" matches no \
         resilience setting",
        "WARN resilience: [CONFIG] \"RESILIENCE_ENVQ_RETRY_JITTER\\nFORGED\" matches no \
         resilience setting",
        "WARN resilience: [CONFIG] \"RESILIENCE_envq\\n_RETRY_MAX_ATTEMPTS\" is read by no \
         provider",
    ] {
        assert_eq!(text.matches(line).count(), 1, "{line:?} in:\n{text}");
    }
    // The text names it escaped; the `variable` field holds the name as it is, as a line's
    // `provider` field holds a provider's: for a structured reader, and escaped by the fmt
    // output as a string is. Review (helper-135): recorded by its `Display`, the field wrote
    // the line feed as it is, and a line began with what followed it (`FORGED`).
    for l in text.lines() {
        assert!(
            l.contains(" WARN resilience: [CONFIG] "),
            "{l:?} in:\n{text}"
        );
    }

    let err = resilience::init().unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid resilience configuration (1 problem)\n  - \
         \"RESILIENCE_envq\\n_RETRY_MAX_ATTEMPTS\": expected the provider upper-cased, other \
         characters than A-Z and 0-9 as `_` (RESILIENCE_ENVQ__RETRY_MAX_ATTEMPTS): no provider \
         reads this name"
    );
}
