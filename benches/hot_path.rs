//! `#[resilient]` against a bare call and against the peers, on the same trivial op, in one run.
//!
//! ```sh
//! cargo bench -p resilience-benches                         # everything (~6 minutes)
//! python3 benches/summarize.py                              # medians, ratios, paired results
//! ```
//!
//! Every benchmark times its own loop inside one `block_on` (`iter_custom`), so the bare call
//! and the wrapped ones pay exactly the same harness cost. Benchmarks that need no metrics
//! recorder run first; the one that installs the Prometheus recorder runs last, because a
//! recorder cannot be uninstalled.

use std::cell::RefCell;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::futures::CircuitBreaker as _;
use recloser::{AsyncRecloser, Recloser};
use resilience::{ResponseExt, Settings, resilient};
use tower::retry::budget::{Budget, TpsBudget};
use tower::retry::{Policy, Retry};
use tower::{Service, ServiceExt, service_fn};
use tower_resilience_circuitbreaker::CircuitBreakerLayer;

#[path = "floor.rs"]
mod floor;
#[path = "rejectable.rs"]
mod rejectable;

use rejectable::Rejectable;

/// The op every contender wraps. `inline(never)` keeps only the future's constructor out of
/// line: its poll, `Ok(black_box(1))`, is inlined into every contender alike, and the `Ok`
/// is known to the optimiser, so no wrapper's error path costs anything here. The bare call
/// is about 2.2 ns, so each contender's added nanoseconds, printed beside its ratio, say more
/// than the ratio does.
#[inline(never)]
async fn op() -> Result<u64, std::io::Error> {
    Ok(black_box(1))
}

#[resilient(provider = "bench-closed")]
async fn resilient_op() -> Result<u64, std::io::Error> {
    op().await
}

/// `resilient_op` again, under a name awaited in one place only: the loop that criterion's
/// benchmark and the paired batches share, as a method is that one caller awaits. There the
/// optimiser may inline its poll, which it does not for `resilient_op`, awaited in 21 places
/// (its poll a function of its own, saving and restoring six registers on every call).
#[resilient(provider = "bench-closed")]
async fn resilient_one_site() -> Result<u64, std::io::Error> {
    op().await
}

#[resilient(provider = "bench-open")]
async fn resilient_open() -> Result<u64, Rejectable> {
    op().await.map_err(Rejectable::Io)
}

#[resilient(provider = "bench-forced")]
async fn resilient_forced() -> Result<u64, Rejectable> {
    op().await.map_err(Rejectable::Io)
}

#[resilient(provider = "bench-shared")]
async fn resilient_shared() -> Result<u64, std::io::Error> {
    op().await
}

#[resilient(provider = "bench-metrics")]
async fn resilient_metrics() -> Result<u64, std::io::Error> {
    op().await
}

/// Whether breakers read the coarse clock here: off Linux they keep to Tokio's clock, and
/// `coarse_clock()` is a constant 0, whose row would time nothing and look like the cheapest
/// clock.
const COARSE_CLOCK: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// The op and a read of the kernel's coarse monotonic clock (`CLOCK_MONOTONIC_COARSE` on
/// Linux: no TSC read, ticks of 1–4 ms), the cheapest clock that needs no thread of its own,
/// read as an open breaker's rejection reads it (through the vDSO, since stop 41).
async fn clock_coarse() -> (Result<u64, std::io::Error>, u64) {
    (op().await, black_box(resilience::__private::coarse_clock()))
}

/// The op and a read of the OS clock (`CLOCK_MONOTONIC`), which Tokio's clock reads.
async fn clock_os() -> (Result<u64, std::io::Error>, Instant) {
    (op().await, black_box(Instant::now()))
}

/// failsafe with the policy our bench providers run: open after 5 consecutive failures. Its
/// default (`Config::new()`) also keeps a success rate over a time window, which reads the
/// clock twice on every success: measured as `failsafe_default`, beside it, not as the peer.
fn failsafe_consecutive() -> failsafe::StateMachine<
    failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::Exponential>,
    (),
