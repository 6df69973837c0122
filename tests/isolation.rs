//! `testing::isolate()`: tests that run at the same time, on the same provider names, do not
//! see each other's breakers, budgets or configuration. Needs the `testing` feature (see
//! Cargo.toml: `cargo test --workspace` turns it on).

use std::io;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use resilience::{CircuitState, Settings, resilient, testing};

fn fast() -> Settings {
    Settings::new()
        .base_delay(Duration::ZERO)
        .failure_threshold(1)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

struct Client;

impl Client {
    #[resilient(provider = "iso-macro")]
    async fn upload(&self, fail: bool) -> Result<u32, io::Error> {
        if fail {
            Err(io::ErrorKind::ConnectionReset.into())
        } else {
            Ok(7)
        }
    }
}

/// Two threads, as `cargo test` runs two tests: one opens its breaker, then the other calls
/// the same `#[resilient]` method and is let through, and neither's configuration is refused.
#[test]
fn a_test_that_opens_a_breaker_does_not_fail_another() {
    let opened = Arc::new(Barrier::new(2));
    let other = {
        let opened = opened.clone();
        std::thread::spawn(move || {
            let _isolated = testing::isolate();
            // Configured differently from the other test's provider of the same name.
            resilience::configure("iso-macro", Settings::new().max_attempts(2)).unwrap();
            opened.wait();
            let got = runtime().block_on(Client.upload(false));
            assert_eq!(got.unwrap(), 7, "refused by the other test's breaker");
            assert_eq!(
                resilience::provider("iso-macro").state(),
                CircuitState::Closed
            );
        })
    };
    {
        let _isolated = testing::isolate();
        resilience::configure("iso-macro", fast()).unwrap();
        assert!(runtime().block_on(Client.upload(true)).is_err());
        assert_eq!(
            resilience::provider("iso-macro").state(),
            CircuitState::Open
        );
        opened.wait();
        other.join().unwrap();
    }
    // The process's own provider saw none of it.
    assert_eq!(
        resilience::provider("iso-macro").state(),
        CircuitState::Closed
    );
}

#[test]
fn each_guard_has_fresh_providers_and_nested_guards_restore() {
    let outer = testing::isolate();
    let a = resilience::configure("iso-nest", fast()).unwrap();
    a.force_open();
    {
        let _inner = testing::isolate();
        let b = resilience::provider("iso-nest");
        assert_eq!(b.state(), CircuitState::Closed, "a fresh provider");
        assert_eq!(
            b.config().failure_threshold,
            5,
            "the defaults, not the outer guard's"
        );
        let ok: Result<u8, io::Error> = runtime().block_on(b.execute(|| async { Ok(1) }));
        assert_eq!(ok.unwrap(), 1);
    }
    assert_eq!(
        resilience::provider("iso-nest").state(),
        CircuitState::ForcedOpen,
        "the outer guard's provider again"
    );
    drop(outer);
    assert_eq!(
        resilience::provider("iso-nest").state(),
        CircuitState::Closed
    );
}

#[test]
fn configure_under_a_guard_merges_and_refuses_changes_as_the_global_one() {
    let _isolated = testing::isolate();
    let made = resilience::configure("iso-conf", Settings::new().max_attempts(2)).unwrap();
    assert_eq!(made.config().max_attempts, 2);
    assert!(resilience::configure("iso-conf", Settings::new().max_attempts(2)).is_ok());
    // Merged with the first settings, so only the new one is a change.
    let err = resilience::configure("iso-conf", Settings::new().base_delay(Duration::ZERO))
        .unwrap_err()
        .to_string();
    assert!(err.contains("base_delay"), "{err}");
    assert!(!err.contains("max_attempts"), "{err}");
}
