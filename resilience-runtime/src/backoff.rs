//! Backoff delays: `min(base × exponential_base^n, max)`, then jitter.
//!
//! The functions are pure and take the random number generator as an argument, so tests pin
//! the generator and check exact ranges.

use std::time::Duration;

use rand::Rng;

use crate::config::{Config, Jitter};

/// The delay before retry `n` (0 for the first retry), before jitter:
/// `min(base_delay × exponential_base^n, max_delay)`.
pub fn exponential(config: &Config, n: u32) -> Duration {
    if config.base_delay.is_zero() {
        return Duration::ZERO;
    }
    let secs = config.base_delay.as_secs_f64()
        * config.exponential_base.powi(n.min(i32::MAX as u32) as i32);
    match Duration::try_from_secs_f64(secs) {
        Ok(d) => d.min(config.max_delay),
        // Overflow (the factor reached infinity): the cap is the answer.
        Err(_) => config.max_delay,
    }
}

/// The delay before retry `n`, jittered as configured. `previous` is the delay slept before
/// the previous retry (decorrelated jitter grows from it); pass `Duration::ZERO` for the first.
pub fn delay(config: &Config, n: u32, previous: Duration, rng: &mut impl Rng) -> Duration {
    let d = exponential(config, n);
    match config.jitter {
        Jitter::None => d,
        Jitter::Full => uniform(rng, Duration::ZERO, d),
        Jitter::Equal => uniform(rng, d / 2, d),
        Jitter::Decorrelated => {
            let base = config.base_delay;
            let prev = if previous.is_zero() { base } else { previous };
            let hi = prev.saturating_mul(3).min(config.max_delay);
            uniform(rng, base.min(hi), hi)
        }
    }
}

/// The wait after a `Retry-After` of `ra` (at most the max delay) when the jittered backoff
/// is `jittered` and a deadline leaves `room` (`None`: no deadline). Without jitter, the
/// longer of the two. With it, the backoff comes after the header's wait, not merged with it:
/// the jittered backoff was mostly below it (always, for a first retry told 1 s at the
/// defaults), and every caller told the same time came back at that instant. It ends by the
/// max delay and, under a deadline, within half the room the header's wait leaves: the rest
/// is the retry's own (taken to the deadline's edge, nine in ten callers told 1 s with a 1.1 s
/// deadline retried with 2 ms left, each cut off and counted against the breaker). See
/// [`after_retry_after`] for the rest; a deadline too close for the wait is the caller's to
/// refuse.
pub fn with_retry_after(
    config: &Config,
    ra: Duration,
    jittered: Duration,
    room: Option<Duration>,
    rng: &mut impl Rng,
) -> Duration {
    if config.jitter == Jitter::None {
        return jittered.max(ra);
    }
    let limit = room.map_or(config.max_delay, |left| {
        ra.saturating_add(left.saturating_sub(ra) / 2)
            .min(config.max_delay)
    });
    after_retry_after(ra, jittered, limit, rng)
}

/// The wait after a `Retry-After` of `ra`, with jitter on: `jittered` after it, so that callers
/// told the same time do not all come back at that instant, and no later than `limit`. A
/// spread that would pass the limit is drawn again up to it, not cut to it: cut, it put every
/// caller whose jitter passed the limit at that one instant (four in five, with
/// `Retry-After: 1`, the default 1 s base and a 1.2 s cap). Never shorter than the longer of
/// the two, the wait without the spread: a header lengthens the backoff, and drawn lower, it
/// broke equal jitter's d/2 floor, retried within a deadline that the backoff alone did not
/// fit, and was refused by a breaker the backoff would have outwaited. A backoff already past
/// the limit is that wait, as with no header (the deadline, if any, then decides).
pub fn after_retry_after(
    ra: Duration,
    jittered: Duration,
    limit: Duration,
    rng: &mut impl Rng,
) -> Duration {
    if jittered <= limit.saturating_sub(ra) {
        return ra + jittered;
    }
    let longer = ra.max(jittered);
    uniform(rng, longer, limit.max(longer))
}

