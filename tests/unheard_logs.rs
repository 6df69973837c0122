//! A failed attempt's line keeps its error text whatever the subscriber filters on. From
//! helper-101's review: the text was briefly made only when `tracing::enabled!` said a
//! subscriber takes the line, but that asks with a hint's metadata (no fields, another kind
//! and name), so a filter on anything but target and level (events only, here) said no to the
//! hint, yes to the line, and the line went out without its text.

mod hermetic;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::{Classify, ErrorClass, ResilienceError, Settings};
use tracing::Metadata;
use tracing::subscriber::with_default;

#[derive(Debug)]
struct Counted;

impl From<ResilienceError> for Counted {
    fn from(_: ResilienceError) -> Self {
        Counted
    }
}

impl Classify for Counted {
    fn classify(&self) -> ErrorClass {
        ErrorClass::Transient
    }
    fn log_summary(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some("counted".into())
    }
}

/// Takes every event and nothing else (`filter_fn(|m| m.is_event())` on a layer, a common way
/// to keep spans out of a log), and keeps the `error` field of each line that has one.
struct EventsOnly(Arc<Mutex<Vec<Option<String>>>>);

impl tracing::Subscriber for EventsOnly {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event()
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Error(Option<String>);
        impl tracing::field::Visit for Error {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "error" {
                    self.0 = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "error" {
                    self.0 = Some(format!("{value:?}"));
                }
            }
        }
        if event.metadata().fields().field("error").is_some() {
            let mut e = Error(None);
            event.record(&mut e);
            self.0.lock().unwrap().push(e.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_line_that_is_written_keeps_its_error_text() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    with_default(EventsOnly(seen.clone()), || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let p = resilience::configure(
            "unheard-logs-events",
            Settings::new()
                .max_attempts(2)
                .base_delay(Duration::from_millis(1))
                .circuit_breaker_enabled(false),
        )
        .unwrap();
        let out = rt.block_on(p.execute(|| async { Err::<(), _>(Counted) }));
        assert!(out.is_err());
    });
    // The retry's line and the giving-up line.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, vec![Some("counted".to_owned()); 2]);
}
