//! Draining at shutdown: no more retries.
//!
//! Why a switch of the library's own? A service that lets the requests it accepted finish
//! before it exits (axum's graceful shutdown, Kubernetes' grace period after `SIGTERM`) waits
//! for every call sleeping in a backoff: up to the maximum delay, or a provider's
//! `Retry-After`, and the retries after it. Dropping a call's future ends it cleanly, but that
//! needs every handler to select on a shutdown signal. [`drain`] says it once, for every call:
//! first attempts still go out (the service is still answering what it accepted) and the
//! breaker works as before, but no call starts a retry, and the calls sleeping in a backoff
//! end at once.
//!
//! The switch is read only where a retry is being decided (after a failed attempt) and while a
//! backoff sleeps, never on a call's way in or out: a call that succeeds at its first attempt
//! costs what it did. A sleeping call waits on its provider's [`Notify`] beside its timer, so
//! waking them all takes one pass over the providers, and no allocation per call.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// Whether a set of providers drains: the process's ([`PROCESS`]), or, under
/// `testing::isolate()`, one isolation's, so that a test that drains its service does not
/// drain another test's (nor the process's).
pub(crate) struct Switch {
    // Atomic: `drain()` sets it on one thread (a signal handler's task) while calls on every
    // thread read it. What orders it with a sleeping call's wake-up is `Notify`'s own state
    // (see `Drain::notified`) and the lock the providers are listed under, so `Relaxed` would
    // do; `Release`/`Acquire` cost nothing off the hot path (plain moves on x86) and order
    // what the caller of `drain()` did before it with an `is_draining()` that sees it.
    on: AtomicBool,
    /// The [`draining`] futures waiting for the switch: the service's own waits, apart from
    /// the providers' sleeping calls (each provider's `Drain::wake`).
    waiters: Notify,
}

impl Switch {
    pub(crate) const fn new() -> Self {
        Switch {
            on: AtomicBool::new(false),
            waiters: Notify::const_new(),
        }
    }

    /// Turns the switch on; `true` the first time, when the caller goes on to
    /// [`wake_waiters`](Self::wake_waiters), with no lock of its own held.
    pub(crate) fn turn_on(&self) -> bool {
        !self.on.swap(true, Ordering::Release)
    }

    /// Wakes every [`draining`] future, after [`turn_on`](Self::turn_on): one that registered
    /// before the store is woken and reads the switch on; one made after it reads the switch
    /// itself. Wakers are the user's code (an executor's): called with no lock of ours held,
    /// an isolation's included, which a waker that asks `is_draining()` would take again.
    pub(crate) fn wake_waiters(&self) {
        self.waiters.notify_waiters();
    }

    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }
}

/// The process's switch, which every provider of the registry reads.
pub(crate) static PROCESS: Switch = Switch::new();

/// A provider's part of draining: the switch it obeys, and the calls sleeping in its backoffs.
pub(crate) struct Drain {
    switch: &'static Switch,
    /// One per provider, not one for the process: a backoff registers with it as it starts
    /// sleeping and leaves as it ends (each under the `Notify`'s lock), so retries on
    /// different providers never wait on one another, as the retry budget's lock keeps them.
    wake: Notify,
}

impl Drain {
    pub(crate) fn new(switch: &'static Switch) -> Self {
        Drain {
            switch,
            wake: Notify::new(),
        }
    }

    /// Whether a call on this provider may no longer retry.
    #[inline]
    pub(crate) fn is_on(&self) -> bool {
        self.switch.is_on()
    }

