//! Review (helper-135): a bad value with a line feed, logged without `init()`, is named
//! quoted and escaped in the line's text, but its `value` field held it written by its
//! `Display`, which the fmt output does not escape: the line was split, and the next began
//! with whatever followed the line feed. So did a near miss's `provider` field, for a name
//! given in code. Its own test binary: it sets the process's environment, which no other
//! test may see.

mod common;

#[test]
fn a_line_feed_in_a_logged_field_does_not_split_its_line() {
    // SAFETY: the only test in this process, and no other thread runs yet.
    unsafe {
        common::only_these_variables(&[("RESILIENCE_ENVV_RETRY_JITTER", "full\nFORGED")]);
    }
    let (logs, subscriber) = common::capture();
    tracing::subscriber::with_default(subscriber, || {
        resilience::provider("envv");
        // One edit off `envv`: a near miss, whose line names the name given.
        let _ = resilience::Builder::new()
            .provider("en\nvv", resilience::Settings::new().max_attempts(5))
            .init();
    });
    let text = logs.text();
    assert!(
        text.contains("Ignoring RESILIENCE_ENVV_RETRY_JITTER=\"full\\nFORGED\" for provider envv"),
        "{text}"
    );
    assert!(
        text.contains("Builder::provider(\"en\\nvv\", …) sets up a provider"),
        "{text}"
    );
    for l in text.lines() {
        assert!(l.contains(" resilience: [CONFIG] "), "{l:?} in:\n{text}");
    }
}
