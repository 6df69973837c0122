//! A global misspelt without the prefix (`RETRY_MAX_ATEMPTS`) may be another program's
//! variable: in strict mode too it is a warning naming ours, never a problem `init()` returns
//! (the README's promise; the unit test only saw that `init()` succeeds). Its own test binary:
//! it sets the process's environment, which no other test may see.

mod common;

use common::capture;
use resilience::Builder;

#[test]
fn strict_mode_still_warns_of_an_unprefixed_near_miss() {
    // SAFETY: the only test in this process, and no other thread runs yet.
    unsafe {
        common::only_these_variables(&[("RETRY_MAX_ATEMPTS", "5")]);
    }
    let (logs, subscriber) = capture();
    tracing::subscriber::with_default(subscriber, || {
        Builder::new()
            .strict()
            .init()
            .expect("another program's variable is no problem, even in strict mode");
    });
    let text = logs.text();
    let warning = "WARN resilience: [CONFIG] RETRY_MAX_ATEMPTS is no resilience setting, but near \
                   one: did you mean RETRY_MAX_ATTEMPTS?";
    assert_eq!(text.matches(warning).count(), 1, "{text}");
    assert_eq!(text.matches("[CONFIG]").count(), 1, "{text}");
}
