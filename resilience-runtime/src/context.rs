//! `current_call()`: what the running attempt is, from inside the provider method.
//!
//! The runtime sets a thread-local for exactly the duration of each poll of an attempt's
//! future, so the information follows the call across threads (a work-stealing executor may
//! poll it anywhere) and never leaks into unrelated code.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::call::CallSite;
use crate::registry::ProviderInner;

/// A key that is unique per logical call and the same across its retries: send it as an
/// `Idempotency-Key` header so a provider that saw the first attempt can recognise the retry.
///
/// It has a version-4 UUID's shape (`xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx`) but not its
/// randomness: 60 random bits per thread (the other 4 of the high half are the version) plus a
/// per-thread counter, so making one costs no lock and no syscall. Unique, but the next one is
/// easy to guess: not a secret. Unique within a process: a child made by `fork()` goes on with
/// the forking thread's prefix and counter, so keys made on that thread in the parent and in
/// the child repeat each other (fork before the first call, as pre-fork servers' workers do).
///
/// The call's log lines carry it as their `idempotency_key` field, so that one call's lines
/// can be found, and matched to what the provider received.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(u128);

impl IdempotencyKey {
    /// The key as a number.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    pub(crate) fn next() -> Self {
        KEYS.with(|k| {
            let (mut prefix, counter) = k.get();
            if prefix == 0 {
                // Version 4 in bits 12..16 of the high half, so the string parses as a UUID.
                prefix = (rand::random::<u64>() & !0xF000) | 0x4000;
            }
            k.set((prefix, counter.wrapping_add(1)));
            // RFC 4122 variant (10xx) in the two top bits of the low half.
            let low = (counter & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
            IdempotencyKey(((prefix as u128) << 64) | low as u128)
        })
    }
}

impl IdempotencyKey {
    /// The key's text (`xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx`), made on the stack: lowercase
    /// hex digits and four hyphens.
    fn text(self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut digits = 32;
        for (i, b) in out.iter_mut().enumerate().rev() {
            if matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            digits -= 1;
            *b = HEX[((self.0 >> (4 * (31 - digits))) & 0xF) as usize];
        }
        out
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text();
        // Hex digits and hyphens: ASCII, so never the error branch.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

/// The key as a header value, without a `String` in between:
/// `.header("Idempotency-Key", call.idempotency_key)`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// static SITE: resilience::CallSite = resilience::CallSite::new("doc-key", "upload");
/// let client = reqwest::Client::new();
/// let request: Result<reqwest::Request, std::io::Error> = SITE
///     .execute(|| async {
///         let call = resilience::current_call().expect("inside a call");
///         client
///             .post("http://127.0.0.1:9/files")
///             .header("Idempotency-Key", call.idempotency_key)
///             .build() // `.send().await` in a real call
///             .map_err(std::io::Error::other)
///     })
///     .await;
/// let request = request.unwrap();
/// assert_eq!(request.headers()["Idempotency-Key"].len(), 36);
/// # }
/// ```
#[cfg(feature = "reqwest")]
impl From<IdempotencyKey> for reqwest::header::HeaderValue {
    fn from(key: IdempotencyKey) -> Self {
        // Hex digits and hyphens are valid header bytes, so the fallback is never taken.
        reqwest::header::HeaderValue::from_bytes(&key.text())
            .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""))
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({self})")
    }
}

/// What the runtime knows about the call being executed. See [`current_call`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CallInfo {
    /// The provider name.
    pub provider: &'static str,
    /// The method label (the function name unless `name = "…"` was given).
    pub method: &'static str,
    /// The attempt being made, starting at 1.
    pub attempt: u32,
    /// The most attempts this call may make (1 when retries are off).
    pub max_attempts: u32,
    /// Unique per logical call, the same for all its attempts.
    pub idempotency_key: IdempotencyKey,
}

