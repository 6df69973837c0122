//! `resilience::drain()`: at shutdown no call retries, and the calls asleep in a backoff end at
//! once; first attempts and the breaker go on as before. Through `execute` (a provider's and a
//! `CallSite`'s) and through `#[resilient]`, whose loop is written out inline. Every test but
//! the last drains an isolation of its own (`testing`), so they run at the same time; the last
//! drains the process, which no isolation sees.

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::{Captured, TestError, capture};
use resilience::testing::{self, Isolation};
use resilience::{CircuitState, Jitter, ResilienceError, Settings, resilient};
use tokio::time::Instant;

/// The process's subscriber, installed by the first test that logs: every line, each test
/// reading those of its own provider.
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let (logs, subscriber) = capture();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        logs
    })
}

fn lines_of(provider: &str) -> Vec<String> {
    let tag = format!("provider=\"{provider}\"");
    logs()
        .text()
        .lines()
        .filter(|l| l.contains(&tag))
        .map(str::to_owned)
        .collect()
}

const BACKOFF: Duration = Duration::from_secs(30);
const TOKENS: u32 = 5;

/// A 30 s backoff, exactly, and a budget of 5 retries that refills only on `reset()`, so a
/// token not given back shows.
fn slow() -> Settings {
    Settings::new()
        .jitter(Jitter::None)
        .base_delay(BACKOFF)
        .max_delay(Duration::from_secs(60))
        .max_attempts(3)
        .retry_budget_capacity(TOKENS)
        .retry_budget_ratio(0.0)
        .retry_budget_min_per_second(0.0)
}

/// Until the first attempt has failed and its backoff sleeps; then drains.
async fn drain_after_a_second() {
    tokio::time::sleep(Duration::from_secs(1)).await;
    resilience::drain();
}

/// Counts the attempts of a call running in a task of its own: the sleeping call must be woken
/// by the drain, not polled again because the drain ran in its task.
#[derive(Clone, Default)]
struct Attempts(Arc<AtomicU32>);

