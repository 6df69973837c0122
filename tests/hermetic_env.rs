//! The runner's resilience variables do not reach the tests (`tests/hermetic`): this binary
//! runs its own test again as a child with some of them exported, and the child finds them
//! gone and its providers on their defaults.

mod hermetic;

use std::process::Command;

#[test]
fn the_runner_s_variables_are_removed_before_main() {
    // The child: set only by the parent below.
    if std::env::var_os("HERMETIC_ENV_CHILD").is_some() {
        // `vars_os`: `vars` panics at any name or value that is not UTF-8, the runner's own
        // included, whatever its name.
        let left: Vec<_> = std::env::vars_os()
            .map(|(k, _)| k)
            .filter(|k| hermetic::is_resilience_variable(k))
            .map(|k| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, Vec::<String>::new(), "removed before main");
        let c = resilience::provider("hermetic").config();
        assert!(c.enabled);
        assert_eq!(c.max_attempts, 3);
        assert_eq!(c.failure_threshold, 5);
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap());
    // A name that is not UTF-8 (resilience reads it with U+FFFD, and warns about it).
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let _ = child.env(std::ffi::OsStr::from_bytes(b"RESILIENCE_\xff_ENABLED"), "0");
    }
    let out = child
        .args([
            "--exact",
            "the_runner_s_variables_are_removed_before_main",
            "--nocapture",
        ])
        .env("HERMETIC_ENV_CHILD", "1")
        .env("RETRY_MAX_ATTEMPTS", "5")
        .env("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "1")
        .env("RESILIENCE_ENABLED", "false")
        .env("RESILIENCE_HERMETIC_RETRY_MAX_ATTEMPTS", "9")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 passed"), "the child ran the test: {text}");
}
