//! `current_call()`: what the running attempt is, from inside the provider method.
//!
//! The runtime sets a thread-local for exactly the duration of each poll of an attempt's
//! future, so the information follows the call across threads (a work-stealing executor may
//! poll it anywhere) and never leaks into unrelated code.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A key that is unique per logical call and the same across its retries: send it as an
/// `Idempotency-Key` header so a provider that saw the first attempt can recognise the retry.
///
/// It is a random version-4 UUID in shape (`xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx`): 64 random
/// bits per thread plus a per-thread counter, so making one costs no lock and no syscall.
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

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xFFFF_FFFF_FFFF
        )
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({self})")
    }
}

/// What the runtime knows about the call being executed. See [`current_call`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

thread_local! {
    static KEYS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    static CURRENT: Cell<Option<CallInfo>> = const { Cell::new(None) };
}

/// Inside a `#[resilient]` method or an [`execute`](crate::Provider::execute) operation: the
/// provider, method, attempt number and idempotency key of the running attempt. `None`
/// anywhere else (including in tasks the operation spawns).
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
    CURRENT.with(Cell::get)
}

pin_project_lite::pin_project! {
    /// Polls `fut` with `info` visible through [`current_call`].
    pub(crate) struct WithCall<F> {
        #[pin]
        fut: F,
        info: CallInfo,
    }
}

impl<F> WithCall<F> {
    pub(crate) fn new(fut: F, info: CallInfo) -> Self {
        WithCall { fut, info }
    }
}

/// Restores the outer value even if the inner poll panics, so a caught panic cannot leave a
/// stale call visible to the next task polled on this thread.
struct Restore(Option<CallInfo>);

impl Drop for Restore {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

impl<F: Future> Future for WithCall<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _restore = Restore(CURRENT.with(|c| c.replace(Some(*this.info))));
        this.fut.poll(cx)
    }
}

#[cfg(test)]
mod tests {
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
}