> {
    use failsafe::{Config, backoff, failure_policy};
    Config::new()
        .failure_policy(failure_policy::consecutive_failures(
            5,
            backoff::exponential(Duration::from_secs(10), Duration::from_secs(60)),
        ))
        .build()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Times `iters` sequential awaits of `f()` inside one `block_on`.
fn timed<F, Fut, T>(rt: &tokio::runtime::Runtime, iters: u64, f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    rt.block_on(time_loop(iters, f))
}

/// `iters` sequential awaits of `f()`, timed inside the future (so whatever polls it costs
/// nothing): the one loop that criterion's benchmarks and the paired batches both time.
async fn time_loop<F, Fut, T>(iters: u64, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let t = Instant::now();
    for _ in 0..iters {
        black_box(f().await);
    }
    t.elapsed()
}

/// `n` OS threads, each on its own current-thread runtime with the loop `make_loop(iters, i)`
/// (`i` the thread's index), start together and make `iters` calls each. Returns the wall
/// time from the first thread's start to the last one's finish, so a thread that starts late
/// counts against the run instead of hiding outside it.
fn threads<M, Fut>(n: usize, iters: u64, make_loop: M) -> Duration
where
    M: Fn(u64, usize) -> Fut + Sync,
    Fut: Future<Output = ()>,
{
    let (ready, go) = (AtomicUsize::new(0), AtomicBool::new(false));
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let (ready, go, make_loop) = (&ready, &go, &make_loop);
                s.spawn(move || {
                    let rt = rt();
                    let fut = make_loop(iters, i);
                    ready.fetch_add(1, Ordering::AcqRel);
                    // A spin, not a barrier: a barrier's wake-ups come a scheduler tick apart.
                    while !go.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                    let start = Instant::now();
                    rt.block_on(fut);
                    (start, Instant::now())
                })
            })
            .collect();
        while ready.load(Ordering::Acquire) < n {
            std::thread::yield_now();
        }
        go.store(true, Ordering::Release);
        let spans: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        let first = spans.iter().map(|s| s.0).min().unwrap();
        let last = spans.iter().map(|s| s.1).max().unwrap();
        last - first
    })
}

#[derive(Clone)]
struct BudgetPolicy(Arc<TpsBudget>);