fn uniform(rng: &mut impl Rng, lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        return hi;
    }
    // Whole: cut to `u64` nanoseconds (584 years), a draw past that came back below `lo`.
    let nanos = rng.random_range(lo.as_nanos()..=hi.as_nanos());
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn cfg(jitter: Jitter) -> Config {
        Config {
            jitter,
            ..Config::default()
        }
    }

    #[test]
    fn exponential_values_and_cap() {
        let c = cfg(Jitter::None);
        let secs: Vec<f64> = (0..8).map(|n| exponential(&c, n).as_secs_f64()).collect();
        assert_eq!(secs, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]);
        assert_eq!(exponential(&c, u32::MAX), Duration::from_secs(60));
        let zero = Config {
            base_delay: Duration::ZERO,
            ..Config::default()
        };
        assert_eq!(exponential(&zero, 5000), Duration::ZERO);
        let mut rng = SmallRng::seed_from_u64(1);
        assert_eq!(
            delay(&c, 2, Duration::ZERO, &mut rng),
            Duration::from_secs(4)
        );
    }

    #[test]
    fn jitter_ranges() {
        let mut rng = SmallRng::seed_from_u64(7);
        for n in 0..8 {
            let full = cfg(Jitter::Full);
            let equal = cfg(Jitter::Equal);
            let d = exponential(&full, n);
            let mut lo_seen = d;
            for _ in 0..500 {
                let f = delay(&full, n, Duration::ZERO, &mut rng);
                assert!(f <= d);
                lo_seen = lo_seen.min(f);
                let e = delay(&equal, n, Duration::ZERO, &mut rng);
                assert!(e >= d / 2 && e <= d, "{e:?} vs {d:?}");
            }
            // Full jitter really uses the bottom of the range.
            assert!(lo_seen < d / 4, "n={n}: smallest {lo_seen:?} of {d:?}");
        }
    }

    /// Review (extremes): random configurations at and between the ends of every range
    /// (delays of 0, 1 ns and a year, bases of 1 to 1000, retry numbers up to `u32::MAX`,
    /// previous delays up to `Duration::MAX`), seeded: every delay stays within its bounds,
    /// the exponential never shrinks as retries go on, and nothing overflows.
    #[test]
    fn delays_stay_in_bounds_at_the_extremes() {
        const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
        let mut rng = SmallRng::seed_from_u64(128);
        fn pick_duration(rng: &mut SmallRng) -> Duration {
            match rng.random_range(0..5) {
                0 => Duration::ZERO,
                1 => Duration::from_nanos(1),
                2 => YEAR,
                3 => YEAR - Duration::from_nanos(1),
                _ => Duration::from_nanos(rng.random_range(0..=YEAR.as_nanos() as u64)),
            }
        }
        for _ in 0..20_000 {
            let (a, b) = (pick_duration(&mut rng), pick_duration(&mut rng));
            let exponential_base = match rng.random_range(0..4) {
                0 => 1.0,
                1 => 1000.0,
                2 => 1.0 + f64::EPSILON,
                _ => rng.random_range(1.0..=1000.0),
            };
            let n = match rng.random_range(0..6) {
                0 => rng.random_range(0..130),
                1 => u32::MAX - 1,
                2 => i32::MAX as u32,
                3 => i32::MAX as u32 + 1,
                _ => rng.random(),
            };
            // What a call hands in: nothing before its first retry, then the delay slept,
            // which is at least the base (a `Retry-After` may stretch it to the cap).
            let previous = match rng.random_range(0..4) {
                0 => Duration::ZERO,
                1 => Duration::MAX,
                _ => pick_duration(&mut rng).max(a.min(b)),
            };
            for jitter in [
                Jitter::None,
                Jitter::Full,
                Jitter::Equal,
                Jitter::Decorrelated,
            ] {
                let c = Config {
                    base_delay: a.min(b),
                    max_delay: a.max(b),
                    exponential_base,
                    jitter,
                    ..Config::default()
                };
                let d = exponential(&c, n);
                assert!(d <= c.max_delay, "{c:?} n={n}: {d:?}");
                assert!(
                    d <= exponential(&c, n.saturating_add(1)),
                    "{c:?} n={n}: shrank"
                );
                if exponential_base == 1.0 {
                    // The base itself, to the `f64`'s precision (a nanosecond in a year).
                    assert!(
                        d.abs_diff(c.base_delay) <= Duration::from_nanos(4),
                        "{c:?}: {d:?}"
                    );
                }
                let j = delay(&c, n, previous, &mut rng);
                assert!(j <= c.max_delay, "{c:?} n={n} previous={previous:?}: {j:?}");
                match jitter {
                    Jitter::None => assert_eq!(j, d),
                    Jitter::Full => assert!(j <= d),
                    Jitter::Equal => assert!(j >= d / 2 && j <= d),
                    Jitter::Decorrelated => assert!(j >= c.base_delay.min(c.max_delay)),
                }
            }
        }
    }

    /// After a `Retry-After` the jittered delay comes on top, within the limit: one that
    /// would pass it is drawn again in the room left, spread over it, not gathered at its end.
    #[test]
    fn the_spread_after_retry_after_stays_spread_within_its_limit() {
        let mut rng = SmallRng::seed_from_u64(11);
        let (ra, limit) = (Duration::from_secs(1), Duration::from_millis(1200));
        let ms = Duration::from_millis;
        assert_eq!(after_retry_after(ra, ms(150), limit, &mut rng), ms(1150));
        assert_eq!(after_retry_after(ra, ms(200), limit, &mut rng), limit);
        let mut at_limit = 0;
        let mut lowest = limit;
        for _ in 0..1000 {
            let d = after_retry_after(ra, ms(900), limit, &mut rng);
            assert!(d >= ra && d <= limit, "{d:?}");
            at_limit += usize::from(d == limit);
            lowest = lowest.min(d);
        }
        assert!(at_limit < 10, "{at_limit} of 1000 at the limit");
        assert!(
            lowest < ms(1020),
            "the bottom of the room is used: {lowest:?}"
        );
        // No room beyond the header (a limit at it or below): the header's own wait.
        assert_eq!(after_retry_after(ra, ms(900), ra, &mut rng), ra);
        assert_eq!(after_retry_after(ra, ms(900), ms(10), &mut rng), ra);
        let max = Duration::MAX;
        assert_eq!(after_retry_after(max, max, max, &mut rng), max);
    }

    /// A header only ever lengthens the wait: redrawn, the spread fell anywhere in the room
    /// above the header, below the backoff drawn (an equal-jitter draw of 59.5 s of a 60 s
    /// cap, told `Retry-After: 1`, became 1–60 s: under equal jitter's d/2 floor, and under a
    /// breaker's time left open, which `rejects_after` then refused where the backoff alone
    /// retried). A backoff already past the limit is waited as it is, as with no header: the
    /// deadline decides, not a shorter draw.
    #[test]
    fn the_wait_after_retry_after_is_never_shorter_than_the_backoff() {
        let mut rng = SmallRng::seed_from_u64(5);
        let (ms, s) = (Duration::from_millis, Duration::from_secs);
        for (ra, jittered, limit) in [
            (s(1), ms(59_500), s(60)),
            (s(20), s(45), s(60)),
            (s(3), s(5), ms(6_499)),
            (s(3), s(8), ms(6_499)),
            (ms(1), s(2), ms(399)),
        ] {
            let mut lowest = Duration::MAX;
            for _ in 0..200 {
                let d = after_retry_after(ra, jittered, limit, &mut rng);
                assert!(
                    d >= ra.max(jittered),
                    "{ra:?}+{jittered:?} in {limit:?}: {d:?}"
                );
                assert!(
                    d <= limit.max(jittered),
                    "{ra:?}+{jittered:?} in {limit:?}: {d:?}"
                );
                lowest = lowest.min(d);
            }
            if jittered < limit {
                assert!(
                    lowest < limit,
                    "spread, not gathered at the limit: {lowest:?}"
                );
            }
        }
    }

    /// At the extremes of `Duration` too (a call's limit is a year, but the function promises
    /// its bounds for any): a draw above 584 years was cut to `u64` nanoseconds, below the
    /// longer of the two, the wait it must never be shorter than.
    #[test]
    fn the_wait_after_retry_after_keeps_its_bounds_at_the_extremes() {
        let mut rng = SmallRng::seed_from_u64(17);
        let year = Duration::from_secs(365 * 24 * 3600);
        let picks = [
            Duration::ZERO,
            Duration::from_nanos(1),
            year,
            year * 1000,
            year * 3000,
            Duration::from_nanos(u64::MAX),
            Duration::MAX / 2,
            Duration::MAX - Duration::from_nanos(1),
            Duration::MAX,
        ];
        for ra in picks {
            for jittered in picks {
                for limit in picks {
                    for _ in 0..20 {
                        let d = after_retry_after(ra, jittered, limit, &mut rng);
                        let longer = ra.max(jittered);
                        assert!(d >= longer, "{ra:?}+{jittered:?} in {limit:?}: {d:?}");
                        if longer <= limit {
                            assert!(d <= limit, "{ra:?}+{jittered:?} in {limit:?}: {d:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn decorrelated_grows_from_previous_and_is_capped() {
        let c = cfg(Jitter::Decorrelated);
        let mut rng = SmallRng::seed_from_u64(3);
        let mut prev = Duration::ZERO;
        for _ in 0..200 {
            let d = delay(&c, 0, prev, &mut rng);
            let p = if prev.is_zero() { c.base_delay } else { prev };
            assert!(d >= c.base_delay.min(c.max_delay));
            assert!(d <= (p * 3).min(c.max_delay), "{d:?} from {p:?}");
            prev = d;
        }
    }
}
