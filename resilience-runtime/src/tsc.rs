//! The TSC clock (quanta), for the two places that read a clock per call: a call's duration
//! (only with a recorder) and an open breaker's rejection. It reads the same real time as the
//! OS clock for about a third of the cost on our benchmark VM (12–16 ns against 31–48 ns).
//!
//! Not quanta's global `Instant::now()`: that checks a thread-local override and a lazy global
//! on every read (about 60 instructions); a raw read of a clock calibrated here is a handful.

use std::sync::OnceLock;

pub(crate) use quanta::Clock;

static TSC: OnceLock<Clock> = OnceLock::new();

/// The clock, if someone has calibrated it.
#[inline]
pub(crate) fn get() -> Option<&'static Clock> {
    TSC.get()
}

/// The clock, calibrating it here if no one has yet: about a millisecond, once per process
/// (quanta bounds it at 200 ms). Called where a wait is acceptable: when a recorder is switched
/// on, and when a breaker first opens under a running clock. No thread of our own does it, so
/// a process that forks never inherits a calibration half done.
#[inline]
pub(crate) fn calibrated() -> &'static Clock {
    TSC.get_or_init(Clock::new)
}