impl<Req: Clone, Res, E> Policy<Req, Res, E> for BudgetPolicy {
    type Future = std::future::Ready<()>;
    fn retry(&mut self, _: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        match result {
            Ok(_) => {
                self.0.deposit();
                None
            }
            Err(_) => self.0.withdraw().then(|| std::future::ready(())),
        }
    }
    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

/// (1), (2), (4), (5): one thread.
// The tower services need `&mut self`; iterations run one after another on a current-thread
// runtime, so a `RefCell` borrow held over the await can never be contended, and cloning the
// service per call instead would charge the peers for an `Arc` clone they would not pay.
#[allow(clippy::await_holding_refcell_ref)]
fn single_thread(c: &mut Criterion) {
    let rt = rt();
    let mut g = c.benchmark_group("one_thread");

    g.bench_function("bare", |b| b.iter_custom(|n| timed(&rt, n, op)));
    g.bench_function("resilient", |b| {
        b.iter_custom(|n| timed(&rt, n, resilient_op))
    });
    g.bench_function("resilient_one_site", |b| {
        b.iter_custom(|n| timed(&rt, n, resilient_one_site))
    });

    // A breaker opened by failures (timed): the rejection reports `retry_in`, which needs the
    // clock. And one forced open by hand, which needs none.
    resilience::configure(
        "bench-open",
        Settings::new().breaker_timeout(Duration::from_secs(86_400)),
    )
    .unwrap();
    resilience::provider("bench-open").force_open();
    resilience::provider("bench-open").reset();
    let opener = resilience::provider("bench-open");
    rt.block_on(async {
        for _ in 0..5 {
            let _: Result<(), std::io::Error> = opener
                .execute(|| async { Err(std::io::ErrorKind::ConnectionReset.into()) })
                .await;
        }
    });
    assert!(resilience::provider("bench-open").state().is_open());
    g.bench_function("resilient_rejected_open", |b| {
        b.iter_custom(|n| timed(&rt, n, resilient_open))
    });
    resilience::provider("bench-forced").force_open();
    g.bench_function("resilient_rejected_forced", |b| {
        b.iter_custom(|n| timed(&rt, n, resilient_forced))
    });

    let fs = failsafe_consecutive();
    g.bench_function("failsafe", |b| {
        b.iter_custom(|n| timed(&rt, n, || fs.call(op())))
    });
    let fs_default = failsafe::Config::new().build();
    g.bench_function("failsafe_default", |b| {
        b.iter_custom(|n| timed(&rt, n, || fs_default.call(op())))
    });
    let fs_open = {
        use failsafe::{Config, backoff, failure_policy};
        let cb = Config::new()
            .failure_policy(failure_policy::consecutive_failures(
                1,
                backoff::constant(Duration::from_secs(3600)),
            ))
            .build();
        cb.on_error();
        cb
    };
    g.bench_function("failsafe_rejected", |b| {
        b.iter_custom(|n| timed(&rt, n, || fs_open.call(op())))
    });

    let rc = AsyncRecloser::from(Recloser::default());
    g.bench_function("recloser", |b| {
        b.iter_custom(|n| timed(&rt, n, || rc.call(op())))
    });
    let rc_open = {
        let r = Recloser::custom()
            .closed_len(1)
            .open_wait(Duration::from_secs(3600))
            .build();
        let _ = r.call(|| Err::<(), ()>(()));
        let _ = r.call(|| Err::<(), ()>(()));
        AsyncRecloser::from(r)
    };
    g.bench_function("recloser_rejected", |b| {
        b.iter_custom(|n| timed(&rt, n, || rc_open.call(op())))
    });

    let tr = RefCell::new(
        CircuitBreakerLayer::builder()
            .build()
            .unwrap()
            .layer_fn(service_fn(|_: ()| op())),
    );
    g.bench_function("tower_resilience_cb", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                let mut s = tr.borrow_mut();
                s.ready().await.unwrap().call(()).await
            })
        })
    });

    g.bench_function("backon", |b| {
        b.iter_custom(|n| timed(&rt, n, || op.retry(ExponentialBuilder::default())))
    });

    let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2));
    let retry = RefCell::new(Retry::new(BudgetPolicy(budget), service_fn(|_: ()| op())));
    let tower_retry = || async {
        let mut s = retry.borrow_mut();
        s.ready().await.unwrap().call(()).await
    };
    g.bench_function("tower_retry_budget", |b| {
        b.iter_custom(|n| timed(&rt, n, tower_retry))
    });

    // What bounds (4) for a breaker opened by failures: the bare call plus one clock read, for
    // each clock a rejection could read. `clock_coarse` is the read the breaker makes (since
    // `619f298`; `clock_tsc` before).
    let tsc = quanta::Clock::new();
    let clock_tsc = || async { (op().await, black_box(tsc.raw())) };
    g.bench_function("clock_tsc", |b| b.iter_custom(|n| timed(&rt, n, clock_tsc)));
    if COARSE_CLOCK {
        g.bench_function("clock_coarse", |b| {
            b.iter_custom(|n| timed(&rt, n, clock_coarse))
        });
    }
    g.bench_function("clock_os", |b| b.iter_custom(|n| timed(&rt, n, clock_os)));
    g.finish();

    let tower_cb = || async {
        let mut s = tr.borrow_mut();
        s.ready().await.unwrap().call(()).await
    };
    let mut contenders: Vec<(&str, BatchFn<'_>)> = vec![
        ("resilient", batch(resilient_op)),
        ("resilient_one_site", batch(resilient_one_site)),
        ("floor", batch(|| floor::call(op))),
        // The floor split in two: without `current_call()`'s thread-local, and that
        // thread-local alone around the bare call. (The call itself, without it, measured 4–10%
        // faster, still about 2× the bare op: `benches/without_context.sh`.)
        (
            "floor_without_context",
            batch(|| floor::call_without_context(op)),
        ),
        ("context_only", batch(|| floor::with_context(op))),
        // And a wrapper that does nothing: what being an `async fn` of its own costs.
        ("layer", batch(|| floor::layer(op))),
        // The least any breaker can do: one load before the op, one after.
        ("minimum", batch(|| floor::minimum(op))),
        // Two stores to a static around the op: the thread-local's cost, less the thread-local.
        ("stores_only", batch(|| floor::stores_only(op))),
        ("resilient_rejected_forced", batch(resilient_forced)),
        ("resilient_rejected_open", batch(resilient_open)),
        ("backon", batch(|| op.retry(ExponentialBuilder::default()))),
        ("failsafe", batch(|| fs.call(op()))),
        ("failsafe_default", batch(|| fs_default.call(op()))),
        ("failsafe_rejected", batch(|| fs_open.call(op()))),
        ("recloser", batch(|| rc.call(op()))),
        ("recloser_rejected", batch(|| rc_open.call(op()))),
        ("tower_retry_budget", batch(tower_retry)),
        ("tower_resilience_cb", batch(tower_cb)),
        ("clock_tsc", batch(clock_tsc)),
        ("clock_coarse", batch(clock_coarse)),
        ("clock_os", batch(clock_os)),
    ];
    contenders.retain(|(name, _)| COARSE_CLOCK || *name != "clock_coarse");
    paired_ratios(&rt, "one_thread", &batch(op), &contenders);
}