/// The call whose attempt is being polled. The thread-local holds a pointer to it, not a copy:
/// entering and leaving an attempt is two pointer-sized writes, and nothing on the hot path
/// copies the 16-byte key (copying it right after writing it stalls store-to-load forwarding,
/// which measured at a third of the whole call's cost).
pub(crate) struct Current {
    /// The provider the call resolved at its start, kept for every attempt: resolved again
    /// later, on another thread, a test's isolation (`testing`) could find another.
    pub(crate) p: &'static ProviderInner,
    pub(crate) site: &'static CallSite,
    /// The attempt number in the low bits, and [`NESTED_FAILED`]: one word, so that starting a
    /// call writes no more than it did before the flag. The call changes it between attempts
    /// through `&mut` (plain moves); a nested call sets the flag through the thread-local,
    /// hence atomic.
    attempt: AtomicU32,
    /// Made on first use by `current_call` (most calls never ask), kept for every retry.
    /// Atomics only for `Sync` (the attempt future holds `&Current` and must stay `Send`);
    /// relaxed loads and stores compile to plain moves.
    key: [AtomicU64; 2],
}

impl Current {
    #[inline(always)]
    pub(crate) fn new(site: &'static CallSite, p: &'static ProviderInner) -> Self {
        Current {
            p,
            site,
            attempt: AtomicU32::new(0),
            key: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// The most attempts the call may make: 1 when its site retries nothing.
    pub(crate) fn max_attempts(&self) -> u32 {
        if self.site.retries() {
            self.p.mode.attempts
        } else {
            1
        }
    }

    /// The attempt being made (1-based; 0 before the first).
    #[inline(always)]
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt.load(Ordering::Relaxed) & !NESTED_FAILED
    }

    /// Counts the next attempt and returns its number. The flag is clear here: every attempt
    /// that did not end the call went through `take_nested_failed`.
    #[inline(always)]
    pub(crate) fn next_attempt(&mut self) -> u32 {
        let a = self.attempt.get_mut();
        *a += 1;
        *a
    }

    /// Counts the first attempt of a call without an `Ext` (see `Call::permit`), whose
    /// attempt word is still 0: written, not read back.
    #[inline(always)]
    pub(crate) fn first_attempt(&mut self) {
        debug_assert_eq!(*self.attempt.get_mut(), 0);
        *self.attempt.get_mut() = 1;
    }

    /// Whether a call nested in the attempt just ended, on the same provider, ended with a
    /// failure the breaker already counted; clears it for the next attempt.
    pub(crate) fn take_nested_failed(&mut self) -> bool {
        let a = self.attempt.get_mut();
        let set = *a & NESTED_FAILED != 0;
        *a &= !NESTED_FAILED;
        set
    }

    /// Set by a call nested in the running attempt, on the same provider, that ended with a
    /// failure the breaker counted: the attempt's own failure, which is as a rule that error
    /// handed up, is then not counted again.
    pub(crate) fn set_nested_failed(&self) {
        self.attempt.fetch_or(NESTED_FAILED, Ordering::Relaxed);
    }

    /// The call's key, if anyone asked for it (`key`).
    pub(crate) fn made_key(&self) -> Option<IdempotencyKey> {
        let hi = self.key[0].load(Ordering::Relaxed);
        (hi != 0).then(|| {
            IdempotencyKey((u128::from(hi) << 64) | u128::from(self.key[1].load(Ordering::Relaxed)))
        })
    }

    /// The call's key, made now if this is the first time anyone asks.
    pub(crate) fn key(&self) -> IdempotencyKey {
        let hi = self.key[0].load(Ordering::Relaxed);
        if hi != 0 {
            return IdempotencyKey(
                (u128::from(hi) << 64) | u128::from(self.key[1].load(Ordering::Relaxed)),
            );
        }
        let k = IdempotencyKey::next();
        self.key[0].store((k.0 >> 64) as u64, Ordering::Relaxed);
        self.key[1].store(k.0 as u64, Ordering::Relaxed);
        k
    }
}

/// The flag bit of `Current::attempt`: attempts are at most 1,000.
const NESTED_FAILED: u32 = 1 << 31;

thread_local! {
    static KEYS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    static CURRENT: Cell<*const Current> = const { Cell::new(std::ptr::null()) };
}

/// Inside a `#[resilient]` method or an [`execute`](crate::Provider::execute) operation (the
/// closure as well as the future it returns): the provider, method, attempt number and
/// idempotency key of the running attempt. `None` anywhere else, including in tasks the
/// operation spawns onto the runtime. What the operation polls on its own thread while it is
/// polled (a `LocalSet` it drives, a future it polls or drops by hand) runs inside the
/// attempt and sees it. So does a `Drop` in the operation's future while it runs, or as it
/// completes; not one of an attempt that did not finish (ended by its time limit, or
/// cancelled by its caller), which is dropped after its last poll: there it answers `None`,
/// or, inside another call's attempt, that outer call. Read what such a guard needs (the key)
/// when it is made.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let key = resilience::provider("doc-current-call")
///     .execute(|| async {
///         let call = resilience::current_call().expect("inside a call");
///         assert_eq!(call.attempt, 1);
///         Ok::<_, std::io::Error>(call.idempotency_key.to_string())
///     })
///     .await
///     .unwrap();
/// assert_eq!(key.len(), 36);
/// assert!(resilience::current_call().is_none());
/// # }
/// ```
pub fn current_call() -> Option<CallInfo> {
    with_current(|c| CallInfo {
        provider: c.p.name,
        method: c.site.method(),
        attempt: c.attempt(),
        max_attempts: c.max_attempts(),
        idempotency_key: c.key(),
    })
}

/// `f` of the call whose attempt this thread is polling (or whose `execute` closure it runs),
/// if there is one.
#[allow(unsafe_code)]
pub(crate) fn with_current<R>(f: impl FnOnce(&Current) -> R) -> Option<R> {
    let ptr = CURRENT.with(Cell::get);
    if ptr.is_null() {
        return None;
    }
    // SAFETY: a non-null pointer is only ever stored by `Enter::new` from a `&Current` that the
    // polling `Attempt` (or `Call::attempt_op`) borrows for as long as it is set, and `Enter`'s
    // drop (which also runs on unwinding) puts the previous value back before that borrow
    // ends. This thread is inside it (the thread-local is per thread), so the referent is
    // alive and not mutably borrowed: `Call` is only mutated between attempts, never during
    // one (the key and the attempt word's flag are written through atomics, which a shared
    // reference allows). The reference does not escape `f`.
    Some(f(unsafe { &*ptr }))
}

/// Makes `current` visible to [`current_call`] until dropped; restores the outer value even if
/// the poll inside panics, so a caught panic cannot leave a stale pointer behind.
pub(crate) struct Enter(*const Current);

impl Enter {
    #[inline]
    pub(crate) fn new(current: &Current) -> Self {
        Enter(CURRENT.with(|c| c.replace(current)))
    }
}

impl Drop for Enter {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

#[cfg(test)]
mod tests {