    /// What a backoff waits on beside its timer. Made before the backoff first reads the
    /// switch: `notify_waiters` wakes every `Notified` made before it, polled or not, and one
    /// made after it reads `Notify`'s state with `Acquire` after `drain()` stored the switch,
    /// so it sees the switch on. Either way no sleeping call is missed. No allocation of its
    /// own: the waiter is a node inside the returned future, which the call keeps in its
    /// timer's box (see `call::Timer`).
    pub(crate) fn notified(&'static self) -> Notified<'static> {
        self.wake.notified()
    }

    fn wake(&self) {
        self.wake.notify_waiters();
    }

    fn obeys(&self, switch: &Switch) -> bool {
        std::ptr::eq(self.switch, switch)
    }
}

/// Stops retries, for shutdown: from now on no call starts a backoff or a retry, and every call
/// sleeping in a backoff wakes at once and ends.
///
/// - A call's first attempt is still made (breaker permitting): the service is still
///   answering the requests it accepted. The breaker counts and rejects as before.
/// - An attempt in flight runs to its end. If it fails, the call returns that error, unchanged,
///   as when its attempts are used up, instead of retrying.
/// - A call sleeping in a backoff returns at once with the method's error made from
///   [`ResilienceError::Draining`](crate::ResilienceError::Draining), not the failed
///   attempt's error: that is not kept across the sleep (it would grow every call's future,
///   and make it `!Send` for an error type that is not `Send`), as for a deadline that passes
///   during the sleep. Its retry-budget token is given back.
/// - Each such call logs its giving-up line with `reason="draining"` and counts as a failed
///   call in `resilience_calls_total`, as other give-ups do (a failure that would not have
///   been retried anyway, permanent or the last attempt, keeps its own reason).
///
/// Idempotent, and one-way: a draining process is shutting down, and nothing turns it back.
/// Under `testing::isolate()` (the `testing` feature) it drains only that isolation's
/// providers (and a new isolation starts undrained), so a test that drives its service's
/// shutdown does not stop another test's retries; outside one it drains the process's
/// providers, not the isolations'.
///
/// Call it from the shutdown hook, before waiting for the requests in flight:
///
/// ```no_run
/// # async fn serve(_: impl std::future::Future<Output = ()>) {}
/// /// Ends when the process is told to stop; what comes after it is the grace period.
/// async fn shutdown_signal() {
///     // Kubernetes sends SIGTERM: `tokio::signal::unix::signal(SignalKind::terminate())`.
///     let _ = tokio::signal::ctrl_c().await;
///     // The requests in flight finish now without their retries, the sleeping ones at once.
///     resilience::drain();
/// }
///
/// # #[tokio::main] async fn main() {
/// // Your server, which stops accepting when the signal ends and then waits for the requests
/// // in flight: `axum::serve(listener, app).with_graceful_shutdown(shutdown_signal())`.
/// serve(shutdown_signal()).await;
/// # }
/// ```
pub fn drain() {
    #[cfg(feature = "testing")]
    if crate::testing::drain_isolation() {
        return;
    }
    // Only the first time: every backoff begun after the switch reads it (see
    // `Drain::notified`), so a second pass would find no one to wake. The list is read after
    // the switch is on: a provider not in it yet is made after, and its calls see the switch.
    if PROCESS.turn_on() {
        PROCESS.wake_waiters();
        announce();
        wake(&PROCESS, crate::registry::made());
    }
}

/// Whether [`drain`] was called (in this isolation, under
/// `testing::isolate()`).
///
/// ```
/// # let _isolated = resilience::testing::isolate(); // drains this isolation, not the process
/// assert!(!resilience::is_draining());
/// resilience::drain();
/// assert!(resilience::is_draining());
/// ```
pub fn is_draining() -> bool {
    #[cfg(feature = "testing")]
    if let Some(on) = crate::testing::isolation_draining() {
        return on;
    }
    PROCESS.is_on()
}

/// A future that completes when [`drain`] is called (at once if it was): for the waits of
/// your own code that a shutdown should end too, such as a queue's `recv()`, a rate limiter's
/// sleep or a poll loop, which `drain()` does not reach (it ends only the library's backoffs).
///
/// The switch it waits for is chosen when it is made: the process's, or, under
/// `testing::isolate()`, that isolation's (so make it on the test's thread, then hand it to a
/// task). It allocates nothing (but an isolation's switch, made the first time one is asked
/// for under it), and may be made and dropped any number of times.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # let _isolated = resilience::testing::isolate(); // drains this isolation, not the process
/// let (jobs, mut queue) = tokio::sync::mpsc::channel::<u32>(8);
/// let worker = tokio::spawn(async move {
///     let stop = resilience::draining();
///     tokio::pin!(stop);
///     loop {
///         tokio::select! {
///             _ = &mut stop => return "drained",
///             job = queue.recv() => if job.is_none() { return "closed" },
///         }
///     }
/// });
/// resilience::drain();
/// assert_eq!(worker.await.unwrap(), "drained");
/// # drop(jobs);
/// # }
/// ```
pub fn draining() -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
    let switch = here();
    async move {
        loop {
            // Made before the switch is read: `notify_waiters` wakes every `Notified` made
            // before it (polled or not), and one made after it sees the switch on (see
            // `Drain::notified`). The loop only guards against a wake-up of `Notify`'s that
            // is not ours; the switch never turns back off.
            let woken = switch.waiters.notified();
            if switch.is_on() {
                return;
            }
            woken.await;
        }
    }
}

/// The switch [`drain`] turns on from this thread.
fn here() -> &'static Switch {
    #[cfg(feature = "testing")]
    if let Some(switch) = crate::testing::isolation_switch() {
        return switch;
    }
    &PROCESS
}

/// Said once per switch, with no lock of ours held (a log layer may make a provider), so that
/// the giving-up lines that follow have their cause in the log.
#[cold]
pub(crate) fn announce() {
    tracing::info!(
        target: "resilience",
        "[DRAIN] Draining: no call makes another retry; calls sleeping in a backoff end now"
    );
}

/// Wakes the calls sleeping in a backoff on those of `providers` that obey `switch`. Outside
/// any lock of ours: a waker is code we do not know.
pub(crate) fn wake(
    switch: &Switch,
    providers: impl IntoIterator<Item = &'static crate::registry::ProviderInner>,
) {
    for p in providers {
        if p.drain.obeys(switch) {
            p.drain.wake();
        }
    }
}