/// `n` calls of `f` in a loop ([`time_loop`]), boxed so that contenders of different types
/// share one round of [`paired_ratios`].
type BatchFn<'a> = Box<dyn Fn(u64) -> Pin<Box<dyn Future<Output = Duration> + 'a>> + 'a>;

fn batch<'a, F, Fut, T: 'a>(f: F) -> BatchFn<'a>
where
    F: Fn() -> Fut + Copy + 'a,
    Fut: Future<Output = T> + 'a,
{
    Box::new(move |n| Box::pin(time_loop(n, f)))
}

const RATIO_ROUNDS: usize = 1_000;
const RATIO_BATCH: u64 = 2_000;

/// (2), (3), (4) and the peers' ratios from pairs. Criterion's medians of the bare call and of
/// a contender are taken seconds apart, and this machine's speed drifts by more than the
/// targets' margins in that time: in three runs at one commit the bare call's median moved
/// from 3.2 to 4.6 ns while the forced-open rejection's stayed at 17–20 ns, taking its ratio
/// from 3.6× to 5.8×. Here each round times, for every contender in turn (the order rotating
/// from round to round), a batch of bare calls and a batch of the contender's back to back
/// (alternating which goes first), 2,000 calls each (5–10 µs of bare calls, up to about a
/// millisecond for the slowest peer), and takes that round's ratio; drift over so short a
/// pair is small. Reports each contender's median ratio, its quartiles,
/// and a distribution-free 95% interval for the median; writes `<group>/paired.json`.
fn paired_ratios(
    rt: &tokio::runtime::Runtime,
    group: &str,
    bare: &BatchFn<'_>,
    contenders: &[(&str, BatchFn<'_>)],
) {
    // Nanoseconds per call.
    let time =
        |f: &BatchFn<'_>| rt.block_on(f(RATIO_BATCH)).as_secs_f64() * 1e9 / RATIO_BATCH as f64;
    // Per contender: each round's ratio, its own time per call, and the bare call's beside it.
    let mut rounds = vec![[const { Vec::new() }; 3]; contenders.len()];
    for round in 0..RATIO_ROUNDS {
        for k in 0..contenders.len() {
            let i = (k + round) % contenders.len();
            let (b, c) = if round % 2 == 0 {
                let b = time(bare);
                (b, time(&contenders[i].1))
            } else {
                let c = time(&contenders[i].1);
                (time(bare), c)
            };
            let [ratio, own, base] = &mut rounds[i];
            ratio.push(c / b);
            own.push(c);
            base.push(b);
        }
    }
    let json: Vec<String> = contenders
        .iter()
        .zip(rounds)
        .map(|((name, _), [mut r, own, base])| {
            let [ci_lo, mid, ci_hi] = median_interval(&mut r);
            let [lo, hi] = [0.25, 0.75].map(|q| quantile(&r, q));
            let (own, base) = (quartiles(own)[1], quartiles(base)[1]);
            println!(
                "{group}/paired/{name}: {mid:.2}× the bare call (quartiles {lo:.2}–{hi:.2}, \
                 95% interval of the median {ci_lo:.2}–{ci_hi:.2}, {RATIO_ROUNDS} rounds); \
                 medians {own:.1} ns per call, bare {base:.1} ns"
            );
            format!("\"{name}\": [{lo}, {mid}, {hi}, {ci_lo}, {ci_hi}, {own}, {base}]")
        })
        .collect();
    write_result(
        &format!("{group}/paired.json"),
        &format!("{{{}}}\n", json.join(", ")),
    );
}

/// (6): two worker threads sharing one provider.
fn two_thread(c: &mut Criterion) {
    let fs = failsafe_consecutive();
    let rc = AsyncRecloser::from(Recloser::default());
    // Boxed so that all can share one round; each thread boxes its loop once per round.
    let loops: [(&str, LoopFn<'_>); 7] = [
        // Two controls that share no memory between threads at all, to tell the machine's
        // limits from contention: what two threads reach here when nothing is shared. The
        // first is a chain of dependent multiplies (latency-bound, it leaves the core's ports
        // idle). The second does about as much independent work as a `#[resilient]` call
        // (throughput-bound, it also needs the two vCPUs to have execution units of their
        // own, which a shared host does not always give).
        (
            "control_dependent",
            Box::new(|n, _| {
                Box::pin(async move {
                    for _ in 0..n {
                        let mut x = black_box(1u64);
                        for i in 0..12 {
                            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
                        }
                        black_box(op().await.unwrap() + x);
                    }
                })
            }),
        ),
        (
            "control_parallel",
            Box::new(|n, _| {
                Box::pin(async move {
                    for _ in 0..n {
                        let mut a = [black_box(1u64); 8];
                        for i in 0..6u64 {
                            for (j, x) in (0u64..).zip(a.iter_mut()) {
                                *x = x.rotate_left(7) ^ x.wrapping_add(i + j);
                            }
                        }
                        black_box(op().await.unwrap() + a.iter().sum::<u64>());
                    }
                })
            }),
        ),
        // `#[resilient]` with a provider of its own per thread: what sharing one costs.
        (
            "resilient_own_provider",
            Box::new(|n, thread| {
                Box::pin(async move {
                    for _ in 0..n {
                        if thread == 0 {
                            black_box(resilient_op().await.unwrap());
                        } else {
                            black_box(resilient_shared().await.unwrap());
                        }
                    }
                })
            }),
        ),
        (
            "bare",
            Box::new(|n, _| {
                Box::pin(async move {
                    for _ in 0..n {
                        black_box(op().await.unwrap());
                    }
                })
            }),
        ),
        (
            "resilient",
            Box::new(|n, _| {
                Box::pin(async move {
                    for _ in 0..n {
                        black_box(resilient_shared().await.unwrap());
                    }
                })
            }),
        ),
        (
            "failsafe",
            Box::new(|n, _| {
                let fs = fs.clone();
                Box::pin(async move {
                    for _ in 0..n {
                        black_box(fs.call(op()).await.unwrap());
                    }
                })
            }),
        ),
        (
            "recloser",
            Box::new(|n, _| {
                let rc = rc.clone();
                Box::pin(async move {
                    for _ in 0..n {
                        black_box(rc.call(op()).await.unwrap());
                    }
                })
            }),
        ),
    ];
    // Criterion's own medians, for the table; their ratio to one thread's comes from runs
    // seconds apart, which is why the rounds below exist.
    let mut g = c.benchmark_group("two_threads");
    for (name, make_loop) in &loops {
        if ["bare", "resilient", "failsafe", "recloser"].contains(name) {
            g.bench_function(*name, |b| {
                b.iter_custom(|iters| threads(2, iters, make_loop))
            });
        }
    }
    g.finish();

    let ratios = scaling(&loops);
    let control = loops
        .iter()
        .position(|(name, _)| *name == "control_parallel")
        .map(|i| ratios[i].clone());
    let json: Vec<String> = loops
        .iter()
        .zip(&ratios)
        .map(|((name, _), r)| {
            let [lo, mid, hi] = quartiles(r.clone());
            // Each round's ratio over the parallel control's in the same round: near 1 means
            // "scales as well as code that shares nothing".
            let rel = control.as_ref().map_or(f64::NAN, |c| {
                quartiles(r.iter().zip(c).map(|(r, c)| r / c).collect())[1]
            });
            println!(
                "two_threads/scaling/{name}: throughput two threads vs one {mid:.2}× \
                 (quartiles {lo:.2}–{hi:.2}, {SCALING_ROUNDS} rounds); over control_parallel \
                 in the same round {rel:.2}"
            );
            format!("\"{name}\": [{lo}, {mid}, {hi}, {rel}]")
        })
        .collect();
    write_result(
        "two_threads/scaling.json",
        &format!("{{{}}}\n", json.join(", ")),
    );
}

type LoopFn<'a> = Box<dyn Fn(u64, usize) -> Pin<Box<dyn Future<Output = ()> + 'a>> + Sync + 'a>;

const SCALING_ROUNDS: usize = 60;

/// (6) from pairs: each round times, for every contender in turn (the order rotating from
/// round to round), the same calls on one thread and on each of two threads (alternating which
/// goes first), and takes the round's throughput ratio; returns each contender's ratios, round
/// by round. The machine's speed drifts between criterion's benchmarks (once by 2×, which
/// turned a 2.2× ratio into 0.9×) and its other tenants come and go; within a round the drift
/// mostly cancels, and what does not falls on every contender alike. Each contender makes as
/// many calls as take one thread about 10 ms, so none is timed over a window as short as a
/// thread's start-up.
fn scaling(loops: &[(&str, LoopFn<'_>)]) -> Vec<Vec<f64>> {
    let calls: Vec<u64> = loops
        .iter()
        .map(|(_, make_loop)| {
            const TRIAL: u64 = 20_000;
            let per_call = threads(1, TRIAL, make_loop).as_secs_f64() / TRIAL as f64;
            ((0.010 / per_call) as u64).clamp(TRIAL, 5_000_000)
        })
        .collect();
    let mut ratios = vec![Vec::with_capacity(SCALING_ROUNDS); loops.len()];
    for round in 0..SCALING_ROUNDS {
        for k in 0..loops.len() {
            let i = (k + round) % loops.len();
            let (make_loop, n) = (&loops[i].1, calls[i]);
            let (one, two) = if round % 2 == 0 {
                let one = threads(1, n, make_loop);
                (one, threads(2, n, make_loop))
            } else {
                let two = threads(2, n, make_loop);
                (threads(1, n, make_loop), two)
            };
            ratios[i].push(2.0 * one.as_secs_f64() / two.as_secs_f64());
        }
    }
    ratios
}

/// The `q` quantile of sorted values, interpolating between the two nearest.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Sorts `v` and returns its median with a distribution-free 95% interval: the order
/// statistics 1.96·√n/2 places either side of the middle.
fn median_interval(v: &mut [f64]) -> [f64; 3] {
    v.sort_by(f64::total_cmp);
    let half = (1.96 * (v.len() as f64).sqrt() / 2.0).ceil() / v.len() as f64;
    [0.5 - half, 0.5, 0.5 + half].map(|q| quantile(v, q))
}

fn quartiles(mut v: Vec<f64>) -> [f64; 3] {
    v.sort_by(f64::total_cmp);
    [0.25, 0.5, 0.75].map(|q| quantile(&v, q))
}

/// Writes a result beside criterion's, for `summarize.py`: into the target directory, three
/// levels above this binary (target/release/deps/hot_path-…), unless CARGO_TARGET_DIR says
/// otherwise.
fn write_result(name: &str, contents: &str) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(|| "target".into());
    let path = target.join("criterion").join(name);
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, contents));
    if let Err(e) = written {
        eprintln!("could not write {}: {e}", path.display());
    }
}

/// The provider of (7): one real POST to a loopback server.
async fn post(client: &reqwest::Client, url: &str) -> Result<u64, std::io::Error> {
    let resp = client
        .post(url)
        .body(&b"0123456789abcdef"[..])
        .send()
        .await
        .map_err(std::io::Error::other)?
        .check_status()
        .map_err(std::io::Error::other)?;
    Ok(resp.bytes().await.map_err(std::io::Error::other)?.len() as u64)
}

#[resilient(provider = "bench-http")]
async fn resilient_post(client: &reqwest::Client, url: &str) -> Result<u64, std::io::Error> {
    post(client, url).await
}

/// (7): reqwest to a loopback server, bare versus through `#[resilient]`.
fn http(c: &mut Criterion) {
    // A runtime with IO: reqwest and the server need it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(resilience_testkit::FaultServer::start(
            resilience_testkit::Faults::none(),
        ))
        .unwrap();
    let url = server.upload_url();
    // Loopback: no proxy from the environment.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut g = c.benchmark_group("http_loopback");
    let bare = || post(&client, &url);
    let resilient = || resilient_post(&client, &url);
    g.bench_function("bare", |b| {
        b.iter_custom(|n| interleaved(&rt, n, bare, resilient))
    });
    g.bench_function("resilient", |b| {
        b.iter_custom(|n| interleaved(&rt, n, resilient, bare))
    });
    g.finish();
    paired(&rt, bare, resilient);
}