impl Attempts {
    fn next(&self) -> u32 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn get(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A call through `p.execute`, in a task of its own (on the test's thread, under its guard),
/// whose attempts fail until attempt `succeeds_at` (never, for `u32::MAX`).
fn failing_until(
    p: resilience::Provider,
    attempts: &Attempts,
    succeeds_at: u32,
) -> tokio::task::JoinHandle<Result<u32, TestError>> {
    let attempts = attempts.clone();
    tokio::spawn(async move {
        p.execute(|| {
            let n = attempts.next();
            async move {
                if n < succeeds_at {
                    Err(TestError::Transient(n))
                } else {
                    Ok(n)
                }
            }
        })
        .await
    })
}

/// A call that fails every attempt.
fn always_failing(
    p: resilience::Provider,
    attempts: &Attempts,
) -> tokio::task::JoinHandle<Result<u32, TestError>> {
    failing_until(p, attempts, u32::MAX)
}

/// A call that fails its first attempt only.
fn failing_once(
    p: resilience::Provider,
    attempts: &Attempts,
) -> tokio::task::JoinHandle<Result<u32, TestError>> {
    failing_until(p, attempts, 2)
}

/// Fails every attempt, counting them.
#[resilient(provider = "drain-macro")]
async fn always_fails(attempts: Attempts) -> Result<u32, TestError> {
    Err(TestError::Transient(attempts.next()))
}

/// Succeeds, counting its attempts.
#[resilient(provider = "drain-macro")]
async fn succeeds(attempts: &Cell<u32>) -> Result<u32, TestError> {
    attempts.set(attempts.get() + 1);
    Ok(7)
}

/// Fails, counting its attempts.
#[resilient(provider = "drain-macro")]
async fn fails(attempts: &Cell<u32>) -> Result<u32, TestError> {
    attempts.set(attempts.get() + 1);
    Err(TestError::Transient(attempts.get()))
}

static SITE: resilience::CallSite = resilience::CallSite::new("drain-site", "upload");

/// Ended by the drain, 1 s into the call, with `left` seconds of its backoff left.
fn draining(provider: &'static str, left: u64) -> Result<u32, TestError> {
    Err(TestError::Resilience(ResilienceError::Draining {
        provider,
        retry_in: Some(Duration::from_secs(left)),
    }))
}

/// A call asleep in a 30 s backoff returns as the drain starts, 1 s into the call, with no
/// further attempt; its budget token is back, and its giving-up line says why.
#[tokio::test(start_paused = true)]
async fn a_call_asleep_in_its_backoff_ends_at_once_through_execute() {
    logs();
    let _isolated = testing::isolate();
    let p = resilience::configure("drain-exec-asleep", slow()).unwrap();
    let attempts = Attempts::default();
    let started = Instant::now();
    let call = always_failing(p, &attempts);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(attempts.get(), 1);
    assert_eq!(p.retry_budget_available(), f64::from(TOKENS - 1), "asleep");
    resilience::drain();
    assert_eq!(call.await.unwrap(), draining("drain-exec-asleep", 29));
    assert_eq!(attempts.get(), 1, "no attempt after the drain");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "not the backoff's 30 s"
    );
    assert_eq!(
        p.retry_budget_available(),
        f64::from(TOKENS),
        "token given back"
    );
    let lines = lines_of("drain-exec-asleep");
    let gave_up: Vec<_> = lines.iter().filter(|l| l.contains("Giving up")).collect();
    assert_eq!(gave_up.len(), 1, "{lines:#?}");
    assert!(
        gave_up[0].contains(
            "WARN resilience: [RETRY] Giving up on execute after attempt 1/3: the process \
             began draining during the backoff: no more retries"
        ) && gave_up[0].contains("class=\"transient\" result=\"transient\"")
            && gave_up[0].contains("reason=\"draining\""),
        "{gave_up:?}"
    );
}

/// The same through `#[resilient]`'s inline loop, and a `CallSite` of one's own told to wait
/// 45 s (`Retry-After`).
#[tokio::test(start_paused = true)]
async fn a_call_asleep_in_its_backoff_ends_at_once_through_the_macro_and_a_call_site() {
    logs();
    let _isolated = testing::isolate();
    let macro_p = resilience::configure("drain-macro", slow()).unwrap();
    let site_p = resilience::configure("drain-site", slow()).unwrap();
    let (macro_attempts, site_attempts) = (Attempts::default(), Attempts::default());
    let started = Instant::now();
    let by_macro = tokio::spawn(always_fails(macro_attempts.clone()));
    let by_site = {
        let attempts = site_attempts.clone();
        tokio::spawn(SITE.execute(move || {
            let n = attempts.next();
            async move { Err::<u32, _>(TestError::Throttled(n, Some(Duration::from_secs(45)))) }
        }))
    };
    drain_after_a_second().await;
    assert_eq!(by_macro.await.unwrap(), draining("drain-macro", 29));
    assert_eq!(by_site.await.unwrap(), draining("drain-site", 44));
    assert_eq!((macro_attempts.get(), site_attempts.get()), (1, 1));
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    for p in [macro_p, site_p] {
        assert_eq!(
            p.retry_budget_available(),
            f64::from(TOKENS),
            "{}",
            p.name()
        );
    }
    let lines = lines_of("drain-site");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Giving up on upload after attempt 1/3")
                && l.contains("class=\"throttled\"")
                && l.contains("reason=\"draining\"")),
        "{lines:#?}"
    );
    let lines = lines_of("drain-macro");
    assert!(
        lines.iter().any(|l| l.contains(
            "Giving up on always_fails after attempt 1/3: the process began draining during \
             the backoff"
        ) && l.contains("reason=\"draining\"")),
        "{lines:#?}"
    );
}

/// An attempt in flight when the drain starts runs to its end: a success is returned, and a
/// failure too, unchanged and not retried.
#[tokio::test(start_paused = true)]
async fn an_attempt_in_flight_runs_to_its_end_and_is_not_retried() {
    let _isolated = testing::isolate();
    let p = resilience::configure("drain-in-flight", slow()).unwrap();
    let attempts = Attempts::default();
    let in_flight = |fail: bool| {
        let attempts = attempts.clone();
        tokio::spawn(p.execute(move || {
            let n = attempts.next();
            async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if fail {
                    Err(TestError::Transient(n))
                } else {
                    Ok(n)
                }
            }
        }))
    };
    let started = Instant::now();
    let (failing, succeeding) = (in_flight(true), in_flight(false));
    drain_after_a_second().await;
    let mut got = [failing.await.unwrap(), succeeding.await.unwrap()];
    got.sort_by_key(|r| r.is_ok());
    assert!(
        matches!(got, [Err(TestError::Transient(_)), Ok(_)]),
        "{got:?}"
    );
    assert_eq!(attempts.get(), 2, "one attempt each");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(5),
        "the attempts' own time"
    );
    assert_eq!(p.retry_budget_available(), f64::from(TOKENS));
}

