//! The hot path allocates nothing: a call on a closed breaker that succeeds at the first
//! attempt, with no metrics recorder. Allocation counts are exact, unlike times, so this is a
//! test rather than a benchmark. Only allocations made on the test's own thread while it is
//! armed count: the test harness's main thread allocates now and then on its own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Const-initialised and without a destructor, so reading it never allocates.
    static ARMED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    if ARMED.try_with(std::cell::Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
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

        // The current-thread runtime polls everything on this thread.
        ARMED.with(|a| a.set(true));
        let _ = Box::new(0u8); // the counter works: this one counts
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        assert!(before >= 1, "the counting allocator is installed and armed");
        for i in 0..10_000u64 {
            black_box(upload(black_box("file.txt"), i).await.unwrap());
            black_box(delete(i).await.unwrap());
            let n: Result<u64, std::io::Error> =
                SITE.execute(|| async move { Ok(black_box(i)) }).await;
            black_box(n.unwrap());
        }
        let after = ALLOCATIONS.load(Ordering::Relaxed);
        ARMED.with(|a| a.set(false));
        assert_eq!(
            after - before,
            0,
            "{} allocations in 30,000 calls",
            after - before
        );
        assert_eq!(
            resilience::provider("alloc-hot").state(),
            resilience::CircuitState::Closed
        );
    });
}
