//! The retry budget: retries may add at most a share of calls, plus a small floor per second.
//!
//! Why a budget and not just max attempts? With max attempts alone, a provider that fails every
//! call receives `max_attempts` times its normal load exactly when it can least take it. Finagle
//! and gRPC's retry throttling bound retries by a share of traffic instead; we do the same.
//!
//! The budget is a token bucket counted in millionths of a retry: every call the breaker
//! admits deposits `ratio` tokens (a refused call sent nothing, so it earns nothing), the
//! clock adds `min_per_second` tokens a second, a retry withdraws one, and the bucket holds at
//! most `capacity` (it starts full). So over any period,
//! `retries ≤ capacity + ratio × calls + min_per_second × seconds`.
//!
//! Sizing: at an 85% first-attempt success rate and 3 attempts, retries need
//! 0.15 + 0.15² ≈ 0.17 per call on average, under the default 0.2, so the defaults still turn
//! 85% into 99%+ while an outage cannot triple the provider's load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU16, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Config;

const UNIT: i64 = 1_000_000;

/// How far ahead of a caller's clock reading the refill mark may be on one clock: a caller
/// that read the clock earlier gets the lock after one that read it later, by microseconds.
const CLOCK_SKEW: Duration = Duration::from_secs(1);

/// A refill mark further ahead than a caller's reading, and than the clock read afresh, was
/// set on another clock: a paused test runtime advanced by minutes, and now a real-clock one
/// in the same process. Credited from now on this clock, the budget refills again at once
/// instead of when real time reaches the paused one's. (A caller whose reading is merely old
/// finds the mark behind the fresh one, and the mark does not go back.)
fn set_on_clock_ahead(mark: Instant, now: Instant) -> bool {
    let ahead = |t: Instant| t.checked_add(CLOCK_SKEW).is_some_and(|t| mark > t);
    ahead(now) && ahead(Instant::now())
}

pub(crate) struct Budget {
    enabled: bool,
    /// `capacity` when enabled and calls earn something, else `i64::MIN`: folds the switch
    /// into the hot path's one comparison. With a ratio of 0 a call has nothing to deposit,
    /// and the bucket, refilled only by the clock when a retry asks, is never full again after
    /// a retry: a deposit of nothing would write the shared balance on every call.
    refill_below: i64,
    balance: AtomicI64,
    capacity: i64,
    deposit: i64,
    refill_per_sec: f64,
    last_refill: Mutex<Option<Instant>>,
    /// How many times the bucket was filled (`fill`, by `reset()`), wrapping: a token taken
    /// before a fill is not given back after it, as the fill gave every token back already.
    /// Moved, and read with a withdrawal or a refund, under `last_refill`'s lock. 16 bits, as
    /// a call keeps it (in padding): 65,536 fills during one backoff would be needed to
    /// mistake one for another.
    fills: AtomicU16,
}

/// Where the words every call reads (the balance, the refill mark) lie in a `Budget`, for the
/// provider's layout test (`registry`).
#[cfg(test)]
pub(crate) const HOT_FIELDS: [usize; 2] = [
    std::mem::offset_of!(Budget, balance),
    std::mem::offset_of!(Budget, refill_below),
];

impl Budget {
    pub(crate) fn new(c: &Config) -> Self {
        let capacity = i64::from(c.retry_budget_capacity) * UNIT;
        // The ratio in millionths, cut to a whole number (a deposit above the ratio would
        // break the bound in the module's docs: rounded to the nearest, 0.0000015 earned
        // 0.000002 a call, a third more), but not where the product only misses its whole
        // number by the product's own error: a ratio written to the millionth is often a
        // hair below it (0.000249 × 10^6 is 248.99999999999997), and cut it earned 248
        // where the setting says 249. (A nonzero ratio is at least 0.000001, one millionth:
        // none earns nothing.)
        let millionths = c.retry_budget_ratio * UNIT as f64;
        let whole = millionths.round();
        let deposit = if (whole - millionths).abs() <= millionths * 4.0 * f64::EPSILON {
            whole
        } else {
            millionths.floor()
        };
        let deposit = deposit.min(capacity as f64) as i64;
        Budget {
            enabled: c.retry_budget_enabled,
            refill_below: if c.retry_budget_enabled && deposit > 0 {
                capacity
            } else {
                i64::MIN
            },
            balance: AtomicI64::new(capacity),
            capacity,
            deposit,
            refill_per_sec: c.retry_budget_min_per_second * UNIT as f64,
            last_refill: Mutex::new(None),
            fills: AtomicU16::new(0),
        }
    }

