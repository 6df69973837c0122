//! The first provider's look over the `RESILIENCE_*` names logs with nothing held, so a log
//! layer that makes a provider of its own while it handles that line (a log shipper with a
//! resilient client) does not wait on itself. Its own test binary: it sets the process's
//! environment, and the look happens once per process.

use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;

/// Makes a provider as each event comes.
struct Shipper;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Shipper {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let _ = resilience::provider("reentrant-shipper");
    }
}

#[test]
fn a_log_layer_that_makes_a_provider_does_not_hang_the_first_one() {
    // SAFETY: the only test in this process, and no other thread runs yet.
    unsafe {
        std::env::set_var("RESILIENCE_REENTRANT_RETRY_MAX_ATEMPTS", "5");
    }
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let subscriber = tracing_subscriber::registry().with(Shipper);
        tracing::subscriber::with_default(subscriber, || {
            let _ = resilience::provider("reentrant");
            done.send(()).unwrap();
        })
    });
    finished
        .recv_timeout(Duration::from_secs(30))
        .expect("making a provider while the typo warning was logged hung");
}