    /// The key's text, made on the stack, is the UUID form it was written with by `format!`.
    #[test]
    fn the_key_s_text_is_its_uuid_form() {
        let old = |v: u128| {
            format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                (v >> 96) as u32,
                (v >> 80) as u16,
                (v >> 64) as u16,
                (v >> 48) as u16,
                v & 0xFFFF_FFFF_FFFF
            )
        };
        let mut values = vec![0, u128::MAX, 1, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210];
        values.extend((0..1000).map(|_| rand::random::<u128>()));
        values.extend((0..10).map(|_| IdempotencyKey::next().as_u128()));
        for v in values {
            assert_eq!(IdempotencyKey(v).to_string(), old(v));
            #[cfg(feature = "reqwest")]
            assert_eq!(
                reqwest::header::HeaderValue::from(IdempotencyKey(v))
                    .to_str()
                    .unwrap(),
                old(v)
            );
        }
    }
    use super::*;

    #[test]
    fn keys_are_unique_and_uuid_shaped() {
        let a = IdempotencyKey::next();
        let b = IdempotencyKey::next();
        assert_ne!(a, b);
        let s = a.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4", "{s}");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
        let other = std::thread::spawn(IdempotencyKey::next).join().unwrap();
        assert_ne!(other, a);
        assert_ne!(other, b);
    }