    /// Called once per logical call the breaker admits (hot path).
    #[inline]
    pub(crate) fn on_call(&self) {
        // A relaxed load: a healthy provider's bucket is full, so the common case writes
        // nothing and two threads calling the same provider never contend on this line.
        if self.balance.load(Ordering::Relaxed) < self.refill_below {
            self.deposit_slow();
        }
    }

    #[cold]
    fn deposit_slow(&self) {
        self.credit(self.deposit);
    }

    /// Adds `amount`, capped at the capacity, in one update: as two (add, then cap), a
    /// withdrawal in between could take from a balance above the capacity.
    fn credit(&self, amount: i64) {
        let _ = self
            .balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_add(amount).min(self.capacity))
            });
    }

    /// Takes one retry from the budget; `false` when it is spent. Cold path: a retry follows.
    #[cfg(test)]
    pub(crate) fn try_withdraw(&self, now: Instant) -> bool {
        self.withdraw(now).is_some()
    }

    /// Takes one retry from the budget: the fill it was taken from, to hand to
    /// [`refund`](Self::refund); `None` when it is spent. Cold path: a retry follows.
    pub(crate) fn withdraw(&self, now: Instant) -> Option<u16> {
        if !self.enabled {
            return Some(0);
        }
        {
            let mut last = self.last_refill.lock().unwrap_or_else(|e| e.into_inner());
            let add = match *last {
                None => {
                    *last = Some(now);
                    0
                }
                Some(l) if set_on_clock_ahead(l, now) => {
                    *last = Some(now);
                    0
                }
                Some(l) => {
                    let elapsed = now.saturating_duration_since(l);
                    let due = elapsed.as_secs_f64() * self.refill_per_sec;
                    let add = due.min(self.capacity as f64) as i64;
                    // The mark moves by the time credited, not to `now`: a slow floor asked
                    // often (0.001 a second, asked every 0.5 ms) would otherwise round every
                    // credit down to nothing and never refill. A full bucket keeps no
                    // remainder. Never backwards: a caller that read the clock earlier but got
                    // the lock later must not make the next caller credit an interval twice.
                    let credited = if due >= self.capacity as f64 {
                        elapsed
                    } else {
                        Duration::try_from_secs_f64(add as f64 / self.refill_per_sec)
                            .map_or(elapsed, |d| d.min(elapsed))
                    };
                    *last = Some(l + credited);
                    add
                }
            };
            if add > 0 {
                self.credit(add);
            }
            // Under the lock, so that no `fill` comes between the token and the fill it is
            // said to come from.
            self.balance
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    (b >= UNIT).then_some(b - UNIT)
                })
                .ok()
                .map(|_| self.fills.load(Ordering::Relaxed))
        }
    }

    /// Back to full, as when the provider was made (`Provider::reset`). Under the clock's
    /// lock, so a refill in progress cannot add to the full balance from a mark before it.
    pub(crate) fn fill(&self) {
        let mut last = self.last_refill.lock().unwrap_or_else(|e| e.into_inner());
        *last = None;
        self.fills.fetch_add(1, Ordering::Relaxed);
        self.balance.store(self.capacity, Ordering::Relaxed);
    }

    /// Gives back a token [`withdraw`](Self::withdraw) took for a retry that was
    /// never made (refused after its backoff, or its call cancelled): the budget bounds the
    /// load retries put on the provider, and that one put none. Not once the bucket was
    /// filled since (`fill`, from `withdraw`'s answer): the fill gave it back already, and
    /// given back again it was a retry more than the filled bucket holds.
    #[cold]
    pub(crate) fn refund(&self, fills: u16) {
        if self.enabled {
            let _last = self.last_refill.lock().unwrap_or_else(|e| e.into_inner());
            if self.fills.load(Ordering::Relaxed) == fills {
                self.credit(UNIT);
            }
        }
    }

    /// Retries the budget would allow right now (for `/health`): the balance plus what the
    /// clock has added since it was last credited, which happens only when a retry asks
    /// (`withdraw`); without it, a budget spent an hour ago would still show empty.
    /// Changes nothing.
    pub(crate) fn available(&self) -> f64 {
        self.available_at(Instant::now())
    }

    fn available_at(&self, now: Instant) -> f64 {
        if !self.enabled {
            // Not its capacity: a budget that is off allows every retry.
            return f64::INFINITY;
        }
        // The balance read under the lock the clock's credits are made under: read after it,
        // such a credit made in between would be counted twice, as balance and as pending.
        let mut last = self.last_refill.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|l| set_on_clock_ahead(l, now)) {
            // As `withdraw` would: from now on, what this clock adds is shown.
            *last = Some(now);
        }
        let pending = last.map_or(0.0, |l| {
            now.saturating_duration_since(l).as_secs_f64() * self.refill_per_sec
        });
        let balance = self.balance.load(Ordering::Relaxed) as f64;
        drop(last);
        (balance + pending).min(self.capacity as f64) / UNIT as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(ratio: f64, per_sec: f64, cap: u32) -> Budget {
        Budget::new(&Config {
            retry_budget_ratio: ratio,
            retry_budget_min_per_second: per_sec,
            retry_budget_capacity: cap,
            ..Config::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn exhausts_then_refills_from_calls_and_time() {
        let b = budget(0.2, 1.0, 3);
        let t0 = Instant::now();
        assert!(b.try_withdraw(t0));
        assert!(b.try_withdraw(t0));
        assert!(b.try_withdraw(t0));
        assert!(!b.try_withdraw(t0), "capacity 3 is spent");
        for _ in 0..4 {
            b.on_call();
        }
        assert!(
            !b.try_withdraw(t0),
            "4 calls × 0.2 = 0.8 retries: not yet one"
        );
        b.on_call();
        assert!(b.try_withdraw(t0), "5 calls × 0.2 = one retry");
        assert!(!b.try_withdraw(t0));
        assert!(
            b.try_withdraw(t0 + Duration::from_secs(1)),
            "the floor adds one a second"
        );
        assert!(!b.try_withdraw(t0 + Duration::from_secs(1)));
        // Never above capacity, however long the wait.
        let later = t0 + Duration::from_secs(3600);
        assert!(b.try_withdraw(later) && b.try_withdraw(later) && b.try_withdraw(later));
        assert!(!b.try_withdraw(later));
    }

    /// A slow floor asked often: each request's share rounds down to nothing, and must not be
    /// thrown away (2,000 failing calls a second against a floor of 0.001 a second).
    #[tokio::test(start_paused = true)]
    async fn a_slow_floor_asked_often_still_refills() {
        let b = budget(0.0, 0.001, 1);
        let t0 = Instant::now();
        assert!(b.try_withdraw(t0));
        let (mut t, mut granted) = (t0, 0);
        for _ in 0..2_400_000 {
            t += Duration::from_micros(500);
            granted += u32::from(b.try_withdraw(t));
        }
        assert_eq!(granted, 1, "1,200 s at 0.001 a second");
        assert!(
            (b.available_at(t) - 0.2).abs() < 1e-6,
            "{}",
            b.available_at(t)
        );
    }

    /// A paused test runtime advanced by hours spent the budget; a real-clock one in the same
    /// process asks next, on a clock hours behind the mark.
    #[tokio::test(start_paused = true)]
    async fn a_mark_set_on_a_clock_ahead_does_not_stall_the_refill() {
        let b = budget(0.0, 1.0, 5);
        let t0 = Instant::now();
        let ahead = t0 + Duration::from_secs(3 * 3600);
        while b.try_withdraw(ahead) {}
        assert!(!b.try_withdraw(t0), "nothing is credited for the jump back");
        assert!(
            b.try_withdraw(t0 + Duration::from_secs(2)),
            "two seconds on this clock refill two retries"
        );
        assert!(b.try_withdraw(t0 + Duration::from_secs(2)));
        assert!(!b.try_withdraw(t0 + Duration::from_secs(2)));
        assert_eq!(b.available_at(t0 + Duration::from_secs(3)), 1.0);
        // A caller whose reading is old (taken before another caller's) finds the mark ahead
        // of it, but not of the clock: it moves nothing back, and no interval is credited
        // twice.
        tokio::time::advance(Duration::from_secs(10)).await;
        let t1 = t0 + Duration::from_secs(10);
        while b.try_withdraw(t1) {}
        assert!(!b.try_withdraw(t1 - Duration::from_secs(8)));
        let later = t1 + Duration::from_secs(1);
        assert!(b.try_withdraw(later), "a second after the mark: one retry");
        assert!(!b.try_withdraw(later), "not nine");
    }

    /// What `/health` shows after the jump back: the budget refilling on this clock, not the
    /// balance frozen until a retry asks.
    #[tokio::test(start_paused = true)]
    async fn available_after_a_mark_set_on_a_clock_ahead_counts_this_clock() {
        let b = budget(0.0, 1.0, 5);
        let t0 = Instant::now();
        while b.try_withdraw(t0 + Duration::from_secs(3 * 3600)) {}
        assert_eq!(b.available_at(t0), 0.0);
        assert_eq!(b.available_at(t0 + Duration::from_secs(3)), 3.0);
    }

    #[tokio::test(start_paused = true)]
    async fn fill_makes_it_as_new() {
        let b = budget(0.0, 1.0, 3);
        let t0 = Instant::now();
        while b.try_withdraw(t0) {}
        b.fill();
        assert_eq!(b.available_at(t0), 3.0);
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| b.try_withdraw(later)));
        assert!(!b.try_withdraw(later), "full is the capacity, not more");
    }

    #[tokio::test(start_paused = true)]
    async fn available_counts_what_the_clock_added_since_the_last_retry() {
        let b = budget(0.0, 1.0, 5);
        let t0 = Instant::now();
        while b.try_withdraw(t0) {}
        assert_eq!(b.available_at(t0), 0.0);
        assert_eq!(b.available_at(t0 + Duration::from_millis(2500)), 2.5);
        assert_eq!(
            b.available_at(t0 + Duration::from_secs(3600)),
            5.0,
            "an hour later the budget is full, not still spent"
        );
        // Asking changed nothing: a retry at 1.5 s finds 1.5 retries, takes one.
        assert!(b.try_withdraw(t0 + Duration::from_millis(1500)));
        assert_eq!(b.available_at(t0 + Duration::from_millis(1500)), 0.5);
    }

    /// Review (retry path): with a ratio of 0 a call earns nothing, and the bucket refills only
    /// by the clock when a retry asks, so after one retry it is never full again while the
    /// provider is healthy. A call must not go on to the deposit there: a read-modify-write of
    /// nothing on the shared balance, on every call, on every thread, for good.
    #[tokio::test(start_paused = true)]
    async fn calls_that_earn_nothing_never_write_the_balance() {
        for per_sec in [0.0, 10.0] {
            let b = budget(0.0, per_sec, 5);
            assert!(b.try_withdraw(Instant::now()));
            assert!(
                b.balance.load(Ordering::Relaxed) >= b.refill_below,
                "min_per_second {per_sec}: a call would take the deposit's write"
            );
            b.on_call();
            assert_eq!(b.available_at(Instant::now()), 4.0);
        }
    }

    /// A ratio written to the millionth earns that many millionths a call: 4,017 calls at
    /// 0.000249 earn 1.000233 retries, where the deposit cut to 248 millionths earned
    /// 0.996216.
    #[tokio::test(start_paused = true)]
    async fn a_ratio_in_millionths_earns_exactly_that() {
        let b = budget(0.000249, 0.0, 1);
        let now = Instant::now();
        assert!(b.try_withdraw(now));
        for _ in 0..4_016 {
            b.on_call();
        }
        assert!(!b.try_withdraw(now), "4,016 calls earn 0.999984 retries");
        b.on_call();
        assert!(b.try_withdraw(now), "4,017 calls earn one");
    }

    /// A ratio finer than a millionth earns its millionths cut, never more than the ratio:
    /// rounded to the nearest, 0.0000015 deposited 2 millionths a call, and 500,000 calls
    /// (worth 0.75 retries by the bound `capacity + ratio × calls`) earned a whole retry.
    #[tokio::test(start_paused = true)]
    async fn a_deposit_never_exceeds_the_ratio() {
        let b = budget(0.0000015, 0.0, 1);
        let now = Instant::now();
        assert!(b.try_withdraw(now));
        for _ in 0..666_666 {
            b.on_call();
        }
        assert!(!b.try_withdraw(now), "666,666 calls × 0.0000015 < 1");
        let b = budget(0.2000005, 0.0, 1);
        assert_eq!(b.deposit, 200_000);
        for (ratio, millionths) in [
            (0.000001, 1),
            (0.000249, 249),
            (0.2, 200_000),
            (0.57, 570_000),
        ] {
            assert_eq!(budget(ratio, 0.0, 1).deposit, millionths, "{ratio}");
        }
    }

    #[test]
    fn full_bucket_stays_full_and_disabled_always_allows() {
        let b = budget(0.2, 10.0, 100);
        for _ in 0..1000 {
            b.on_call();
        }
        assert_eq!(b.available(), 100.0);
        let off = Budget::new(&Config {
            retry_budget_enabled: false,
            retry_budget_capacity: 1,
            ..Config::default()
        });
        let now = Instant::now();
        assert!((0..10).all(|_| off.try_withdraw(now)));
        assert_eq!(off.available(), f64::INFINITY, "not its capacity of 1");
    }

    /// Withdrawals, refunds and fills from several threads at once: when all is done, the
    /// balance is the capacity less the tokens kept (retries made) since the last fill. A
    /// refund of a token taken before a fill gives nothing, one taken after it gives the
    /// token back, and none is lost or given back twice.
    #[test]
    fn concurrent_withdrawals_refunds_and_fills_keep_the_count() {
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;
        for round in 0..10 {
            let b = Arc::new(budget(0.0, 0.0, 50));
            let now = Instant::now();
            let stop = Arc::new(AtomicBool::new(false));
            let filler = {
                let (b, stop) = (b.clone(), stop.clone());
                std::thread::spawn(move || {
                    for _ in 0..2_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        b.fill();
                        std::thread::yield_now();
                    }
                })
            };
            let workers: Vec<_> = (0..3u32)
                .map(|t| {
                    let b = b.clone();
                    std::thread::spawn(move || {
                        let (mut kept, mut held) = (Vec::new(), Vec::new());
                        for i in 0..10_000u32 {
                            held.extend(b.withdraw(now));
                            match (i + t) % 3 {
                                0 => held.pop().into_iter().for_each(|f| b.refund(f)),
                                1 => kept.extend(held.pop()),
                                _ => {}
                            }
                        }
                        held.into_iter().for_each(|f| b.refund(f));
                        kept
                    })
                })
                .collect();
            let kept: Vec<u16> = workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect();
            stop.store(true, Ordering::Relaxed);
            filler.join().unwrap();
            let last = b.fills.load(Ordering::Relaxed);
            let spent = kept.iter().filter(|&&f| f == last).count() as f64;
            assert_eq!(b.available_at(now), 50.0 - spent, "round {round}");
        }
    }
}
