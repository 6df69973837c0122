//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::{Classify, ErrorClass, ResilienceError};

/// An error type that carries its class and the attempt that produced it, so a test can tell
/// which attempt's error came back.
#[derive(Debug, Clone, PartialEq)]
pub enum TestError {
    Transient(u32),
    Throttled(u32, Option<Duration>),
    Permanent(u32),
    Resilience(ResilienceError),
}

impl From<ResilienceError> for TestError {
    fn from(e: ResilienceError) -> Self {
        TestError::Resilience(e)
    }
}

impl Classify for TestError {
    fn classify(&self) -> ErrorClass {
        match self {
            TestError::Transient(_) => ErrorClass::Transient,
            TestError::Throttled(_, retry_after) => ErrorClass::Throttled {
                retry_after: *retry_after,
            },
            TestError::Permanent(_) => ErrorClass::Permanent,
            TestError::Resilience(e) => e.classify(),
        }
    }
    fn log_summary(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(format!("{self:?}").into())
    }
}

/// Captures everything logged on this thread while `f` runs.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A subscriber writing every event at debug and above, with its fields, into `Captured`.
pub fn capture() -> (Captured, impl tracing::Subscriber + Send + Sync) {
    let out = Captured::default();
    let writer = out.clone();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (out, sub)
}
