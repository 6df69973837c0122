//! A failed attempt's log text (the error type's `log_summary`, and its redaction) is made only
//! for a line that some subscriber takes: a provider failing where nobody listens at that level
//! pays for no text (from helper-100's review).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::{Classify, ErrorClass, ResilienceError, Settings};
use tracing::subscriber::with_default;
use tracing::{Level, Metadata};

static SUMMARIES: AtomicU32 = AtomicU32::new(0);

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
        SUMMARIES.fetch_add(1, Ordering::Relaxed);
        Some("counted".into())
    }
}

/// Takes the lines at its level and above (more severe); with none, nothing.
struct AtLeast(Option<Level>);

impl tracing::Subscriber for AtLeast {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.0.is_some_and(|l| *metadata.level() <= l)
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Summaries made by one call of two failed attempts (a retry line, then a giving-up line at
/// error level), under `subscriber`.
fn summaries_made(subscriber: AtLeast) -> u32 {
    let before = SUMMARIES.load(Ordering::Relaxed);
    with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let p = resilience::configure(
            "unheard-logs",
            Settings::new()
                .max_attempts(2)
                .base_delay(Duration::from_millis(1))
                .circuit_breaker_enabled(false),
        )
        .unwrap();
        let out = rt.block_on(p.execute(|| async { Err::<(), _>(Counted) }));
        assert!(out.is_err());
    });
    SUMMARIES.load(Ordering::Relaxed) - before
}

#[test]
fn a_failed_attempts_text_is_made_only_for_a_subscriber_that_takes_it() {
    // Nothing at all, then errors only (the giving-up line), then everything.
    assert_eq!(summaries_made(AtLeast(None)), 0);
    assert_eq!(summaries_made(AtLeast(Some(Level::ERROR))), 1);
    assert_eq!(summaries_made(AtLeast(Some(Level::TRACE))), 2);
}
