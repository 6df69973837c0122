//! A log layer that calls into resilience while it handles one of its lines (a log shipper
//! with a resilient client) must not wait on what its own thread holds: the first provider's
//! look over the `RESILIENCE_*` names, a call site's first resolution, a breaker's move. Its
//! own test binary: it sets the process's environment, and the look happens once per process.

mod common;

use std::io;
use std::time::Duration;

use common::re_enters;
use futures_util::FutureExt;
use resilience::{CallSite, CircuitState, Settings};

static SHIP: CallSite = CallSite::new("logsite", "ship");

/// One test, its steps in order: a provider made before the first step would have looked at
/// the names already (once per process), and the first step would then see no warning.
#[test]
fn a_log_layer_that_calls_resilience_does_not_hang() {
    // SAFETY: the only test in this process, and no thread of its own runs yet.
    unsafe {
        common::only_these_variables(&[
            ("RESILIENCE_REENTRANT_RETRY_MAX_ATEMPTS", "5"),
            ("RESILIENCE_LOGSITE_RETRY_MAX_ATTEMPTS", "abc"),
        ]);
    }
    // The typo warning, logged as the first provider is made.
    re_enters(
        "making a provider while the typo warning was logged",
        || {
            let _ = resilience::provider("reentrant-shipper");
        },
        || {
            let _ = resilience::provider("reentrant");
        },
    );
    // The bad value's error, logged as a call site resolves its provider: the layer resolves
    // the same site (it used to wait on the site's cell, which its own thread was filling).
    re_enters(
        "a call site's first resolution, while its bad value was logged",
        || {
            let _ = SHIP.provider();
        },
        || assert_eq!(SHIP.provider().config().max_attempts, 3),
    );
    a_log_layer_that_calls_the_provider_whose_breaker_moves_does_not_hang();
}

/// A breaker's move is logged after its lock is released: a layer that calls the provider
/// as the `[CIRCUIT]` line comes may need a move of its own (with a timeout of 0, the
/// opening is over at once, and its call moves the breaker to half-open).
fn a_log_layer_that_calls_the_provider_whose_breaker_moves_does_not_hang() {
    let settings = Settings::new()
        .failure_threshold(1)
        .breaker_timeout(Duration::ZERO)
        .max_attempts(1);
    let provider = resilience::configure("reentrant-breaker", settings).unwrap();
    let ship = move || {
        let shipped = provider
            .execute(|| async { Ok::<_, io::Error>(()) })
            .now_or_never();
        assert!(matches!(shipped, Some(Ok(()))), "{shipped:?}");
    };
    re_enters("a breaker's opening", ship, move || {
        let failed: Result<(), io::Error> = provider
            .execute(|| async { Err(io::ErrorKind::ConnectionReset.into()) })
            .now_or_never()
            .expect("no retry, so no wait");
        assert!(failed.is_err());
    });
    // The layer's probe after the opening closed it again.
    assert_eq!(provider.state(), CircuitState::Closed);
}
