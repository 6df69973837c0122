//! What a provider's name says of the program, said once as the provider is made: a name that
//! holds a credential (a base URL's user-info or query), which every log line, metric label and
//! `/health` shows whole, and a count of providers that says names are made from data (each is
//! kept for the process's life). Its own test binary: the count is the process's registry's,
//! which no other test may add to while this one counts.

mod common;

use common::capture;

#[test]
fn a_name_with_a_credential_and_a_thousandth_provider_are_warned_of() {
    let (logs, subscriber) = capture();
    tracing::subscriber::with_default(subscriber, || {
        resilience::provider("https://bob:SECRET1@api.example/v1?key=SECRET2");
        resilience::provider("kimi");
        resilience::provider("glm-4.5");
    });
    let text = logs.text();
    let warned: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warned.len(), 1, "{text}");
    assert!(
        warned[0].contains(
            "[CONFIG] Provider name https://<redacted>@api.example/v1?<redacted> holds what \
             looks like a credential"
        ),
        "{text}"
    );
    assert!(!text.contains("SECRET"), "{text}");

    // Made one by one, up to the thousandth: one warning, at it, and none before or after.
    let made = resilience::providers().len();
    let (logs, subscriber) = capture();
    tracing::subscriber::with_default(subscriber, || {
        for i in made..1_001 {
            resilience::provider(&format!("tenant-{i}"));
        }
    });
    let text = logs.text();
    let warned: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warned.len(), 1, "{text}");
    assert!(
        warned[0].contains(
            "[CONFIG] 1000 providers made (the last tenant-999): each name makes a provider \
             kept for the process's life"
        ),
        "{}",
        warned[0]
    );
    assert_eq!(resilience::providers().len(), 1_001);
}