/// The added latency of (7), from pairs: each pair times one bare call and one through
/// `#[resilient]` back to back. The machine's speed drifts between the seconds criterion
/// spends on one benchmark and the next, which moved the two medians apart by −33% to +27%;
/// within a pair the drift cancels. Whichever call goes second may gain (or lose) from going
/// second, so half the pairs go each way, and the estimate is the mean of the two halves'
/// median differences, in which that gain cancels.
fn paired<A, B, FA, FB, T>(rt: &tokio::runtime::Runtime, mut bare: A, mut resilient: B)
where
    A: FnMut() -> FA,
    B: FnMut() -> FB,
    FA: Future<Output = T>,
    FB: Future<Output = T>,
{
    const PAIRS: usize = 20_000;
    let mut base = Vec::with_capacity(PAIRS);
    // The differences (resilient − bare) with bare first, and with resilient first.
    let mut diff = [Vec::with_capacity(PAIRS / 2), Vec::with_capacity(PAIRS / 2)];
    rt.block_on(async {
        for i in 0..PAIRS {
            let (b, r) = if i % 2 == 0 {
                let t = Instant::now();
                black_box(bare().await);
                let b = t.elapsed();
                let t = Instant::now();
                black_box(resilient().await);
                (b, t.elapsed())
            } else {
                let t = Instant::now();
                black_box(resilient().await);
                let r = t.elapsed();
                let t = Instant::now();
                black_box(bare().await);
                (t.elapsed(), r)
            };
            base.push(b.as_nanos() as f64);
            diff[i % 2].push(r.as_nanos() as f64 - b.as_nanos() as f64);
        }
    });
    let base = median_interval(&mut base)[1];
    let [[lo1, bare_first, hi1], [lo2, resilient_first, hi2]] =
        diff.each_mut().map(|d| median_interval(d));
    let added = (bare_first + resilient_first) / 2.0;
    let (lo, hi) = ((lo1 + lo2) / 2.0, (hi1 + hi2) / 2.0);
    println!(
        "http_loopback/paired: {PAIRS} pairs, median bare {:.2} µs, added {added:.0} ns \
         ({:+.3}%; 95% interval {lo:.0}–{hi:.0} ns; median differences {bare_first:.0} ns \
         bare first, {resilient_first:.0} ns resilient first)",
        base / 1000.0,
        100.0 * added / base
    );
    let json = format!(
        "{{\"pairs\": {PAIRS}, \"median_bare_ns\": {base}, \"added_ns\": {added}, \
         \"added_low_ns\": {lo}, \"added_high_ns\": {hi}, \
         \"median_added_bare_first_ns\": {bare_first}, \
         \"median_added_resilient_first_ns\": {resilient_first}}}\n"
    );
    write_result("http_loopback/paired.json", &json);
}

