//! The hot path allocates nothing: a call on a closed breaker that succeeds at the first
//! attempt, with no metrics recorder; nor does a rejection, by a breaker forced open or opened
//! by failures, when the method's error type holds the rejection without boxing it.
//! Allocation counts are exact, unlike times, so these are tests rather than benchmarks. Only
//! allocations made on the test's own thread while it is armed count: the test harness's main
//! thread allocates now and then on its own.

mod hermetic;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

struct Counting;

thread_local! {
    // Const-initialised and without a destructor, so using them never allocates. Per thread,
    // counter included: the tests run at once, and one test's allocations must not land in
    // another's count.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

/// Allocations made on this thread while `run` is awaited (on a current-thread runtime, which
/// polls everything on this thread); checks first that the counter counts.
async fn allocations_during(run: impl std::future::Future<Output = ()>) -> u64 {
    ARMED.with(|a| a.set(true));
    // The counter works: this one counts (`black_box`, or a release build optimises it away).
    std::hint::black_box(Box::new(0u8));
    let before = ALLOCATIONS.with(Cell::get);
    assert!(before >= 1, "the counting allocator is installed and armed");
    run.await;
    let after = ALLOCATIONS.with(Cell::get);
    ARMED.with(|a| a.set(false));
    after - before
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[resilience::resilient(provider = "alloc-hot")]
async fn upload(name: &str, size: u64) -> Result<u64, std::io::Error> {
    Ok(name.len() as u64 + size)
}

#[resilience::resilient(provider = "alloc-hot", retry = false)]
async fn delete(id: u64) -> Result<u64, std::io::Error> {
    Ok(id)
}

static SITE: resilience::CallSite = resilience::CallSite::new("alloc-hot", "execute");

#[test]
fn a_successful_call_on_a_closed_breaker_allocates_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        // The first calls register the provider and resolve the call sites (allocations
        // that happen once per process and call site).
        upload("warm-up", 1).await.unwrap();
        delete(1).await.unwrap();
        let _: Result<u64, std::io::Error> = SITE.execute(|| async { Ok(1) }).await;

        let n = allocations_during(async {
            for i in 0..10_000u64 {
                black_box(upload(black_box("file.txt"), i).await.unwrap());
                black_box(delete(i).await.unwrap());
                let n: Result<u64, std::io::Error> =
                    SITE.execute(|| async move { Ok(black_box(i)) }).await;
                black_box(n.unwrap());
            }
        })
        .await;
        assert_eq!(n, 0, "{n} allocations in 30,000 calls");
        assert_eq!(
            resilience::provider("alloc-hot").state(),
            resilience::CircuitState::Closed
        );
    });
}

#[path = "../benches/rejectable.rs"]
mod rejectable;

use rejectable::Rejectable;

#[resilience::resilient(provider = "alloc-forced")]
async fn forced() -> Result<u64, Rejectable> {
    Ok(1)
}

#[resilience::resilient(provider = "alloc-open")]
async fn opened(fail: bool) -> Result<u64, Rejectable> {
    if fail {
        return Err(Rejectable::Io(std::io::ErrorKind::ConnectionReset.into()));
    }
    Ok(1)
}

#[test]
fn a_rejection_allocates_nothing() {
    // A running clock, not a paused one: a breaker that opens under it is timed on the
    // kernel's coarse clock, the path a production rejection takes.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        resilience::configure(
            "alloc-open",
            resilience::Settings::new()
                .retry_enabled(false)
                .failure_threshold(1)
                .breaker_timeout(std::time::Duration::from_secs(86_400)),
        )
        .unwrap();
        resilience::provider("alloc-forced").force_open();
        // Warm-up: registers the providers, resolves the sites, opens `alloc-open` and makes
        // one rejection each.
        assert!(forced().await.is_err());
        assert!(matches!(opened(true).await, Err(Rejectable::Io(_))));
        assert!(resilience::provider("alloc-open").state().is_open());
        assert!(opened(false).await.is_err());

        let n = allocations_during(async {
            for _ in 0..10_000 {
                let f = forced().await;
                let o = opened(false).await;
                black_box((&f, &o));
                assert!(matches!(
                    f,
                    Err(Rejectable::Resilience(
                        resilience::ResilienceError::CircuitOpen { retry_in: None, .. }
                    ))
                ));
                assert!(matches!(
                    o,
                    Err(Rejectable::Resilience(
                        resilience::ResilienceError::CircuitOpen {
                            retry_in: Some(_),
                            ..
                        }
                    ))
                ));
            }
        })
        .await;
        assert_eq!(n, 0, "{n} allocations in 20,000 rejections");
    });
}