/// After the drain a failed attempt is not retried: the call returns that attempt's error,
/// unchanged, at once, with no token taken; a first attempt is still made, a success still
/// succeeds, and the breaker still counts and rejects.
#[tokio::test(start_paused = true)]
async fn after_the_drain_first_attempts_run_and_failures_are_not_retried() {
    logs();
    let _isolated = testing::isolate();
    let macro_p = resilience::configure("drain-macro", slow().failure_threshold(2)).unwrap();
    let p = resilience::configure("drain-exec-after", slow()).unwrap();
    resilience::drain();
    assert!(resilience::is_draining());
    let started = Instant::now();

    let attempts = Cell::new(0);
    let r = p
        .execute(|| {
            attempts.set(attempts.get() + 1);
            async { Err::<u32, _>(TestError::Throttled(1, Some(Duration::from_secs(2)))) }
        })
        .await;
    assert_eq!(
        r,
        Err(TestError::Throttled(1, Some(Duration::from_secs(2))))
    );
    assert_eq!(attempts.get(), 1);
    assert_eq!(p.retry_budget_available(), f64::from(TOKENS), "none taken");
    let lines = lines_of("drain-exec-after");
    assert!(
        lines.iter().any(|l| l.contains(
            "WARN resilience: [RETRY] Giving up on execute after attempt 1/3: the process is \
             draining: no more retries"
        ) && l.contains("error=\"Throttled(1, Some(2s))\"")
            && l.contains("reason=\"draining\"")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("[RETRY] Attempt 2/3")),
        "{lines:#?}"
    );

    let macro_attempts = Cell::new(0);
    assert_eq!(succeeds(&macro_attempts).await, Ok(7));
    assert_eq!(fails(&macro_attempts).await, Err(TestError::Transient(2)));
    assert_eq!(fails(&macro_attempts).await, Err(TestError::Transient(3)));
    assert_eq!(macro_attempts.get(), 3, "one attempt a call");
    assert_eq!(started.elapsed(), Duration::ZERO, "no backoff slept");
    assert_eq!(macro_p.retry_budget_available(), f64::from(TOKENS));
    // Two failures opened the breaker, which rejects the next call before its attempt.
    assert_eq!(macro_p.state(), CircuitState::Open);
    assert!(matches!(
        fails(&macro_attempts).await,
        Err(TestError::Resilience(ResilienceError::CircuitOpen { .. }))
    ));
    assert_eq!(macro_attempts.get(), 3);
}

/// Without a drain, the same settings retry after the backoff: what the tests above measure
/// against.
#[tokio::test(start_paused = true)]
async fn undrained_the_call_sleeps_its_backoff_and_retries() {
    let _isolated = testing::isolate();
    let p = resilience::configure("drain-control", slow()).unwrap();
    let attempts = Attempts::default();
    let started = Instant::now();
    assert_eq!(failing_once(p, &attempts).await.unwrap(), Ok(2));
    assert_eq!(started.elapsed(), BACKOFF);
    assert!(!resilience::is_draining());
}