/// Times `iters` awaits of `timed()`, each followed by an untimed `other()`. Both sides of the
/// loopback comparison run the same mix of requests, so neither inherits conditions the other
/// left (the server's request log grows as the run goes on, the connection pool warms). Even
/// so the two medians, taken seconds apart, moved apart by −33% to +27% between runs, far
/// more than the wrapper adds, so `paired` measures that. The clock reads cost both sides
/// alike.
fn interleaved<A, B, FA, FB, T>(
    rt: &tokio::runtime::Runtime,
    iters: u64,
    mut timed: A,
    mut other: B,
) -> Duration
where
    A: FnMut() -> FA,
    B: FnMut() -> FB,
    FA: Future<Output = T>,
    FB: Future<Output = T>,
{
    rt.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let t = Instant::now();
            black_box(timed().await);
            total += t.elapsed();
            black_box(other().await);
        }
        total
    })
}

/// (3): with the Prometheus recorder installed. Last: it cannot be uninstalled.
fn with_recorder(c: &mut Criterion) {
    let rt = rt();
    resilience::telemetry::install_recorder().unwrap();
    let mut g = c.benchmark_group("with_recorder");
    g.bench_function("bare", |b| b.iter_custom(|n| timed(&rt, n, op)));
    g.bench_function("resilient", |b| {
        b.iter_custom(|n| timed(&rt, n, resilient_metrics))
    });
    // What the exporter alone charges for the three updates a successful call makes (two
    // counters and the duration histogram), through handles resolved in advance as ours are,
    // under names it stores itself: what (3) paid before our families got storage of their own
    // (`telemetry/store.rs`).
    let calls = metrics::counter!("bench_floor_calls_total");
    let attempts = metrics::counter!("bench_floor_attempts_total");
    let duration = metrics::histogram!("bench_floor_duration_seconds");
    let exporter_only = || async {
        let out = op().await;
        attempts.increment(1);
        calls.increment(1);
        duration.record(1e-6);
        out
    };
    g.bench_function("exporter_only", |b| {
        b.iter_custom(|n| timed(&rt, n, exporter_only))
    });
    g.finish();
    let contenders: Vec<(&str, BatchFn<'_>)> = vec![
        ("resilient", batch(resilient_metrics)),
        ("exporter_only", batch(exporter_only)),
    ];
    paired_ratios(&rt, "with_recorder", &batch(op), &contenders);
}

criterion_group!(benches, single_thread, two_thread, http, with_recorder);
criterion_main!(benches);
