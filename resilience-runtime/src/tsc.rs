//! The TSC clock (quanta), for a call's duration and its attempts' (only with a recorder: two
//! reads per call, which its first attempt shares; one more at each retry's start and at the end
//! of each attempt that is retried).
//! It reads the same real time as the OS clock for about 40% of the cost on our benchmark VM
//! (9–14 ns against 23–32 ns added to a bare call, paired: the bench's `clock_tsc` and
//! `clock_os` rows). An open breaker's rejection reads the kernel's coarse clock instead,
//! cheaper still, where a tick of a few milliseconds does not matter (`Breaker::open_left`).
//!
//! Not quanta's global `Instant::now()`: that checks a thread-local override and a lazy global
//! on every read (about 60 instructions); a raw read of a clock calibrated here is a handful.
//! Where quanta reads the TSC (an x86 CPU whose TSC is invariant), we read it ourselves,
//! inline: quanta's `Clock::raw` is a call and a match on the clock's kind, which took about
//! 3 ns of a call's 30 under the recorder on the Intel Xeon host of runs AZ–BB (stop 40).

use std::sync::OnceLock;

/// A calibrated clock and its scale, for converting spans of its ticks to nanoseconds with
/// one multiplication and a fixed shift (the rejection path converts one per call).
pub(crate) struct Tsc {
    clock: quanta::Clock,
    /// Nanoseconds per 2^32 ticks (2^32 when the clock counts nanoseconds already).
    scale: u64,
    /// quanta reads the x86 TSC itself (see [`reads_the_tsc`]): [`raw`](Self::raw) reads it
    /// here, inline, rather than through quanta's `Clock::raw`, a call and a match on the
    /// clock's kind at each of a call's two readings. Never read on other CPUs.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    direct: bool,
}

impl Tsc {
    fn new() -> Self {
        let clock = quanta::Clock::new();
        // quanta's own scale, as one fixed-point factor. 2^32 ticks of a GHz counter are
        // seconds of real time, so the integer loses less than quanta's calibration is
        // uncertain by (about a millionth); a slower counter (aarch64's, at 24 MHz) keeps
        // seven digits.
        let scale = clock.delta_as_nanos(0, 1 << 32).max(1);
        let direct = reads_the_tsc(&clock);
        Tsc {
            clock,
            scale,
            direct,
        }
    }

    #[cfg(test)]
    fn with_scale(scale: u64) -> Self {
        let clock = quanta::Clock::new();
        let direct = reads_the_tsc(&clock);
        Tsc {
            clock,
            scale,
            direct,
        }
    }

    /// The counter now.
    #[inline]
    pub(crate) fn raw(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if self.direct {
            return rdtsc();
        }
        self.clock.raw()
    }

    /// Nanoseconds in `ticks` of this clock (saturating).
    #[inline]
    pub(crate) fn nanos(&self, ticks: u64) -> u64 {
        let n = (u128::from(ticks) * u128::from(self.scale)) >> 32;
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// Ticks of this clock in `d` (saturating): the inverse of [`nanos`](Self::nanos).
    #[cfg(test)]
    pub(crate) fn ticks(&self, d: std::time::Duration) -> u64 {
        let t = (d.as_nanos() << 32) / u128::from(self.scale);
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    /// Nanoseconds from `start` to `end`, two readings of [`raw`](Self::raw); 0 if `end` is
    /// not after `start`.
    #[inline]
    pub(crate) fn between(&self, start: u64, end: u64) -> u64 {
        if end <= start {
            0
        } else {
            self.nanos(end - start)
        }
    }
}

/// Whether `clock.raw()` reads the x86 TSC, as quanta does where the CPU says its TSC is
/// invariant (else it reads the OS clock, in nanoseconds since boot): a TSC reading of ours
/// falls between two of the clock's, three times running. quanta does not say which it chose,
/// and a check of the CPU's flags of ours could disagree with its own; readings cannot. The OS
/// clock's nanoseconds are several times fewer than the TSC's ticks since boot, so a reading
/// of the TSC never falls between two of them.
fn reads_the_tsc(clock: &quanta::Clock) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        (0..3).all(|_| {
            let before = clock.raw();
            let ours = rdtsc();
            let after = clock.raw();
            before <= ours && ours <= after
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = clock;
        false
    }
}

/// The TSC now.
#[cfg(target_arch = "x86_64")]
#[inline]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` exists on every x86_64 CPU, and reads a register: no memory.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
}

static TSC: OnceLock<Tsc> = OnceLock::new();

/// The clock, calibrating it here if no one has yet: about a millisecond, once per process
/// (quanta bounds it at 200 ms). Called where a wait is acceptable: when a recorder is switched
/// on. No thread of our own does it, so
/// a process that forks never inherits a calibration half done.
#[inline]
pub(crate) fn calibrated() -> &'static Tsc {
    TSC.get_or_init(Tsc::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Only a clock that reads the TSC is read around quanta: a mocked one (whose readings
    /// are set by hand) is not, nor one set at a time that a TSC reading cannot fall between.
    /// (The real clock's readings, direct or not, are checked against real time below.)
    #[test]
    fn a_clock_that_is_not_the_tsc_is_read_through_quanta() {
        let (clock, mock) = quanta::Clock::mock();
        assert!(!reads_the_tsc(&clock));
        mock.increment(u64::MAX / 2);
        assert!(!reads_the_tsc(&clock));
        let tsc = Tsc {
            clock,
            scale: 1 << 32,
            direct: false,
        };
        assert_eq!(tsc.raw(), u64::MAX / 2);
    }

    #[test]
    fn ticks_and_nanos_are_inverse_and_saturate() {
        let tsc = calibrated();
        for d in [
            Duration::from_millis(1),
            Duration::from_secs(30),
            Duration::from_secs(86_400),
        ] {
            let back = tsc.nanos(tsc.ticks(d));
            let err = back.abs_diff(d.as_nanos() as u64);
            // Rounding down twice loses at most one tick's worth and a nanosecond (a tick is
            // under a nanosecond on x86, about 41 ns on a 24 MHz aarch64 counter).
            assert!(err <= tsc.nanos(1) + 2, "{d:?}: {back}");
        }
        assert_eq!(tsc.ticks(Duration::MAX), u64::MAX);
        // A counter slower than 1 GHz: converting its widest span saturates.
        let slow = Tsc::with_scale(u64::from(u32::MAX) * 40);
        assert_eq!(slow.nanos(u64::MAX), u64::MAX);
        assert_eq!(slow.between(0, u64::MAX), u64::MAX);
        assert_eq!(tsc.between(5, 5), 0);
        assert_eq!(tsc.between(6, 5), 0);
        // Real time, which no paused clock can stand in for: the readings are at least 5 ms
        // apart (the sleep) and at most as far apart as the OS clock's readings around them.
        let outer = std::time::Instant::now();
        let a = tsc.raw();
        std::thread::sleep(Duration::from_millis(5));
        let b = tsc.raw();
        let most = outer.elapsed();
        let ours = Duration::from_nanos(tsc.between(a, b));
        assert!(
            ours >= Duration::from_micros(4_950) && ours <= most + most / 100,
            "{ours:?}, not within 5 ms..{most:?}"
        );
    }
}