/// A drain in one isolation neither ends another's sleeping call nor stops its retries; a new
/// isolation starts undrained.
#[tokio::test(start_paused = true)]
async fn a_drain_in_one_isolation_does_not_reach_another() {
    let (drained, other) = (Isolation::new(), Isolation::new());
    let (ours, theirs) = (Attempts::default(), Attempts::default());
    let started = Instant::now();
    let in_other = {
        let _entered = other.enter();
        failing_once(resilience::configure("drain-iso", slow()).unwrap(), &theirs)
    };
    let in_drained = {
        let _entered = drained.enter();
        always_failing(resilience::configure("drain-iso", slow()).unwrap(), &ours)
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    drained.run(async { resilience::drain() }).await;
    assert_eq!(in_drained.await.unwrap(), draining("drain-iso", 29));
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(in_other.await.unwrap(), Ok(2), "retried after its backoff");
    assert_eq!(started.elapsed(), BACKOFF);
    assert_eq!((ours.get(), theirs.get()), (1, 2));
    {
        let _entered = drained.enter();
        assert!(resilience::is_draining());
    }
    {
        let _entered = other.enter();
        assert!(!resilience::is_draining());
    }
    let _fresh = testing::isolate();
    assert!(!resilience::is_draining());
}

/// A `draining()` future waiting for `isolation`'s drain.
fn made_under(isolation: &Isolation) -> impl Future<Output = ()> + Send + 'static {
    let _entered = isolation.enter();
    resilience::draining()
}

/// `draining()` ends when its isolation drains (at once when made after), never for another
/// isolation's drain; it waits for the switch of the isolation it was made under, wherever it
/// is polled.
#[tokio::test(start_paused = true)]
async fn draining_ends_with_its_own_isolations_drain() {
    let (ours, theirs) = (Isolation::new(), Isolation::new());
    let before = made_under(&ours);
    let other = made_under(&theirs);
    // Polled outside any isolation, as a task spawned from the test may be.
    let before = tokio::spawn(before);
    let other = tokio::spawn(other);
    tokio::task::yield_now().await;
    assert!(!before.is_finished() && !other.is_finished());
    ours.run(async { resilience::drain() }).await;
    let started = Instant::now();
    let hour = Duration::from_secs(3600);
    let after = made_under(&ours);
    tokio::time::timeout(hour, async { tokio::join!(before, after).0.unwrap() })
        .await
        .expect("woken by the drain");
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "by the drain, not by a timer"
    );
    // Another isolation's: still waiting an hour later. (Not the process's: another test of
    // this binary drains it meanwhile.)
    assert!(tokio::time::timeout(hour, other).await.is_err());
}

/// The process's drain ends the process's calls, and may be called again, but does not reach
/// an isolation's: the other tests of this binary, which run meanwhile, drain on their own.
#[tokio::test(start_paused = true)]
async fn the_process_drain_does_not_reach_isolations() {
    logs();
    let p = resilience::configure("drain-process", slow()).unwrap();
    let isolation = Isolation::new();
    let (ours, theirs) = (Attempts::default(), Attempts::default());
    let started = Instant::now();
    let process_call = always_failing(p, &ours);
    let isolated = {
        let _entered = isolation.enter();
        failing_once(
            resilience::configure("drain-process", slow()).unwrap(),
            &theirs,
        )
    };
    drain_after_a_second().await;
    resilience::drain();
    assert_eq!(process_call.await.unwrap(), draining("drain-process", 29));
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(isolated.await.unwrap(), Ok(2));
    assert_eq!((ours.get(), theirs.get()), (1, 2));
    assert!(resilience::is_draining());
    assert_eq!(p.retry_budget_available(), f64::from(TOKENS));
    let _entered = isolation.enter();
    assert!(!resilience::is_draining());
    assert!(
        logs()
            .text()
            .contains("[DRAIN] Draining: no call makes another retry"),
        "said when it starts"
    );
}

