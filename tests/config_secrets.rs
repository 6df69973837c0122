//! A secret pasted into the wrong variable (an API key in `RETRY_MAX_ATTEMPTS`, a push
//! gateway's URL with its credentials in `RESILIENCE_METRICS_ADDR`) is named by the problem
//! it makes, but not shown: a value too long to be any setting's is shown by its length, and a
//! shorter one has its URL credentials, query and fragment redacted, in `init()`'s error, in
//! the `[CONFIG]` line logged without `init()`, and in `serve_from_env()`'s error. Its own
//! test binary: it sets the process's environment.

mod common;

const KEY: &str = "sk-live-4f9a8b7c6d5e4f3a2b1cSECRET1";
const DSN: &str = "https://u:SECRET2@push.example";

#[test]
fn a_secret_in_the_wrong_variable_is_not_shown() {
    // SAFETY: the only test in this process, and no thread of its own runs yet.
    unsafe {
        common::only_these_variables(&[
            ("RESILIENCE_CFGSECRET_RETRY_MAX_ATTEMPTS", KEY),
            ("RESILIENCE_CFGSECRET_RETRY_JITTER", DSN),
            ("RESILIENCE_METRICS_ADDR", DSN),
        ]);
    }
    let logs = common::capture_globally();

    // Without `init()`: the provider is made, and each bad value logged at error level.
    let p = resilience::provider("cfgsecret");
    assert_eq!(p.config().max_attempts, 3, "the bad value is ignored");
    let text = logs.text();
    assert!(
        text.contains("RESILIENCE_CFGSECRET_RETRY_MAX_ATTEMPTS=<35 characters, not shown>"),
        "{text}"
    );
    assert!(
        text.contains("RESILIENCE_CFGSECRET_RETRY_JITTER=\"https://<redacted>@push.example\""),
        "{text}"
    );

    // `init()`: every problem, named, in its error.
    let err = resilience::init().unwrap_err().to_string();
    assert!(
        err.contains("RESILIENCE_CFGSECRET_RETRY_MAX_ATTEMPTS=<35 characters, not shown>"),
        "{err}"
    );
    assert!(
        err.contains("RESILIENCE_METRICS_ADDR=\"https://<redacted>@push.example\""),
        "{err}"
    );

    // `serve_from_env()`.
    let rt = common::current_thread();
    let served = rt.block_on(resilience::telemetry::serve_from_env());
    let served = served.map(|_| ()).unwrap_err().to_string();
    assert!(
        served.contains("RESILIENCE_METRICS_ADDR=\"https://<redacted>@push.example\""),
        "{served}"
    );

    for (what, text) in [
        ("logs", logs.text()),
        ("init()", err),
        ("serve_from_env()", served),
    ] {
        for secret in ["SECRET1", "SECRET2", "4f9a8b7c6d5e"] {
            assert!(!text.contains(secret), "{secret} in {what}:\n{text}");
        }
    }
}