    fn seen() -> Option<(&'static str, u32, IdempotencyKey)> {
        current_call().map(|c| (c.provider, c.attempt, c.idempotency_key))
    }

    /// A nested call on another provider and on the same one, a panic in a nested call, a
    /// spawned task and a future polled to its end by hand inside the body.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn nested_calls_panics_and_spawned_tasks_see_the_right_call() {
        let outer = crate::provider("ctx-nest-outer");
        let inner = crate::provider("ctx-nest-inner");
        let r: Result<(), std::io::Error> = outer
            .execute(|| async {
                let before = seen().unwrap();
                assert_eq!(before.0, "ctx-nest-outer");
                let k: Result<_, std::io::Error> =
                    inner.execute(|| async { Ok(seen().unwrap()) }).await;
                let k = k.unwrap();
                assert_eq!(k.0, "ctx-nest-inner");
                assert_ne!(k.2, before.2);
                assert_eq!(seen().unwrap(), before);
                // The same provider, nested.
                let k: Result<_, std::io::Error> =
                    outer.execute(|| async { Ok(seen().unwrap()) }).await;
                let k = k.unwrap();
                assert_ne!(k.2, before.2);
                assert_eq!(seen().unwrap(), before);
                // A panic inside a nested call, caught by a task.
                let h = tokio::spawn(async {
                    let _: Result<(), std::io::Error> = crate::provider("ctx-nest-inner")
                        .execute(|| async { panic!("boom") })
                        .await;
                });
                assert!(h.await.is_err());
                assert_eq!(seen().unwrap(), before);
                // The same, caught inside the body: the unwinding restored the outer call.
                let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    poll_to_end(inner.execute(|| async {
                        assert_eq!(seen().unwrap().0, "ctx-nest-inner");
                        panic!("boom inside");
                        #[allow(unreachable_code)]
                        Ok::<(), std::io::Error>(())
                    }))
                }));
                assert!(caught.is_err());
                assert_eq!(seen().unwrap(), before);
                // A spawned task does not see it.
                let h = tokio::spawn(async { seen() });
                assert_eq!(h.await.unwrap(), None);
                // A future polled to its end inside the body sees it.
                assert_eq!(poll_to_end(async { seen() }).unwrap(), before);
                Ok(())
            })
            .await;
        r.unwrap();
        assert!(current_call().is_none());
    }

    /// `futures::executor::block_on`, in short: polls `f` on this thread until it is ready.
    fn poll_to_end<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    /// Polled on two worker threads, across `yield_now`s and a `block_in_place` that drives a
    /// future of its own on the same thread.
    #[test]
    fn a_call_moved_between_threads_sees_itself_at_every_poll() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut hs = Vec::new();
            for _ in 0..8 {
                hs.push(tokio::spawn(async move {
                    let r: Result<(), std::io::Error> = crate::provider("ctx-mt")
                        .execute(|| async move {
                            let first = seen().unwrap();
                            for _ in 0..200 {
                                tokio::task::yield_now().await;
                                assert_eq!(seen().unwrap(), first);
                            }
                            let again = tokio::task::block_in_place(|| {
                                tokio::runtime::Handle::current().block_on(async { seen() })
                            });
                            assert_eq!(again.unwrap(), first);
                            Ok(())
                        })
                        .await;
                    r.unwrap();
                    assert!(seen().is_none());
                }));
            }
            for h in hs {
                h.await.unwrap();
            }
        });
    }
}