/// On a multi-threaded runtime, a `drain()` from another thread, at any moment, ends every
/// call: none misses the wake-up (scheduling its backoff as the drain runs, or asleep in it)
/// and sleeps its hour. Each round drains an isolation of its own, its calls spread over the
/// workers (`Isolation::run`), the drain on a thread of its own a few microseconds in.
#[test]
fn a_drain_from_another_thread_wakes_every_call_on_a_multi_threaded_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let hour = Settings::new()
        .jitter(Jitter::None)
        .base_delay(Duration::from_secs(3600))
        .max_delay(Duration::from_secs(7200))
        .max_attempts(3)
        .failure_threshold(u32::MAX)
        .retry_budget_capacity(1000)
        .retry_budget_ratio(0.0)
        .retry_budget_min_per_second(0.0);
    for round in 0..1000u64 {
        let isolation = Isolation::new();
        let p = {
            let _entered = isolation.enter();
            resilience::configure("drain-race", hour.clone()).unwrap()
        };
        let calls: Vec<_> = (0..16)
            .map(|_| {
                rt.spawn(isolation.run(async move {
                    p.execute(|| async { Err::<u32, _>(TestError::Transient(1)) })
                        .await
                }))
            })
            .collect();
        // The service's own waits, on the workers: each ends, whether it registered before
        // the drain or read the switch after it.
        let waits: Vec<_> = {
            let _entered = isolation.enter();
            (0..4).map(|_| rt.spawn(resilience::draining())).collect()
        };
        let drainer = {
            let isolation = isolation.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_micros(round % 50));
                let _entered = isolation.enter();
                resilience::drain();
            })
        };
        drainer.join().unwrap();
        let all = rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(20),
                futures_util::future::join_all(calls),
            )
            .await
        });
        let results =
            all.unwrap_or_else(|_| panic!("round {round}: a call slept through the drain"));
        let waited = rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(20),
                futures_util::future::join_all(waits),
            )
            .await
        });
        for w in waited.unwrap_or_else(|_| panic!("round {round}: draining() missed the drain")) {
            w.unwrap();
        }
        for r in results {
            match r.unwrap() {
                // Woken in its backoff, or failed after the drain and not retried.
                Err(TestError::Resilience(ResilienceError::Draining { .. }))
                | Err(TestError::Transient(_)) => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(p.retry_budget_available(), 1000.0, "round {round}");
    }
}

/// Polls `future` on this thread, parking between wake-ups: no runtime at all.
fn block_on<F: Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// `draining()` made and polled outside any runtime, on threads of their own, while another
/// thread drains at once: round after round, none misses the drain (a wake-up lost between
/// reading the switch and registering would leave a thread parked for good).
#[test]
fn draining_outside_any_runtime_never_misses_a_drain_from_another_thread() {
    for round in 0..200 {
        let isolation = Isolation::new();
        let (done, finished) = std::sync::mpsc::channel();
        let start = Arc::new(std::sync::Barrier::new(4));
        for _ in 0..3 {
            let (isolation, done, start) = (isolation.clone(), done.clone(), start.clone());
            std::thread::spawn(move || {
                let stop = {
                    let _entered = isolation.enter();
                    resilience::draining()
                };
                start.wait();
                block_on(stop);
                done.send(()).unwrap();
            });
        }
        start.wait();
        if round % 2 == 0 {
            std::thread::yield_now();
        }
        {
            let _entered = isolation.enter();
            resilience::drain();
        }
        for _ in 0..3 {
            finished
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("round {round}: a draining() slept through the drain"));
        }
    }
}

/// A waker is the user's code: one that asks `is_draining()` as it is woken, on the thread
/// that drains, found the isolation's lock still held by `drain()` (helper-224's review: the
/// waiters were woken under it), and the drain never returned.
#[test]
fn a_waker_may_ask_is_draining_while_the_drain_wakes_it() {
    use std::task::{Context, Wake, Waker};
    struct Asks(std::sync::Mutex<Option<bool>>);
    impl Wake for Asks {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            *self.0.lock().unwrap() = Some(resilience::is_draining());
        }
    }
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _isolated = testing::isolate();
        let asks = Arc::new(Asks(std::sync::Mutex::new(None)));
        let waker = Waker::from(asks.clone());
        let mut stop = std::pin::pin!(resilience::draining());
        assert!(
            stop.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        resilience::drain();
        let _ = done.send(*asks.0.lock().unwrap());
    });
    let asked = finished
        .recv_timeout(Duration::from_secs(30))
        .expect("drain() stuck waking a waker that asks is_draining()");
    assert_eq!(asked, Some(true), "woken, and saw the drain");
}

/// Made inside `Isolation::run` on a multi-threaded runtime's worker: that isolation's drain
/// ends it; the process's switch is not the one it waits for.
#[test]
fn draining_made_inside_run_waits_for_that_isolation() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let isolation = Isolation::new();
    let (made_tx, made_rx) = std::sync::mpsc::channel();
    let task = rt.spawn(isolation.run(async move {
        let stop = resilience::draining();
        made_tx.send(()).unwrap();
        stop.await;
    }));
    made_rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(!task.is_finished());
    {
        let _entered = isolation.enter();
        resilience::drain();
    }
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), task).await })
        .expect("woken by its isolation's drain")
        .unwrap();
}
