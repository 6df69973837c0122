//! The TSC clock (quanta), for the two places that read a clock per call: a call's duration
//! (only with a recorder) and an open breaker's rejection. It reads the same real time as the
//! OS clock for about a third of the cost on our benchmark VM (12–16 ns against 31–48 ns).
//!
//! Not quanta's global `Instant::now()`: that checks a thread-local override and a lazy global
//! on every read (about 60 instructions); a raw read of a clock calibrated here is a handful.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) use quanta::Clock;

static TSC: OnceLock<Clock> = OnceLock::new();

/// The clock, once calibrated.
#[inline]
pub(crate) fn get() -> Option<&'static Clock> {
    TSC.get()
}

/// The clock, calibrating it here if no one has yet: about a millisecond (quanta bounds it
/// at 200 ms). For start-up paths such as installing a recorder.
pub(crate) fn calibrated() -> &'static Clock {
    TSC.get_or_init(Clock::new)
}

/// The clock if calibrated; otherwise starts calibrating it, once, on a thread of its own,
/// so that no caller waits for it.
pub(crate) fn get_or_calibrate_in_background() -> Option<&'static Clock> {
    static STARTED: AtomicBool = AtomicBool::new(false);
    let clock = TSC.get();
    if clock.is_none() && !STARTED.swap(true, Ordering::Relaxed) {
        // Should the thread not start, callers keep to their slower clocks: still right.
        let _ = std::thread::Builder::new()
            .name("resilience-tsc".into())
            .spawn(calibrated);
    }
    clock
}
