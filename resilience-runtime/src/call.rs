//! The retry loop around the breaker: one logical call, made of attempts.
//!
//! Composition: retry wraps the breaker. Each attempt asks the breaker for a permit; a
//! rejection ends the call at once (never retried, never counted as a failure). A failed
//! attempt is classified; transient and throttled ones are retried with backoff while
//! attempts, the retry budget and the deadline allow, and the last error is returned unchanged.
//!
//! `#[resilient]` expands to the loop in [`CallSite::execute`] written out inline (so the
//! method body can borrow its arguments); both drive the same [`Call`].
//!
//! # The hot path, operation by operation
//!
//! A call on a closed breaker that succeeds at its first attempt, with no recorder, does:
//!
//! | operation | why it is needed |
//! |---|---|
//! | acquire load of the call site's `OnceLock` (its state, then its value) | the provider handle, resolved once per site; acquire pairs with the store that published it |
//! | relaxed load of the provider's `plain` flag | no timeouts, not switched off, and no recorder (cleared on every provider when one is switched on), so the call needs none of `Ext`: metrics cost nothing until a recorder exists |
//! | acquire load of the breaker's state word | admit or reject; acquire so a new state comes with the fields written before it |
//! | relaxed load of the retry budget's balance, and a plain load of its refill mark | after the admission, as a refused call earns no retry; a full bucket (a healthy provider) takes no deposit, so nothing is written; the mark is the capacity, or below any balance when the budget is off or a call earns nothing (ratio 0) |
//! | load of tracing's global level filter | the first attempt's debug line, skipped in one comparison when debug is off |
//! | test of the `Ext`'s absence before the attempt (`after_copies`) | a retry's budget token and an attempt's time limit begin once the arguments are copied (a copy is the caller's time, not the provider's); a plain call has neither |
//! | a thread-local read, and two pointer writes, around the poll | `current_call()` inside the body; the outer pointer is kept for a nested call; a pointer, not a copy. Taken off, the call measured 4–10% faster, about 0.3–0.85 ns (`benches/without_context.sh`) |
//! | relaxed load of the breaker's failure count | a success must reset it, and a load shows there is nothing to reset; 64 bits since the count carries the generation it counts for (so a result from before a `reset()` counts for nothing), its low half tested: one instruction more, 97 a call |
//! | test of the `Ext`'s absence after the attempt | a call with a recorder records its success |
//!
//! Not counted here, as the benchmark's method has none: each owned argument the body names is
//! cloned before every attempt, the first included (the original is kept for a retry), so a
//! `Vec<u8>` taken by value allocates on every call; a borrowed one (`&[u8]`) does not.
//! `tests/alloc.rs` counts calls with borrowed and `Copy` arguments.
//!
//! A call without an `Ext` is never direct (a direct call starts with one) and is at its first
//! attempt (a retry has one, for its backoff timer), so it tests neither. It starts with six
//! stores (52 bytes) into the caller's future (the `Call`: provider, site, attempt counter, an
//! empty idempotency key and ticket, and `ext = None`), then writes its ticket and attempt
//! number, and drops nothing but one bit test (a probe ticket): a clean success leaves the
//! macro's loop by `break`, so its drop is one of its own, after `clean` tested the `Ext`. The
//! attempt and backoff futures only borrow from the call, so the caller's future has almost no
//! drop glue. Nothing else of the loop's is kept across the backoff's `.await`: neither the
//! attempt's result nor the loop's step that holds it (see the macro's loop).
//!
//! The plain call's first permit is made outside the loop (`Call::start_plain`), where what
//! `Call::new` wrote is still known: rustc does not mark a `&mut` to an `!Unpin` type as
//! unaliased (a future may point into itself), so the optimiser reloads a future's fields
//! wherever paths meet after a call it cannot see into, and inside the loop the plain call's
//! start met the out-of-line one before the breaker (the ticket, the attempt number and the
//! provider read back there: about 5 instructions).
//!
//! Its layout counts as much as its instructions: a taken jump costs about a cycle whatever
//! it jumps over, and the optimiser, told nothing, laid the plain call out as 18 of them (7
//! are the probe loop's and the bare call's own). Each branch off the hot path is marked
//! unlikely (`crate::cold_path`: the recorder and time limits, a direct call, a rejection,
//! the debug line, a retry, a failure, a probe ticket's release, the `Ext`'s drop), and the
//! call now runs straight through but for 4: into the loop, the attempt future's first
//! poll (an indirect jump on its state), the `Step` it returns, and out. Same instructions,
//! 7.1 → 5.8 ns a call in `hot_path_probe resilient` (bare: 2.5 ns), where the method's future
//! is inlined into its caller; the benchmark's, awaited in 21 places and polled out of line
//! (six registers saved and restored), did not move (`benches/RUNS.md`, run AD).
//!
//! From helper-118's work (stop 26), the plain call takes 96 instructions where it took 112
//! (`hot_path_probe`; `once` 109 → 96, a forced-open rejection 87 → 81, an opened one 105 →
//! 101, our part of a call with a recorder 253 → 241; 95, 80, 100 and 240 at `892b36f`, before
//! `3925bff` moved a retry's token and the time limit into `attempt`, after the argument
//! copies): the first permit outside the loop,
//! the permit beginning the attempt (a call without an `Ext` tests neither the off switch nor
//! the attempt number), one flag per provider for "plain and no recorder", a clean success
//! leaving the loop by `break`, and the closed breaker's ticket kept apart from the answer a
//! rejection returns through memory (`Breaker::admit_closed`).
//!
//! No lock, no allocation (`tests/alloc.rs` counts), no read-modify-write and no shared
//! write, so two threads calling the same healthy provider never contend (benchmarked).
//!
//! [`drain()`](crate::drain) adds nothing to it: its switch is read where a retry is decided
//! (`next_delay`, after a failed attempt) and by the backoff future, which waits on the
//! provider's `Notify` beside its timer (a waiter inside the future, registered under the
//! `Notify`'s lock as the sleep starts: a retry's cost, as the budget's lock is).
//!
//! With a recorder, a call starts out of line (`make_ext`: the site's metric handles and a TSC
//! reading, which is also its first attempt's start), makes the same checks, and a clean
//! success then records its attempt and its outcome, with their duration, in one out-of-line
//! call (`succeeded`). A first attempt's span is the call's, from the same two TSC readings, so
//! such a success (tested by its attempt number) has one duration for both: under the recorder
//! `serve()` installs, it is one sample into a cell of the method's that the store renders into
//! both `resilience_call_duration_seconds{outcome="success"}` and
//! `resilience_attempt_duration_seconds{result="success"}`, added there to each series' own
//! (`SiteMetrics::first_attempt_succeeded`, `store::first_successes`), and whose count the
//! store adds into `resilience_calls_total{outcome="success"}` and
//! `resilience_attempts_total{result="success"}` (since stop 39: their own `fetch_add`s took
//! about a third of the recording on run AZ's host). The cell has a shard per thread
//! (`store::Sharded`), which only that thread writes: the sample is a read of the thread's
//! shard index (a thread-local) and two loads and two stores, no atomic read-modify-write
//! (the bucket's `fetch_add` and the sum's compare-exchange took about 10 ns of the call's
//! 45 on run BA's host, before stop 40); no lock and no clock read beyond the call's two. Under a recorder of
//! the application's own, the same success counts both counters and records both histograms
//! through the facade (a site learns which when its handles are made, and keeps it: one
//! predictable branch). A retry reads the TSC at its start, after
//! its backoff and argument copies (`retry_started`), and a retried call records each attempt
//! into the attempt histogram (`attempt_done`) and the call into the call's. Counted by
//! `sh benches/instructions.sh ours`: 237 instructions (232 in stop 39 with the atomic
//! operations, which cost more than the seven instructions the shard's lookup adds; 230 with
//! the sample in whole nanoseconds; 237 with the inline TSC read, as valgrind's CPU makes
//! quanta read the OS clock, so that both the test for the inline read and quanta's call run;
//! 241–242 before the store counted first-attempt successes by their sample; 322, then 303
//! inlined, when a first-attempt success recorded its attempt apart).

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::futures::Notified;
use tokio::time::{Instant, Sleep};

use crate::backoff;
use crate::breaker::{CircuitState, NO_TICKET, UNTRACKED, Verdict};
use crate::classify::{Classify, ErrorClass};
use crate::context::{Current, Enter, IdempotencyKey};
use crate::drain::Drain;
use crate::error::{ResilienceError, Seconds};
use crate::registry::{Provider, ProviderInner, resolve_site};
use crate::telemetry::{self, AttemptResult, CallOutcome, SiteMetrics, seconds};
use crate::tsc;

/// A place in the code that calls a provider: the provider name, the method label, and the
/// handles resolved on first use. `#[resilient]` declares one `static` per method; declare
/// your own to give [`execute`](CallSite::execute) calls a method label.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use resilience::CallSite;
///
/// static UPLOAD: CallSite = CallSite::new("doc-site-kimi", "upload_file");
///
/// let id: Result<u64, std::io::Error> = UPLOAD.execute(|| async { Ok(7) }).await;
/// assert_eq!(id.unwrap(), 7);
/// assert_eq!(UPLOAD.provider().name(), "doc-site-kimi");
/// # }
/// ```
///
/// It is aligned to 128 bytes (384 in all), so that no other data shares the cache lines every
/// call reads; so it cannot be a field of a `#[repr(packed)]` type.
// Aligned to 128 bytes, as `ProviderInner` is (see there): every call reads its cell, and a
// `static` the application writes on every request (a counter of its own) must not share its
// lines.
#[repr(align(128))]
pub struct CallSite {
    provider: &'static str,
    method: &'static str,
    retry: bool,
    resolved: OnceLock<&'static ProviderInner>,
    metrics: OnceLock<SiteMetrics>,
}

impl std::fmt::Debug for CallSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallSite")
            .field("provider", &self.provider)
            .field("method", &self.method)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

// A panic caught around a call leaves nothing half-written that a later call could see: the
// state is atomics, locks that recover from poisoning, and cells filled once. (The metric
// handles' `Arc<dyn …>` is what makes the compiler unsure.)
impl std::panic::RefUnwindSafe for CallSite {}
impl std::panic::UnwindSafe for CallSite {}

impl CallSite {
    /// A call site for `provider`, labelled `method` in logs and metrics.
    pub const fn new(provider: &'static str, method: &'static str) -> Self {
        CallSite {
            provider,
            method,
            retry: true,
            resolved: OnceLock::new(),
            metrics: OnceLock::new(),
        }
    }

    /// The same call site, but every call makes exactly one attempt (the breaker still
    /// applies): for operations that are not idempotent.
    #[must_use]
    pub const fn without_retry(mut self) -> Self {
        self.retry = false;
        self
    }

    /// The provider this site calls.
    pub fn provider(&self) -> Provider {
        Provider(self.inner())
    }

    /// The method label.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Whether a call here may retry (`without_retry`, `retry = false`). A call works out its
    /// attempt limit from this and its provider when asked (for logs and `current_call()`),
    /// so starting one does not store it.
    pub(crate) fn retries(&self) -> bool {
        self.retry
    }

    #[inline]
    fn inner(&self) -> &'static ProviderInner {
        #[cfg(feature = "testing")]
        if let Some(p) = self.isolated() {
            return p;
        }
        // After the first call, an acquire load and a branch.
        match self.resolved.get() {
            Some(p) => p,
            None => {
                crate::cold_path();
                resolve_site(&self.resolved, self.provider)
            }
        }
    }

    /// This thread's own provider for the name, under `testing::isolate`; never for a
    /// provider's `execute` site, which is bound to its provider (an isolated one's to it).
    #[cfg(feature = "testing")]
    fn isolated(&self) -> Option<&'static ProviderInner> {
        if self
            .resolved
            .get()
            .is_some_and(|p| std::ptr::eq(&p.execute_site, self))
        {
            return None;
        }
        crate::testing::scoped(self.provider)
    }

    /// The program's `#[resilient]` call sites, each registered at load (before `main`).
    pub(crate) fn registered() -> impl Iterator<Item = &'static CallSite> {
        inventory::iter::<crate::__private::Registered>
            .into_iter()
            .map(|r| r.0)
    }

    /// The provider name the site was declared with.
    pub(crate) fn provider_name(&self) -> &'static str {
        self.provider
    }

    pub(crate) fn bind(&self, inner: &'static ProviderInner) {
        let _ = self.resolved.set(inner);
    }

    #[inline]
    fn metrics(&self) -> Option<&SiteMetrics> {
        // One relaxed load when no recorder is installed: no clock read, no labels.
        // Labelled with the site's provider name, as the counters the switch makes in
        // advance are, which must not resolve it: that would make the provider, whose
        // configuration may not be given yet. It is the provider's name: a provider's own
        // `execute` site is made with it.
        if telemetry::recording() {
            Some(
                self.metrics
                    .get_or_init(|| SiteMetrics::new(self.provider, self.method)),
            )
        } else {
            None
        }
    }

    /// Runs `op` (called once per attempt) with the provider's retry policy and breaker. This
    /// is the loop `#[resilient]` writes out inline.
    ///
    /// `op` is a closure that returns a future of `Result<T, E>`: `|| async { … }`, or
    /// `|| fetch()` for an `async fn fetch`. It may borrow locals and be `FnMut`; its future
    /// need not be `Send` nor `Unpin`. `E` must implement [`Classify`] (which errors to
    /// retry) and `From<ResilienceError>` (see Errors). The bound `F: Operation<T, E>` says
    /// just that, with a trait of our own, so that a mistake is reported once, at `op`,
    /// with what to do.
    ///
    /// # Errors
    ///
    /// The operation's last error, unchanged, when it is permanent or its retries are over
    /// (attempts, budget, deadline, [`drain()`](crate::drain)); `E::from(ResilienceError)`
    /// when the call ends on the breaker (`CircuitOpen`), a timeout (`AttemptTimeout`,
    /// `DeadlineExceeded`) or a drain that woke it in its backoff (`Draining`).
    // A plain `fn` returning the loop's async block: the same future as the `async fn` it
    // was (it captures `self` and `op`, and runs nothing before its first poll), which
    // `Provider::execute` returns as it is, with no future of its own around it. Its one
    // bound is a private trait's, so that a mistake is reported once, at `op` (see
    // `Operation`).
    #[allow(clippy::manual_async_fn)]
    pub fn execute<F, T, E>(&'static self, mut op: F) -> impl Future<Output = Result<T, E>>
    where
        F: Operation<T, E>,
    {
        async move {
            let mut call = Call::new(self);
            if call.plain() {
                if let Err(rejected) = call.start_plain(F::hooks()) {
                    return rejected;
                }
            } else if let Err(rejected) = call.start_ext(F::hooks()) {
                return rejected;
            }
            loop {
                // Scoped as `#[resilient]` writes it (see there): nothing with drop glue across
                // the backoff's `.await`. Bound with a `let` (as the lint would have it), the
                // step would live across it.
                #[allow(clippy::blocks_in_conditions)]
                match {
                    let out = call.attempt_op(|| op.call()).await;
                    match call.clean(F::hooks(), out) {
                        Ok(out) => break out,
                        Err(out) => call.finish_slow(F::hooks(), out),
                    }
                } {
                    Step::Done(out) => return out,
                    Step::Retry => {}
                }
                if let Err(out) = call.backoff(F::hooks()).await {
                    return out;
                }
                if let Err(rejected) = call.permit(F::hooks()) {
                    return rejected;
                }
            }
        }
    }
}

/// What [`CallSite::execute`] and [`Provider::execute`] take: a closure (called once per
/// attempt) that returns a future of `Result<T, E>`, where `E` implements [`Classify`] and
/// `From<ResilienceError>`. Implemented for every such closure; not for anything else.
///
/// Why not the plain bounds on `execute` (`F: FnMut() -> Fut`, `Fut: Future<Output =
/// Result<T, E>>`, `E: Classify + From<ResilienceError>`)? A bound of `execute`'s own that
/// fails is reported again wherever its future's type is used (the whole call, its
/// `.await`), and with rustc's words, which do not say what to write. Nested here, in the
/// bounds of [`AttemptFn`]'s impl, a mistake is reported once, at the closure, in the words of
/// the private trait it misses ([`AttemptFuture`], [`CallClassify`], [`CallError`], or this one's). Only a future
/// whose output is not a `Result` is still reported three times: that failure is a
/// mismatch of its `Output` with `Result<_, _>` and is found again at each use.
#[doc(hidden)]
// The same words as `AttemptFn`'s: rustc reports this trait's for a future passed in place of
// the closure (`tests/ui/fail/execute-future-not-closure.rs`), and `AttemptFn`'s where the
// closure's own bounds fail.
#[diagnostic::on_unimplemented(
    message = "`execute` takes a closure that returns a future, not `{Self}`",
    label = "expected a closure: `|| async {{ … }}`",
    note = "`execute` calls the closure once per attempt, for a fresh future each time: a future can be awaited only once, so it cannot be retried",
    note = "to call an `async fn`, pass `|| fetch()` instead of `fetch()`; for an async block, `|| async {{ … }}`"
)]
pub trait Operation<T, E> {
    /// The future of one attempt.
    type Fut: Future<Output = Result<T, E>>;
    /// Starts an attempt.
    fn call(&mut self) -> Self::Fut;
    /// The loop's view of `Result<T, E>` ([`hooks`]).
    fn hooks<'a>() -> &'a Hooks<Result<T, E>>
    where
        T: 'a,
        E: 'a;
}

impl<F, T, E> Operation<T, E> for F
where
    F: AttemptFn<Ok = T, Err = E>,
{
    type Fut = F::Fut;
    #[inline(always)]
    fn call(&mut self) -> F::Fut {
        AttemptFn::call(self)
    }
    #[inline(always)]
    fn hooks<'a>() -> &'a Hooks<Result<T, E>>
    where
        T: 'a,
        E: 'a,
    {
        F::hooks()
    }
}

/// [`Operation`] with its result's types as associated types: the bounds it checks are this
/// trait's impl's, whose failure rustc reports once (a failure of a bound with `execute`'s
/// own `T` and `E` in it was reported three times).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`execute` takes a closure that returns a future, not `{Self}`",
    label = "expected a closure: `|| async {{ … }}`",
    note = "`execute` calls the closure once per attempt, for a fresh future each time: a future can be awaited only once, so it cannot be retried",
    note = "to call an `async fn`, pass `|| fetch()` instead of `fetch()`; for an async block, `|| async {{ … }}`"
)]
pub trait AttemptFn {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
    /// The future of one attempt.
    type Fut: Future<Output = Result<Self::Ok, Self::Err>>;
    /// Starts an attempt.
    fn call(&mut self) -> Self::Fut;
    /// The loop's view of the result ([`hooks`]).
    fn hooks<'a>() -> &'a Hooks<Result<Self::Ok, Self::Err>>
    where
        Self::Ok: 'a,
        Self::Err: 'a;
}

impl<F, Fut> AttemptFn for F
where
    F: FnMut() -> Fut,
    Fut: AttemptFuture,
    Fut::Err: CallClassify + CallError,
{
    type Ok = Fut::Ok;
    type Err = Fut::Err;
    type Fut = Fut;
    #[inline(always)]
    fn call(&mut self) -> Fut {
        self()
    }
    #[inline(always)]
    fn hooks<'a>() -> &'a Hooks<Result<Fut::Ok, Fut::Err>>
    where
        Fut::Ok: 'a,
        Fut::Err: 'a,
    {
        hooks::<Result<Fut::Ok, Fut::Err>>()
    }
}

/// A future of a `Result`, under a name of our own, so that a closure that returns something
/// else (a `Result` itself: `|| fetch()` with a `fetch` that is not `async`) is told how to
/// return a future.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "the closure given to `execute` must return a future of `Result<T, E>`, not `{Self}`",
    label = "this closure returns `{Self}`",
    note = "`execute` calls the closure once per attempt and awaits the future it returns: write `|| async {{ … }}` (`|| fetch()` for an `async fn fetch`)",
    note = "for a function that is not `async`, wrap its call in an async block: `|| async {{ fetch() }}` (it blocks the executor's thread while it runs)",
    note = "the future's output must be a `Result`: its error says whether the attempt failed, and `Classify` on it whether to retry"
)]
pub trait AttemptFuture: Future<Output = Result<Self::Ok, Self::Err>> {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
}

#[diagnostic::do_not_recommend]
impl<Fut, T, E> AttemptFuture for Fut
where
    Fut: Future<Output = Result<T, E>>,
{
    type Ok = T;
    type Err = E;
}

/// [`Classify`] for `execute`'s error type, under a name of our own, so that the error names
/// the closure's error type (`Box<dyn Error>`), where `Classify`'s own names the type its impl
/// for `Box<E>` asked of (`dyn Error`), with advice for a type of one's own.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` does not implement `resilience::Classify`",
    label = "this closure's error type `{Self}` must implement `Classify`: which of its errors to retry, and which count against the breaker",
    note = "for an error type of your own, derive it (`#[derive(resilience::Classify)]`, with `#[classify(transparent)]` or a class on each variant) or implement it, to say which errors are transient, throttled or permanent",
    note = "for `anyhow::Error`, enable resilience's `anyhow` feature, and for `reqwest_middleware::Error` its `reqwest-middleware` feature; Rust's orphan rule forbids implementing it for another crate's type (`Box<dyn Error>`, `String`): return an enum of your own that wraps it (see the README's \"Using it\"), e.g. `|| async {{ fetch().await.map_err(MyError::Other) }}`"
)]
pub trait CallClassify: Classify {}

#[diagnostic::do_not_recommend]
impl<E: Classify + ?Sized> CallClassify for E {}

/// `From<ResilienceError>` for `execute`'s error type, under a name of our own, so that a
/// missing impl is reported with what it is for and how to add it (rustc's own message names
/// only the bound). As [`FromResilienceError`] is for `#[resilient]`, in `execute`'s words.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` must implement `From<resilience::ResilienceError>`",
    label = "this closure's error type `{Self}` has no `From<ResilienceError>`",
    note = "an open breaker, an attempt timeout, the call's deadline and a drain come back as `execute`'s own error: for an error type of your own, give it a variant that holds a `ResilienceError` and `impl From<ResilienceError>` for it (with thiserror and the derive: `#[error(transparent)] #[classify(transparent)] Resilience(#[from] ResilienceError)`)",
    note = "for `reqwest_middleware::Error`, enable resilience's `reqwest-middleware` feature; for another crate's type (`reqwest::Error`, `Box<dyn Error>`, `String`), Rust's orphan rule forbids that impl: return an enum of your own with a variant that wraps it and one for `ResilienceError` (see the README's \"Using it\"), e.g. `|| async {{ fetch().await.map_err(MyError::Http) }}`"
)]
pub trait CallError: From<ResilienceError> {}

#[diagnostic::do_not_recommend]
impl<E: From<ResilienceError>> CallError for E {}

/// What the loop needs to know about a method's return type, as plain function pointers.
///
/// Why not trait bounds on every step of the loop? Because `#[resilient]` spans each
/// [`hooks`] call at the user's return type: a missing `Classify` or `From<ResilienceError>`
/// then yields identical errors there, which rustc reports once, instead of one per
/// generated line.
#[doc(hidden)]
pub struct Hooks<R> {
    class: fn(&R) -> Option<ErrorClass>,
    summary: fn(&R) -> Option<String>,
    retry_after: fn(&R) -> Option<Duration>,
    reject: fn(ResilienceError) -> R,
}

impl<R> Clone for Hooks<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for Hooks<R> {}

/// The `Result` a `#[resilient]` method returns, seen through type aliases.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`#[resilient]` methods must return `Result<T, E>`, not `{Self}`",
    label = "expected `Result<T, E>` here",
    note = "the error type `E` must implement `resilience::Classify` and `From<resilience::ResilienceError>`"
)]
pub trait IsResult {
    /// The error type.
    type Error;
    /// The error, when this is one.
    fn error(&self) -> Option<&Self::Error>;
    /// Wraps an error.
    fn from_error(e: Self::Error) -> Self;
}

impl<T, E> IsResult for Result<T, E> {
    type Error = E;
    #[inline]
    fn error(&self) -> Option<&E> {
        self.as_ref().err()
    }
    fn from_error(e: E) -> Self {
        Err(e)
    }
}

struct HooksFor<R>(std::marker::PhantomData<R>);

impl<R> HooksFor<R>
where
    R: IsResult,
    R::Error: Classify + From<ResilienceError>,
{
    const HOOKS: Hooks<R> = Hooks {
        class: |r| r.error().map(Classify::classify),
        summary: |r| {
            r.error()
                .and_then(|e| e.log_summary())
                .map(|s| crate::redact::redact(&s))
        },
        retry_after: |r| r.error().and_then(Classify::retry_after),
        reject: |e| R::from_error(From::from(e)),
    };
}

/// `From<ResilienceError>` under a name of our own, so a missing impl is reported with what
/// it is for and how to add it (rustc's own message names only the bound).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` must implement `From<resilience::ResilienceError>`",
    label = "this error type has no `From<ResilienceError>`",
    note = "an open breaker, an attempt timeout, the call's deadline and a drain come back as the method's own error: for an error type of your own, give it a variant that holds a `ResilienceError` and `impl From<ResilienceError>` for it (with thiserror and the derive: `#[error(transparent)] #[classify(transparent)] Resilience(#[from] ResilienceError)`)",
    note = "for `reqwest_middleware::Error`, enable resilience's `reqwest-middleware` feature; for another crate's type (`reqwest::Error`, `String`), Rust's orphan rule forbids that impl: return an enum of your own with a variant that wraps it and one for `ResilienceError` (see the README's \"Using it\")"
)]
pub trait FromResilienceError: From<ResilienceError> {}

impl<E: From<ResilienceError>> FromResilienceError for E {}

/// The loop's view of `R`, as a promoted `'static` constant (a pointer to pass around, and
/// function pointers the optimiser can see through); the only place the bounds are checked.
#[doc(hidden)]
#[inline]
pub fn hooks<'a, R>() -> &'a Hooks<R>
where
    R: IsResult + 'a,
    R::Error: Classify + FromResilienceError,
{
    &HooksFor::<R>::HOOKS
}

pin_project_lite::pin_project! {
    /// One attempt's future: polls the body with [`current_call`](crate::current_call) set,
    /// and ends it with an error if its time limit passes.
    #[doc(hidden)]
    pub struct Attempt<'a, F> {
        #[pin]
        fut: F,
        // The call: its `current` to publish during each poll, and, when a limit is set, its
        // timer and the error that ends the attempt. They live in the `Call` (the timer boxed
        // and only when needed: inline, a `Sleep` would triple the size of every call's
        // future, and futures are moved by copying) and are borrowed here, so the attempt
        // future has no drop glue. One pointer: the plain path stores nothing else.
        call: &'a mut Call,
    }
}

impl<F: Future> Future for Attempt<'_, F> {
    type Output = Result<F::Output, ResilienceError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        {
            let _enter = Enter::new(&this.call.current);
            if let Poll::Ready(out) = this.fut.poll(cx) {
                return Poll::Ready(Ok(out));
            }
        }
        // `timeout` is set only for an attempt with a limit (`arm_limit`).
        if let Some(ext) = this.call.ext.as_mut()
            && let (Some(timer), Some(error)) = (ext.timer.as_mut(), ext.timeout.as_ref())
            && timer.as_mut().project().sleep.poll(cx).is_ready()
        {
            return Poll::Ready(Err(error.clone()));
        }
        Poll::Pending
    }
}

/// The sleep before a retry: a borrow of the call (whose timer it sleeps on), so the caller's
/// future holds no box across this `.await`. Ends with the method's error instead when the
/// call's deadline passed during the sleep (see [`Call::after_backoff`]), or when
/// [`drain()`](crate::drain) stops retries.
#[doc(hidden)]
pub struct Backoff<'a, R> {
    call: &'a mut Call,
    hooks: &'a Hooks<R>,
}

impl<R> Future for Backoff<'_, R> {
    type Output = Result<(), R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), R>> {
        let this = self.get_mut();
        let drain = &this.call.current.p.drain;
        // A retry always has its timer (`next_delay` gave up without one).
        let drained = match this.call.ext.as_mut().and_then(|e| e.timer.as_mut()) {
            Some(timer) => match timer.as_mut().backoff(drain, cx) {
                Poll::Ready(drained) => drained,
                Poll::Pending => return Poll::Pending,
            },
            None => drain.is_on(),
        };
        Poll::Ready(if drained {
            Err(this.call.drained_in_backoff(this.hooks))
        } else {
            this.call.after_backoff(this.hooks)
        })
    }
}

pin_project_lite::pin_project! {
    /// A call's one timer (see `Ext::timer`), and while it times a backoff, the provider's
    /// wake-up for a drain: boxed with the sleep, made at the call's first need of a timer,
    /// so that it adds nothing to the caller's future, whose size every call pays (a waiter
    /// is 64 bytes: inline in the backoff's future it grew a small method's future by as
    /// much).
    struct Timer {
        #[pin]
        sleep: Sleep,
        // Made as the backoff is scheduled (`next_delay`), before the backoff first reads the
        // switch (see `Drain::notified`); gone when it ends, so that an attempt's time limit,
        // which shares the timer, is not in the provider's list.
        #[pin]
        drained: Option<Notified<'static>>,
        // When the running retry started, for its duration metric (`retry_started`): a raw
        // TSC reading. Here, in the box every retry has (its backoff's timer), not in the
        // `Ext`, which is inline in every call's future: 8 bytes more there made every
        // `#[resilient]` future 8 bytes larger for the few calls that retry. A first attempt
        // starts with the call (`Ext::started`) and reads nothing here.
        attempt_started: u64,
    }
}

impl Timer {
    /// The backoff's sleep: `true` when `drain()` ended it, `false` when it is over.
    fn backoff(self: Pin<&mut Self>, drain: &Drain, cx: &mut Context<'_>) -> Poll<bool> {
        let mut this = self.project();
        // Before the sleep: a sleep that ends as the drain starts makes no retry either.
        let drained = drain.is_on()
            || this
                .drained
                .as_mut()
                .as_pin_mut()
                .is_some_and(|n| n.poll(cx).is_ready());
        if !drained && this.sleep.poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.drained.set(None);
        Poll::Ready(drained)
    }
}

/// A Tokio sleep of `d`, or `None` if no timer can be made here: no Tokio runtime, or one
/// built without its time driver (`enable_time`). Tokio offers no way to ask the second
/// (tokio-rs/tokio#8361) and its `sleep` panics there, so the panic is caught (making a sleep
/// does nothing else that could panic); the caller goes on without timers and says so in its
/// log. Tokio's panic message is still printed by the panic hook, and under `panic = "abort"`
/// the process aborts, as it would without us. The sleep is not registered until polled.
#[cold]
pub(crate) fn sleep_here(d: Duration) -> Option<Sleep> {
    tokio::runtime::Handle::try_current().ok()?;
    std::panic::catch_unwind(|| tokio::time::sleep(d)).ok()
}

/// Sets the call's timer to fire `d` from now, making it at first use (and never trying again
/// in a call that found it cannot: one caught panic a call at most); `false` without timers.
fn arm(ext: &mut Ext, d: Duration) -> bool {
    if let (Some(t), Some(at)) = (ext.timer.as_mut(), Instant::now().checked_add(d)) {
        t.as_mut().project().sleep.reset(at);
        return true;
    }
    if ext.no_timers {
        return false;
    }
    // A first use, or a deadline past the end of time, which `sleep` itself copes with.
    match sleep_here(d) {
        Some(sleep) => {
            ext.timer = Some(Box::pin(Timer {
                sleep,
                drained: None,
                attempt_started: 0,
            }));
            true
        }
        None => {
            ext.no_timers = true;
            false
        }
    }
}

/// What follows an attempt.
#[doc(hidden)]
pub enum Step<R> {
    /// The call is over: this is its result.
    Done(R),
    /// Sleep [`Call::backoff`], then make the next attempt.
    Retry,
}

/// One logical call in progress.
///
/// Kept small, because it lives across the attempt's `.await` in the caller's future: a plain
/// call (no recorder, no timeouts, breaker on) makes six stores (52 bytes) to start and never
/// touches [`Ext`].
#[doc(hidden)]
pub struct Call {
    /// The call's provider (`current.p`) and attempt state, which `current_call()` reads.
    current: Current,
    /// The breaker's ticket for the attempt in flight ([`NO_TICKET`] between attempts); a
    /// plain `u64`, so no drop glue for it.
    ticket: u64,
    /// What only some calls need: made at the start when metrics, timeouts or the off switch
    /// are in play, otherwise at the first failure. `None` costs one store. Dropped by hand
    /// in `Call::drop`, behind one comparison: left to the compiler, dropping it was an
    /// out-of-line call on every call.
    ext: ManuallyDrop<Option<Ext>>,
}

/// The parts of a [`Call`] off the plain path.
struct Ext {
    metrics: Option<&'static SiteMetrics>,
    /// When the call started, for its duration metric: a raw TSC reading (see `tsc`), taken
    /// whenever `metrics` is set. Also its first attempt's start (no reading of its own); a
    /// retry's is in the call's timer (`Timer::attempt_started`), which every retry has.
    started: u64,
    deadline: Option<Instant>,
    /// The call's one timer: each attempt's time limit, then each backoff sleep (they never
    /// overlap), made once and reset.
    timer: Option<Pin<Box<Timer>>>,
    /// What the running attempt's time limit ends it with; `None` when it has no limit.
    timeout: Option<ResilienceError>,
    /// The last backoff delay (decorrelated jitter grows from it).
    delay: Duration,
    /// No timer can be made where this call runs (see [`sleep_here`]).
    no_timers: bool,
    /// The attempt that failed before the backoff in progress, for the call's end should the
    /// deadline pass during it: its result label, whether its class was throttled (else
    /// transient: nothing else is retried; a timed-out attempt's class is its error's, which
    /// the method's `Classify` may call throttled), and whether the breaker counted it. Bytes
    /// beside `no_timers`, so they fit where the struct had padding.
    retried: AttemptResult,
    retried_throttled: bool,
    retried_counted: bool,
    /// A retry-budget token was taken for a retry that has not started: given back if the
    /// call ends before it does (refused after its backoff, or cancelled in it), since only
    /// retries that reach the provider may spend the budget.
    token_held: bool,
    /// The budget's fill that token came from (`Budget::withdraw`): one taken before a
    /// `reset()` filled the budget is not given back after it. 16 bits, which fit where the
    /// struct had padding (the call's future keeps its size): 65,536 resets during one
    /// backoff would be needed to mistake one fill for another.
    token_fills: u16,
    /// The call's outcome was recorded: dropped without one, it was abandoned (cancelled, or
    /// ended by a panic), which the metrics count apart.
    recorded: bool,
}

impl Ext {
    fn new(metrics: Option<&'static SiteMetrics>) -> Self {
        Ext {
            metrics,
            started: 0,
            deadline: None,
            timer: None,
            timeout: None,
            delay: Duration::ZERO,
            no_timers: false,
            retried: AttemptResult::Transient,
            retried_throttled: false,
            retried_counted: false,
            token_held: false,
            token_fills: 0,
            recorded: false,
        }
    }
}

impl Drop for Call {
    #[inline(always)]
    fn drop(&mut self) {
        // A call dropped mid-attempt (cancelled) gives back its half-open probe slot; for any
        // other ticket this is one bit test.
        self.current.p.breaker.release(self.ticket);
        if self.ext.is_some() {
            crate::cold_path();
            // What the call was at, by value: handing the cold path `&self.current` cost every
            // call's drop an instruction, and a rejection's 4 (`benches/instructions.sh`).
            let at = (
                self.current.site,
                self.current.attempt(),
                self.current.made_key(),
            );
            drop_ext(self.current.p, &mut self.ext, at);
        }
    }
}

#[cold]
#[inline(never)]
fn drop_ext(
    p: &'static ProviderInner,
    ext: &mut Option<Ext>,
    (site, attempt, key): (&'static CallSite, u32, Option<IdempotencyKey>),
) {
    let Some(e) = ext.take() else { return };
    if e.token_held {
        p.budget.refund(e.token_fills);
    }
    if let (Some(m), false) = (e.metrics, e.recorded) {
        m.abandoned();
        if attempt > 0 {
            log_abandoned(p, site, attempt, key, !e.token_held);
        }
    }
}

/// A call that ended with no outcome (its caller dropped it, or a panic), seen where its
/// outcome would have been recorded: with a recorder (a plain call keeps no flag for it, as
/// its hot path writes nothing it does not need). Its last line, so that one followed by its
/// key does not just stop; and, the first time on a provider with neither an attempt nor a
/// total timeout, a warning: its caller's own timeout (a request's, an axum layer's) is what
/// cut an attempt off, so a provider that hangs is never a failure, and its breaker never
/// opens.
#[cold]
#[inline(never)]
fn log_abandoned(
    p: &ProviderInner,
    site: &CallSite,
    n: u32,
    key: Option<IdempotencyKey>,
    in_attempt: bool,
) {
    let (provider, method) = (p.name, site.method);
    // The call's key when one was made (its other lines carry it); none made up for it, which
    // would match nothing.
    let key = key.map(tracing::field::display);
    // Dropped while a panic unwinds: the panic ended it. Otherwise its caller, or a panic
    // caught below it: Tokio drops a task's future after catching its panic.
    let why = if std::thread::panicking() {
        "ended by a panic"
    } else {
        "cancelled by its caller, or a panic"
    };
    if in_attempt {
        tracing::debug!(target: "resilience", provider, method, idempotency_key = key, attempt = n, "[RETRY] Call to {} abandoned during attempt {n}: {why}", method.escape_debug());
    } else {
        tracing::debug!(target: "resilience", provider, method, idempotency_key = key, attempt = n, "[RETRY] Call to {} abandoned in the backoff after attempt {n}: {why}", method.escape_debug());
    }
    // With a total timeout, its deadline cuts a hung attempt off, and that counts. Not after
    // `drain()`: the process is shutting down, and a call it cuts off (a grace period's end,
    // a batch job's runtime dropped as `main` returns) says nothing of a provider that hangs.
    let unbounded = p.config.attempt_timeout.is_none() && p.config.total_timeout.is_none();
    if in_attempt
        && unbounded
        && !std::thread::panicking()
        && !p.drain.is_on()
        && first_hang_warning(p)
    {
        tracing::warn!(target: "resilience", provider, method, "[RETRY] A call to {} on {} ended during an attempt with no outcome (cancelled by its caller, or a panic), and {} has no attempt or total timeout: an attempt that hangs is then no failure, and its breaker never opens. Set {} below your callers' own timeouts (said once for the provider)", method.escape_debug(), provider.escape_debug(), provider.escape_debug(), crate::config::provider_variable(provider, "RETRY_ATTEMPT_TIMEOUT"));
    }
}

/// Whether the warning of [`log_abandoned`] is yet to be said for `p`: once per provider (by
/// its address: a test's isolation makes providers of the same name).
fn first_hang_warning(p: &ProviderInner) -> bool {
    static WARNED: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    let at = std::ptr::from_ref(p) as usize;
    if warned.contains(&at) {
        return false;
    }
    warned.push(at);
    true
}

/// `f` of the attempt (or `execute` closure) this thread is running, when it is one on the
/// provider whose breaker is `breaker`: a call made there is part of that attempt.
fn with_attempt_on<R>(
    breaker: &crate::breaker::Breaker,
    f: impl FnOnce(&Current) -> R,
) -> Option<R> {
    crate::context::with_current(|outer| std::ptr::eq(&outer.p.breaker, breaker).then(|| f(outer)))
        .flatten()
}

/// Whether this thread is running an attempt on the provider whose breaker is `breaker` (see
/// `Breaker::admit_moving`).
pub(crate) fn inside_attempt_on(breaker: &crate::breaker::Breaker) -> bool {
    with_attempt_on(breaker, |_| ()).is_some()
}

/// What a provider's configuration means for each call, worked out once when the provider is
/// created, so starting a call reads one small `Copy` value instead of a dozen settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mode {
    /// Nothing beyond the breaker and the retry loop: not direct, no timeout, no deadline.
    /// Derived from the two below, but stored: testing it is one load where deriving it on
    /// every call costs three instructions more (counted with `benches/instructions.sh`).
    pub(crate) plain: bool,
    /// `RESILIENCE_ENABLED=false`: run the operation once, directly.
    pub(crate) direct: bool,
    /// A per-attempt timeout or a deadline is configured.
    pub(crate) limited: bool,
    /// A deadline is configured (the call needs its start time).
    pub(crate) deadline: bool,
    /// Attempts per call at a retrying site.
    pub(crate) attempts: u32,
}

impl Mode {
    pub(crate) fn of(c: &crate::Config) -> Self {
        let direct = !c.enabled;
        let limited = !direct && (c.attempt_timeout.is_some() || c.total_timeout.is_some());
        Mode {
            plain: !direct && !limited,
            direct,
            limited,
            deadline: !direct && c.total_timeout.is_some(),
            attempts: c.effective_attempts(),
        }
    }
}

/// The resolution of Tokio's timer.
const TIMER_TICK: Duration = Duration::from_millis(1);

enum GiveUp {
    Permanent,
    Exhausted,
    RetryAfterTooLong(Duration),
    Deadline,
    /// The deadline passed during the backoff (see `Call::after_backoff`).
    DeadlinePassed,
    /// The deadline cut the attempt off.
    DeadlineExceeded,
    CircuitOpen,
    Budget,
    NoRuntime,
    /// `drain()`: no retry after a failed attempt.
    Draining,
    /// `drain()` woke the call in its backoff (see `Backoff`).
    DrainedInBackoff,
}

/// What ends a giving-up line "after attempt n/max: …", for the reasons that have one.
struct Tail<'a>(&'a GiveUp, &'static str);

impl std::fmt::Display for Tail<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let provider = self.1;
        match self.0 {
            GiveUp::RetryAfterTooLong(ra) => {
                write!(f, "Retry-After {} is above the maximum delay", Seconds(*ra))
            }
            GiveUp::Deadline => f.write_str("the next retry would pass the call's deadline"),
            GiveUp::DeadlineExceeded => f.write_str("the call's deadline passed during it"),
            GiveUp::DeadlinePassed => f.write_str("the call's deadline passed during the backoff"),
            GiveUp::CircuitOpen => write!(
                f,
                "the breaker for {} rejects its retry",
                provider.escape_debug()
            ),
            GiveUp::Budget => write!(f, "retry budget for {} exhausted", provider.escape_debug()),
            GiveUp::NoRuntime => f.write_str("retries need a Tokio runtime with its time driver"),
            GiveUp::Draining => f.write_str("the process is draining: no more retries"),
            GiveUp::DrainedInBackoff => {
                f.write_str("the process began draining during the backoff: no more retries")
            }
            // Lines of their own (`log_give_up`).
            GiveUp::Permanent | GiveUp::Exhausted => Ok(()),
        }
    }
}

impl GiveUp {
    /// The `reason` field of the giving-up line.
    fn as_str(&self) -> &'static str {
        match self {
            GiveUp::Permanent => "permanent",
            GiveUp::Exhausted => "attempts_exhausted",
            GiveUp::RetryAfterTooLong(_) => "retry_after_too_long",
            GiveUp::Deadline => "deadline",
            GiveUp::DeadlinePassed => "deadline_passed",
            GiveUp::DeadlineExceeded => "deadline_exceeded",
            GiveUp::CircuitOpen => "circuit_open",
            GiveUp::Budget => "retry_budget_exhausted",
            GiveUp::NoRuntime => "no_timers",
            GiveUp::Draining | GiveUp::DrainedInBackoff => "draining",
        }
    }
}

impl Call {
    /// Makes a call's state, plain (no `Ext`): the site's provider and six stores, no branch
    /// but the site's. Always inlined, so the struct is built in place in the caller's future.
    /// [`start_plain`](Self::start_plain) or [`start_ext`](Self::start_ext) then starts it.
    #[inline(always)]
    pub fn new(site: &'static CallSite) -> Self {
        Call {
            current: Current::new(site, site.inner()),
            ticket: NO_TICKET,
            ext: ManuallyDrop::new(None),
        }
    }

    /// Whether the call is plain: no recorder, no time limits, not direct (one load). The
    /// macro starts it by [`start_plain`](Self::start_plain) if so, else by
    /// [`start_ext`](Self::start_ext): two ways in, each checked for a refusal on its own, so
    /// that the plain one's answer is not merged with the other's before it is looked at (as
    /// one `start`, the optimiser kept the merged answer in a register and compared it, four
    /// instructions of each call, counted with callgrind).
    #[inline(always)]
    pub fn plain(&self) -> bool {
        // `mode.plain` and no recorder, in one load (see `ProviderInner::plain`).
        self.current.p.plain.load(Ordering::Relaxed)
    }

    /// Starts a plain call (see [`plain`](Self::plain)) and asks the breaker for its first
    /// attempt; admitted, it tops up the retry budget if it is not full. No clock read, no
    /// thread-local. What `new` wrote is known here, and nothing of it is read back.
    ///
    /// # Errors
    ///
    /// On rejection, the method's own error (from `ResilienceError::CircuitOpen`).
    #[inline(always)]
    pub fn start_plain<R>(&mut self, hooks: &Hooks<R>) -> Result<(), R> {
        // The budget's deposit comes with the admission (`admitted_first`): a call the
        // breaker refuses sends nothing, so it earns no retry.
        self.permit_plain(hooks)
    }

    /// Starts a call that is not plain (its `Ext`: metrics, time limits, the off switch) and
    /// asks for its first attempt.
    ///
    /// # Errors
    ///
    /// On rejection, the method's own error (from `ResilienceError::CircuitOpen`).
    #[inline(always)]
    pub fn start_ext<R>(&mut self, hooks: &Hooks<R>) -> Result<(), R> {
        // Unlikely only for the layout: a call with a recorder or time limits, tens of
        // nanoseconds long, pays one taken jump here so the plain call pays none.
        crate::cold_path();
        self.make_ext();
        self.permit_ext(hooks)?;
        // Only a call the breaker admitted earns its share of a retry (see `admitted_first`).
        if !self.current.p.mode.direct {
            self.current.p.budget.on_call();
        }
        Ok(())
    }

    /// Starts a call that records metrics, has time limits or runs directly: its `Ext`.
    #[inline(never)]
    fn make_ext(&mut self) {
        let (site, p) = (self.current.site, self.current.p);
        let mode = p.mode;
        let metrics = if mode.direct { None } else { site.metrics() };
        let mut ext = Ext::new(metrics);
        if metrics.is_some() {
            // Calibrated when the recorder was switched on (`use_installed_recorder`), so this
            // waits for nothing.
            // The first attempt's start too: one reading for both.
            ext.started = tsc::calibrated().raw();
        }
        if mode.deadline {
            // Tokio's clock, not the TSC: a paused test clock must drive deadlines.
            ext.deadline = p
                .config
                .total_timeout
                .and_then(|t| Instant::now().checked_add(t));
        }
        // Over the `None` that `new` wrote: nothing to drop.
        self.ext = ManuallyDrop::new(Some(ext));
    }

    fn ext(&mut self) -> &mut Ext {
        self.ext.get_or_insert_with(|| Ext::new(None))
    }

    /// Asks the breaker for the next attempt and, admitted, begins it: counts it and logs the
    /// first (a retry's line came with its backoff); its token and time limit wait for
    /// [`attempt`](Self::attempt), after the argument copies.
    /// The first attempt's is the call's start ([`start_plain`](Self::start_plain) or
    /// [`start_ext`](Self::start_ext)).
    ///
    /// # Errors
    ///
    /// On rejection, the method's own error (from `ResilienceError::CircuitOpen`).
    #[inline(always)]
    pub fn permit<R>(&mut self, hooks: &Hooks<R>) -> Result<(), R> {
        // A retry: it has an `Ext`, made for its backoff timer (see `permit_plain`).
        self.permit_ext(hooks)
    }

    /// The first permit of a call without an `Ext` ([`start_plain`](Self::start_plain)).
    #[inline(always)]
    fn permit_plain<R>(&mut self, hooks: &Hooks<R>) -> Result<(), R> {
        // A call without an `Ext` is not direct (a direct call starts with one) and is at its
        // first attempt: a retry has one, made for its backoff timer (`next_delay`), and only
        // the call's end takes it. So no test of the direct switch, and the attempt number
        // written, not read back and counted.
        match self.current.p.breaker.admit_closed() {
            Ok(ticket) => {
                self.admitted_first(ticket);
                Ok(())
            }
            // Apart from the closed case (see `admit_closed`).
            Err(w) => {
                crate::cold_path();
                match self.current.p.breaker.admit_not_closed(w) {
                    Ok(ticket) => {
                        self.admitted_first(ticket);
                        Ok(())
                    }
                    // The conversion stays inline, where the optimiser sees the hook; the
                    // logging and metrics do not.
                    Err(retry_in) => {
                        // Out of line only when there is something to log: a global level
                        // check first, as `tracing::debug!` itself would make.
                        if tracing::level_enabled!(tracing::Level::DEBUG) {
                            self.rejected(retry_in);
                        }
                        Err((hooks.reject)(self.current.p.breaker.rejection(retry_in)))
                    }
                }
            }
        }
    }

    /// A plain call's first attempt, admitted with `ticket`: counted, and its debug line.
    #[inline(always)]
    fn admitted_first(&mut self, ticket: u64) {
        // Here, not before the breaker is asked: a refused call earns no retry. Were it to,
        // an open breaker's refusals (thousands a second, each as cheap as the breaker can
        // make it) would refill the bucket, up to its capacity, for the moment it closes:
        // retries earned by calls that sent nothing. (The clock's floor refills it too, to
        // the same capacity, over an opening longer than capacity / floor: 10 s at the
        // defaults.)
        self.current.p.budget.on_call();
        self.ticket = ticket;
        self.current.first_attempt();
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            crate::cold_path();
            self.log_first_attempt();
        }
    }

    /// The permit of a call with an `Ext`: a retry's, or the first of a call with a recorder,
    /// time limits or the off switch.
    #[inline(always)]
    fn permit_ext<R>(&mut self, hooks: &Hooks<R>) -> Result<(), R> {
        // Not the configuration's breaker switch: a breaker switched off there still honours
        // `force_open()`; in its `Disabled` state it admits at the cost of one load.
        if self.direct() {
            self.ticket = UNTRACKED;
        } else {
            match self.current.p.breaker.admit() {
                Ok(ticket) => self.ticket = ticket,
                Err(retry_in) => {
                    // The method's error first: its `From<ResilienceError>` is the user's
                    // code, and a call it ends by a panic has no outcome (it is abandoned,
                    // in the call's drop), so nothing may be recorded before it has run.
                    let rejected = (hooks.reject)(self.current.p.breaker.rejection(retry_in));
                    // Its metrics, and the debug line if it is on.
                    self.rejected(retry_in);
                    return Err(rejected);
                }
            }
        }
        self.begin_attempt_ext();
        Ok(())
    }

    /// When this call runs inside an attempt on its own provider: tells that attempt that
    /// this call ended with a failure the breaker counted. Only at the end of the call (a
    /// failed attempt that is retried says nothing), so no success, which may end on the
    /// inline path and tell no one, can leave the flag behind.
    #[cold]
    #[inline(never)]
    fn tell_outer(&self) {
        with_attempt_on(&self.current.p.breaker, Current::set_nested_failed);
    }

    #[cold]
    #[inline(never)]
    fn rejected(&mut self, retry_in: Option<Duration>) {
        let (provider, method) = (self.current.p.name, self.current.site.method);
        // Behind the same global level check as on the way here without an `Ext`: a program
        // that reads tracing through its `log` feature, with no subscriber, gets this line
        // from no call, as the README says (it got it from calls with a recorder or a time
        // limit, which come here for their metrics).
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            // The state that refused the call: a time to the next probe comes only from an
            // open breaker; without one, forced open or half-open, told apart by a load made
            // now (only for the line). Should a `reset()` land in between, a forced-open
            // refusal is named half-open, and a `force_open()` names a half-open one forced
            // open; a round that moves on in between does not change the answer.
            let state = match (retry_in.is_some(), self.current.p.breaker.stored_state()) {
                (true, _) => CircuitState::Open,
                (false, CircuitState::ForcedOpen) => CircuitState::ForcedOpen,
                (false, _) => CircuitState::HalfOpen,
            }
            .as_str();
            tracing::debug!(target: "resilience", provider, method, idempotency_key = %self.current.key(), attempt = self.current.attempt() + 1, state, retry_in_ms = retry_in.map(telemetry::millis), "[CIRCUIT] Call to {method} rejected: breaker for {provider} is {state}", provider = provider.escape_debug(), method = method.escape_debug());
        }
        if self.current.attempt() > 0 {
            // A retry refused after its backoff: the call gives up, and says so as when the
            // breaker's refusal is seen before the backoff.
            let (class, result, _) = self.retried();
            self.log_give_up(&GiveUp::CircuitOpen, class, result, None);
        }
        if self.ext.is_some() {
            let outcome = if self.current.attempt() == 0 {
                CallOutcome::Rejected
            } else {
                CallOutcome::Failure
            };
            self.record_call(outcome, None);
        }
    }

    /// The attempt that failed before the backoff in progress: its class (for the log, its
    /// kind: `Retry-After` is not logged), its result, and whether the breaker counted it.
    fn retried(&self) -> (ErrorClass, AttemptResult, bool) {
        let (result, throttled, counted) = self
            .ext
            .as_ref()
            .map_or((AttemptResult::Transient, false, false), |e| {
                (e.retried, e.retried_throttled, e.retried_counted)
            });
        let class = if throttled {
            ErrorClass::Throttled { retry_after: None }
        } else {
            ErrorClass::Transient
        };
        (class, result, counted)
    }

    /// Wraps the next attempt's future, which `make` builds in place: a future passed by value
    /// would be copied, whole, into the wrapper (for an HTTP call's body, two copies of over
    /// 600 bytes, counted with callgrind).
    #[inline(always)]
    pub fn attempt<F: Future>(&mut self, make: impl FnOnce() -> F) -> Attempt<'_, F> {
        self.after_copies();
        Attempt {
            fut: make(),
            call: self,
        }
    }

    /// [`attempt`](Self::attempt) for [`CallSite::execute`], whose closure is the caller's own
    /// code: it runs with [`current_call`](crate::current_call) set, as its future does, so a
    /// key read before the `async` block is the call's. Not the macro's path: the closure it
    /// writes only builds the body's future, so the thread-local is not set twice there.
    /// The closure is where an `execute` caller copies what each attempt takes, as the
    /// macro's argument copies are: it runs before the retry's token is spent and the
    /// attempt's time limit starts (see [`after_copies`](Self::after_copies)).
    #[inline(always)]
    fn attempt_op<F: Future>(&mut self, make: impl FnOnce() -> F) -> Attempt<'_, F> {
        Attempt {
            fut: {
                let fut = {
                    let _enter = Enter::new(&self.current);
                    make()
                };
                self.after_copies();
                fut
            },
            call: self,
        }
    }

    /// [`permit`](Self::permit)'s beginning of an attempt, for a call with an `Ext`: counts
    /// it and logs the first (a retry's line came with its backoff).
    #[inline(always)]
    fn begin_attempt_ext(&mut self) {
        if self.current.next_attempt() == 1 && tracing::level_enabled!(tracing::Level::DEBUG) {
            crate::cold_path();
            self.log_first_attempt();
        }
        // The retry's token and the time limit: in `attempt`, after the argument copies.
    }

    /// Begins what waits for the argument copies, in [`attempt`](Self::attempt), not in the
    /// permit: a copy is the caller's time, not the provider's, and a retry whose copy
    /// panicked never spent its token. One test of the `Ext` on the plain path.
    #[inline(always)]
    fn after_copies(&mut self) {
        if let Some(ext) = &*self.ext
            && (ext.token_held || self.current.p.mode.limited)
        {
            crate::cold_path();
            self.arm_attempt();
        }
    }

    /// What begins an attempt of a call with an `Ext` once its arguments are copied: a retry
    /// spends its budget token (a copy that panicked gives it back), and the attempt's time
    /// limit starts (the copies are not the provider's time).
    #[cold]
    #[inline(never)]
    fn arm_attempt(&mut self) {
        // `token_held`: a retry, made now.
        self.retry_started();
        if let Some(ext) = &mut *self.ext
            && self.current.p.mode.limited
        {
            Call::arm_limit(&self.current, ext);
        }
    }

    /// The first attempt's debug line, out of line: inline, the macro's callsite check and
    /// its fields sat between the level check and the attempt, in the hot path's way.
    #[cold]
    #[inline(never)]
    fn log_first_attempt(&self) {
        tracing::debug!(target: "resilience", provider = self.current.p.name, method = self.current.site.method, idempotency_key = %self.current.key(), attempt = 1, max_attempts = self.current.max_attempts(), "[RETRY] Attempt 1/{} for {}", self.current.max_attempts(), self.current.site.method.escape_debug());
    }

    /// A retry passed its backoff and the breaker: it is made, so its budget token is spent
    /// for good (one refused after its backoff gives it back, in the call's drop), and its
    /// duration starts now, where its time limit does (the backoff and the argument copies
    /// are not the provider's time). Also reached by the first attempt of a call with a time
    /// limit, whose start is the call's.
    #[cold]
    #[inline(never)]
    fn retry_started(&mut self) {
        let retry = self.current.attempt() > 1;
        if let Some(ext) = &mut *self.ext {
            ext.token_held = false;
            // A retry always has its timer: its backoff's (`next_delay`).
            if retry
                && ext.metrics.is_some()
                && let Some(timer) = ext.timer.as_mut()
            {
                *timer.as_mut().project().attempt_started = tsc::calibrated().raw();
            }
        }
    }

    /// An attempt's result and duration, and for one after the first the retry it was:
    /// counted together, so that retries are the attempts after each call's first (a retry
    /// refused after its backoff is none; one cut off by its caller counts in neither, as its
    /// result is unknown). Returns the TSC reading that ended it, for the call's duration when
    /// the call ends with it (one reading for both); `None` without metrics,
    /// which reads no clock. Inlined: out of line, a success paid for a second frame (now
    /// a retried one: a first-attempt success takes `first_attempt_succeeded`).
    #[inline(always)]
    fn attempt_done(&self, result: AttemptResult) -> Option<u64> {
        let Some(Ext {
            metrics: Some(m),
            started,
            timer,
            ..
        }) = &*self.ext
        else {
            return None;
        };
        let retry = self.current.attempt() > 1;
        // A retry's start is in its timer (`retry_started`), a first attempt's is the call's.
        let attempt_started = match timer {
            Some(timer) if retry => timer.attempt_started,
            _ => *started,
        };
        let tsc = tsc::calibrated();
        let ended = tsc.raw();
        m.attempt(result, seconds(tsc.between(attempt_started, ended)));
        if retry {
            m.retry();
        }
        Some(ended)
    }

    /// A call's first attempt succeeded: the call's metrics and its attempt's, recorded
    /// together from one TSC reading, as the attempt's span is the call's (see
    /// `SiteMetrics::first_attempt_succeeded`: one duration sample for both under our
    /// store). Nothing without metrics.
    #[inline(always)]
    fn first_attempt_succeeded(&mut self) {
        if let Some(Ext {
            metrics: Some(m),
            started,
            recorded,
            ..
        }) = &mut *self.ext
        {
            *recorded = true;
            let tsc = tsc::calibrated();
            m.first_attempt_succeeded(tsc.between(*started, tsc.raw()));
        }
    }

    /// Sets the time this attempt may take: the per-attempt timeout, cut to what is left of
    /// the deadline.
    #[cold]
    #[inline(never)]
    fn arm_limit(current: &Current, ext: &mut Ext) {
        let p = current.p;
        let c = &p.config;
        let provider = p.name;
        let per_attempt = c.attempt_timeout.map(|t| {
            (
                t,
                ResilienceError::AttemptTimeout {
                    provider,
                    timeout: t,
                },
            )
        });
        let chosen = match ext.deadline {
            None => per_attempt,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let by_deadline = (
                    left,
                    ResilienceError::DeadlineExceeded {
                        provider,
                        deadline: c.total_timeout.unwrap_or_default(),
                    },
                );
                Some(match per_attempt {
                    Some(pa) if pa.0 <= left => pa,
                    _ => by_deadline,
                })
            }
        };
        ext.timeout = chosen.and_then(|(d, error)| {
            if arm(ext, d) {
                return Some(error);
            }
            tracing::error!(target: "resilience", provider = p.name, method = current.site.method, idempotency_key = %current.key(), "[RETRY] Timeouts need a Tokio runtime with its time driver; this attempt runs without one");
            None
        });
    }

    /// Records an attempt's outcome, on the hot path: `Ok` with the call's result when the attempt
    /// is a success on a closed breaker with no failures to reset (one load, the failure
    /// count, and nothing written; the ticket stays, as a closed ticket needs no release),
    /// its metrics recorded if it has any: the call is over. Otherwise `Err` with the
    /// attempt's result, for [`finish_slow`](Self::finish_slow), which decides: the call's
    /// result, or a retry after [`backoff`](Self::backoff). Apart from it, so that
    /// the macro ends a clean success where it finds it, not through the `Step` it shares with
    /// the out-of-line path (which the optimiser merged, and tested again: three instructions
    /// of each call). The macro leaves its loop there by `break`, its one way out that is not a
    /// `return`, so the call's drop that follows is one of its own, where what `clean` tested
    /// is known (the `Ext`'s absence: two instructions more; see the store below).
    #[inline(always)]
    pub fn clean<R>(
        &mut self,
        hooks: &Hooks<R>,
        out: Result<R, ResilienceError>,
    ) -> Result<R, Result<R, ResilienceError>> {
        match out {
            Ok(out)
                if (hooks.class)(&out).is_none() && self.current.p.breaker.clean(self.ticket) =>
            {
                if self.ext.is_some() {
                    // As in `new`: the recorder's call takes the jump.
                    crate::cold_path();
                    self.succeeded();
                    // Which took it: said here as well, where the optimiser sees it, so that
                    // the call's drop that follows a clean success tests nothing again.
                    self.ext = ManuallyDrop::new(None);
                }
                Ok(out)
            }
            out => {
                crate::cold_path();
                Err(out)
            }
        }
    }

    /// The metrics of a successful call, which is over. A success that [`clean`](Self::clean)
    /// finds (with a recorder, the production case: every call) comes here directly,
    /// not through `finish_slow`, whose verdict, breaker report and ticket handling it does
    /// not need (44 instructions of each call, counted with callgrind); `finish_slow` comes
    /// here after reporting the others.
    #[inline(never)]
    fn succeeded(&mut self) {
        // The attempt number, not a comparison of readings: exact whatever the clock's
        // resolution, and a plain load of a word the call keeps anyway.
        if self.current.attempt() == 1 {
            self.first_attempt_succeeded();
        } else {
            let ended = self.attempt_done(AttemptResult::Success);
            self.record_call(CallOutcome::Success, ended);
        }
        // The call is over. Taken here, where it is cheap (of all its fields only the timer
        // owns anything), the `Ext` leaves the drop nothing to call out for (27 instructions,
        // counted with callgrind).
        if let Some(Ext {
            timer: Some(timer), ..
        }) = self.ext.take()
        {
            drop(timer);
        }
    }

    /// Everything but a clean success (see [`clean`](Self::clean)).
    #[doc(hidden)]
    #[inline(never)]
    pub fn finish_slow<R>(&mut self, hooks: &Hooks<R>, out: Result<R, ResilienceError>) -> Step<R> {
        // An attempt cut off by its time limit or the call's deadline: its own words, for the
        // log, before the method's error type (which may log no text) takes it in.
        // The call's deadline, not the attempt's own limit: no retry can follow, whatever the
        // method's `Classify` calls the error.
        let by_deadline = matches!(&out, Err(ResilienceError::DeadlineExceeded { .. }));
        let (out, cut_off) = match out {
            Ok(out) => (out, None),
            Err(e) => {
                let why = e.to_string();
                ((hooks.reject)(e), Some(why))
            }
        };
        let timed_out = cut_off.is_some();
        if self.direct() {
            self.ticket = NO_TICKET;
            return Step::Done(out);
        }
        let class = (hooks.class)(&out);
        // Taken only now that the user's code (the error conversion, `Classify`) has run: if
        // that panics, the call's drop gives a probe slot back.
        let ticket = std::mem::replace(&mut self.ticket, NO_TICKET);
        // A timed-out attempt is a breaker failure whatever the caller's `Classify` says of
        // the timeout error: a provider that hangs is exactly what the breaker must catch.
        let verdict = if timed_out {
            Verdict::Failure
        } else {
            Verdict::of(class)
        };
        // A failure that a call nested in this attempt, on this provider, ended with and the
        // breaker counted (its error, handed up) is one provider failure, not two.
        let counted_below = self.current.take_nested_failed() && verdict == Verdict::Failure;
        if counted_below {
            self.current.p.breaker.release(ticket);
        } else {
            self.current.p.breaker.record(ticket, verdict);
        }
        let Some(class) = class else {
            self.succeeded();
            return Step::Done(out);
        };
        let step = self.failed(hooks, out, class, cut_off, by_deadline);
        // Ending with a counted failure, inside an attempt on this provider: that attempt,
        // which fails with it as a rule, must not count it again (nor one above it).
        let counted =
            verdict == Verdict::Failure && (counted_below || self.current.p.breaker.tracks(ticket));
        match step {
            Step::Done(_) if counted => self.tell_outer(),
            // Said when the call ends, should that be in the backoff (`deadline_in_backoff`).
            Step::Retry => self.ext().retried_counted = counted,
            Step::Done(_) => {}
        }
        step
    }

    /// [`finish_slow`](Self::finish_slow) for a `retry = false` site, which allows one
    /// attempt, so `failed` can only give up: always the result.
    #[inline(always)]
    pub fn finish_once_slow<R>(&mut self, hooks: &Hooks<R>, out: Result<R, ResilienceError>) -> R {
        match self.finish_slow(hooks, out) {
            Step::Done(out) => out,
            Step::Retry => unreachable!("a retry = false call asked for a retry"),
        }
    }

    /// The backoff sleep before the next attempt, on the call's timer; the method's error if
    /// the call's deadline passed during it.
    pub fn backoff<'a, R>(&'a mut self, hooks: &'a Hooks<R>) -> Backoff<'a, R> {
        Backoff { call: self, hooks }
    }

    /// After the backoff sleep: no retry starts with less than a timer tick left before the
    /// call's deadline. It would be cut off at once with `DeadlineExceeded`, after its request
    /// went out, and counted as a breaker failure though the provider was given no time.
    /// `next_delay` schedules no sleep that ends within two ticks of the deadline, so this is
    /// a timer that woke late (a busy runtime); the call ends here, with `DeadlineExceeded`,
    /// and no attempt is made or counted.
    fn after_backoff<R>(&mut self, hooks: &Hooks<R>) -> Result<(), R> {
        match self.ext.as_ref().and_then(|e| e.deadline) {
            // Less than a tick left is no time either: the attempt's own limit could not fire
            // before the deadline.
            Some(deadline)
                if Instant::now()
                    .checked_add(TIMER_TICK)
                    .is_none_or(|at| at > deadline) =>
            {
                Err(self.deadline_in_backoff(hooks))
            }
            _ => Ok(()),
        }
    }

    #[cold]
    #[inline(never)]
    fn deadline_in_backoff<R>(&mut self, hooks: &Hooks<R>) -> R {
        let error = ResilienceError::DeadlineExceeded {
            provider: self.current.p.name,
            deadline: self.current.p.config.total_timeout.unwrap_or_default(),
        };
        self.ended_in_backoff(hooks, &GiveUp::DeadlinePassed, error)
    }

    /// `drain()` woke the call in its backoff: it ends there, with `Draining` (the failed
    /// attempt's error was not kept across the sleep: see the macro's loop). Its budget token
    /// is given back in the call's drop, as for any retry not made.
    #[cold]
    #[inline(never)]
    fn drained_in_backoff<R>(&mut self, hooks: &Hooks<R>) -> R {
        // What was left of the backoff (which ends no sooner than the provider's
        // `Retry-After` allowed), for a caller that hands the work back to its own client.
        let retry_in = self
            .ext
            .as_ref()
            .and_then(|e| e.timer.as_ref())
            .map(|t| t.sleep.deadline().saturating_duration_since(Instant::now()));
        let error = ResilienceError::Draining {
            provider: self.current.p.name,
            retry_in,
        };
        self.ended_in_backoff(hooks, &GiveUp::DrainedInBackoff, error)
    }

    /// A call that ends in its backoff, with `error`, for `why`: a failed call, as one that
    /// gives up after its attempt is.
    fn ended_in_backoff<R>(&mut self, hooks: &Hooks<R>, why: &GiveUp, error: ResilienceError) -> R {
        // The method's error first, as for a rejection (`permit_ext`): a conversion that
        // panics leaves the call abandoned, with no outcome recorded and no line for its end.
        let out = (hooks.reject)(error);
        let (class, result, counted) = self.retried();
        // Its error text was on the `[RETRY] Attempt` line before.
        self.log_give_up(why, class, result, None);
        self.record_call(CallOutcome::Failure, None);
        if counted {
            self.tell_outer();
        }
        out
    }

    /// `RESILIENCE_ENABLED=false`: run once, directly.
    #[inline(always)]
    fn direct(&self) -> bool {
        self.current.p.mode.direct
    }

    #[cold]
    fn failed<R>(
        &mut self,
        hooks: &Hooks<R>,
        out: R,
        class: ErrorClass,
        cut_off: Option<String>,
        by_deadline: bool,
    ) -> Step<R> {
        // The metric's label, and the log lines' `result` field, so that the two can be
        // matched: a timed-out attempt's class is transient, its result `timeout`.
        let result = match class {
            _ if cut_off.is_some() => AttemptResult::Timeout,
            ErrorClass::Transient => AttemptResult::Transient,
            ErrorClass::Throttled { .. } => AttemptResult::Throttled,
            ErrorClass::Permanent => AttemptResult::Permanent,
        };
        let ended = self.attempt_done(result);
        // An attempt cut off by a time limit says so, whatever the error type logs (its own
        // `From<ResilienceError>` made the value, and by default it logs no text). Made
        // whether or not a subscriber takes the line: `tracing::enabled!` asks with a hint's
        // metadata, not the line's, and a filter on anything but target and level (events
        // only, a field), or tracing's `log` feature with no subscriber, writes a line it
        // said no to, which then had no text (tried, from a review, and undone).
        let summary = |out: &R| (hooks.summary)(out).or_else(|| cut_off.clone());
        // Cut off by the call's deadline: said as such, not as a caller's error (its class is
        // permanent by default).
        let next = if by_deadline {
            Err(GiveUp::DeadlineExceeded)
        } else {
            self.next_delay(class, (hooks.retry_after)(&out))
        };
        match next {
            Ok(delay) => {
                let (provider, method) = (self.current.p.name, self.current.site.method);
                let (next, max) = (self.current.attempt() + 1, self.current.max_attempts());
                let error = summary(&out);
                // The text shows the field's whole milliseconds, so the two never disagree
                // (`{:.3}` would round 0.9509 s up to 0.951 beside `delay_ms=950`).
                let ms = telemetry::millis(delay);
                tracing::info!(
                    target: "resilience", provider, method, idempotency_key = %self.current.key(), attempt = next, max_attempts = max,
                    delay_ms = ms, class = class.as_str(), result = result.as_str(), error = error.as_deref(),
                    "[RETRY] Attempt {next}/{max} for {method} in {}.{:03}s after a {} error",
                    ms / 1000, ms % 1000, class.as_str(), method = method.escape_debug(),
                );
                // `next_delay` armed the call's timer with this delay, and took the budget
                // token (`token_held`); the retry is counted with its attempt's result.
                let ext = self.ext();
                ext.delay = delay;
                ext.retried = result;
                ext.retried_throttled = matches!(class, ErrorClass::Throttled { .. });
                Step::Retry
            }
            Err(why) => {
                self.log_give_up(&why, class, result, summary(&out));
                self.record_call(CallOutcome::Failure, ended);
                Step::Done(out)
            }
        }
    }

    fn next_delay(
        &mut self,
        class: ErrorClass,
        retry_after: Option<Duration>,
    ) -> Result<Duration, GiveUp> {
        let c = &self.current.p.config;
        if class == ErrorClass::Permanent {
            return Err(GiveUp::Permanent);
        }
        if self.current.attempt() >= self.current.max_attempts() {
            return Err(GiveUp::Exhausted);
        }
        // Before anything is armed or taken: a drained call gives up with the error in hand,
        // holding no timer and no budget token. The only read of the switch on a call's way
        // but its backoff's (see `Backoff`).
        if self.current.p.drain.is_on() {
            return Err(GiveUp::Draining);
        }
        let (previous, deadline) = self
            .ext
            .as_ref()
            .map_or((Duration::ZERO, None), |e| (e.delay, e.deadline));
        let rng = &mut rand::rng();
        let mut delay = backoff::delay(c, self.current.attempt() - 1, previous, rng);
        let retry_after = match class {
            ErrorClass::Throttled { retry_after: r } => r.max(retry_after),
            _ => retry_after,
        };
        let now = Instant::now();
        if let Some(ra) = retry_after {
            if ra > c.max_delay {
                return Err(GiveUp::RetryAfterTooLong(ra));
            }
            // The deadline's room: the wait must end two timer ticks before it (see below).
            let room = deadline.map(|d| {
                d.saturating_duration_since(now)
                    .saturating_sub(2 * TIMER_TICK)
            });
            delay = backoff::with_retry_after(c, ra, delay, room, rng);
        }
        // Tokio's timer fires on whole-millisecond ticks, rounding up: a sleep that ends less
        // than two ticks before the deadline may wake less than one before it, and the retry
        // would start with no time (see `after_backoff`).
        if deadline.is_some_and(|d| {
            now.checked_add(delay + 2 * TIMER_TICK)
                .is_none_or(|at| at > d)
        }) {
            return Err(GiveUp::Deadline);
        }
        // Asked whether or not the breaker is switched off in the configuration: such a
        // breaker still honours `force_open()` (see `permit`), and `Disabled` rejects nothing.
        if self.current.p.breaker.rejects_after(delay) {
            return Err(GiveUp::CircuitOpen);
        }
        // The backoff's timer, set now: without one (no runtime with timers) there is no
        // retry, and the budget is not spent.
        if !arm(self.ext(), delay) {
            return Err(GiveUp::NoRuntime);
        }
        let Some(fills) = self.current.p.budget.withdraw(now) else {
            telemetry::budget_exhausted(self.current.p.name);
            return Err(GiveUp::Budget);
        };
        // Marked at once: user code runs before the retry is scheduled (`log_summary`, the
        // log's subscriber), and a panic there must still give the token back.
        let drain = &self.current.p.drain;
        let ext = self.ext();
        ext.token_held = true;
        ext.token_fills = fills;
        if let Some(timer) = &mut ext.timer {
            timer.as_mut().project().drained.set(Some(drain.notified()));
        }
        Ok(delay)
    }

    fn log_give_up(
        &self,
        why: &GiveUp,
        class: ErrorClass,
        result: AttemptResult,
        error: Option<String>,
    ) {
        let (provider, method) = (self.current.p.name, self.current.site.method);
        let (n, max) = (self.current.attempt(), self.current.max_attempts());
        let cls = class.as_str();
        let result = result.as_str();
        let error = error.as_deref();
        // Why it gave up, as a field: alerting on logs should not parse the message.
        let reason = why.as_str();
        match why {
            GiveUp::Permanent => tracing::warn!(
                target: "resilience", provider, method, idempotency_key = %self.current.key(), attempt = n, max_attempts = max, class = cls, result, error, reason,
                "[RETRY] Non-retryable error for {method} on attempt {n}/{max}: not retrying", method = method.escape_debug()
            ),
            // With retries off (`retry = false`, `RETRY_ENABLED=false`) nothing was given up:
            // the caller has the error, and an error line for each would only be noise. A
            // retrying site allowed one attempt (`RETRY_MAX_ATTEMPTS=1`) keeps its error line.
            GiveUp::Exhausted
                if !self.current.site.retry || !self.current.p.config.retry_enabled =>
            {
                tracing::warn!(
                    target: "resilience", provider, method, idempotency_key = %self.current.key(), attempt = n, max_attempts = max, class = cls, result, error, reason,
                    "[RETRY] {method} failed on its one attempt ({cls} error; retries are off)", method = method.escape_debug()
                )
            }
            GiveUp::Exhausted => tracing::error!(
                target: "resilience", provider, method, idempotency_key = %self.current.key(), attempt = n, max_attempts = max, class = cls, result, error, reason,
                "[RETRY] Giving up on {method} after {n}/{max} attempts ({cls} error)", method = method.escape_debug()
            ),
            // Retries need timers: an error, as the loss of every retry is.
            GiveUp::NoRuntime => tracing::error!(
                target: "resilience", provider, method, idempotency_key = %self.current.key(), attempt = n, max_attempts = max, class = cls, result, error, reason,
                "[RETRY] Giving up on {method} after attempt {n}/{max}: {}", Tail(why, provider), method = method.escape_debug()
            ),
            _ => tracing::warn!(
                target: "resilience", provider, method, idempotency_key = %self.current.key(), attempt = n, max_attempts = max, class = cls, result, error, reason,
                retry_after_ms = match why {
                    GiveUp::RetryAfterTooLong(ra) => Some(telemetry::millis(*ra)),
                    _ => None,
                },
                "[RETRY] Giving up on {method} after attempt {n}/{max}: {}", Tail(why, provider), method = method.escape_debug()
            ),
        }
    }

    /// The call's outcome and duration, which ends at `ended` (the reading that ended its
    /// last attempt, when the call ends with it), or now.
    fn record_call(&mut self, outcome: CallOutcome, ended: Option<u64>) {
        if let Some(Ext {
            metrics: Some(m),
            started,
            recorded,
            ..
        }) = &mut *self.ext
        {
            *recorded = true;
            let tsc = tsc::calibrated();
            let ended = ended.unwrap_or_else(|| tsc.raw());
            m.call(outcome, seconds(tsc.between(*started, ended)));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::Settings;
    use crate::config::Jitter;

    #[derive(Debug)]
    enum Error {
        Throttled(Option<Duration>),
        Resilience(ResilienceError),
    }

    impl From<ResilienceError> for Error {
        fn from(e: ResilienceError) -> Self {
            Error::Resilience(e)
        }
    }

    impl Classify for Error {
        fn classify(&self) -> ErrorClass {
            match self {
                Error::Throttled(retry_after) => ErrorClass::Throttled {
                    retry_after: *retry_after,
                },
                Error::Resilience(e) => e.classify(),
            }
        }
    }

    /// What only some calls need (`Ext`) is inline in every call's future, whose size every
    /// call pays (futures are moved by copying): a retry's start reading is in the retry's
    /// timer box, not there. With it in the `Ext`, the call was 160 bytes and every
    /// `#[resilient]` future 8 bytes larger (`tests/macro.rs`: 184 and 192 in a debug build,
    /// where `benches/RUNS.md` says 176 and 184).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_retry_s_start_is_not_in_every_call_s_future() {
        assert!(size_of::<Call>() <= 152, "{} bytes", size_of::<Call>());
    }

    /// When each of `callers` calls, all at once, failing their first attempt with a
    /// `Retry-After` of `retry_after`, made their second (from the start).
    async fn second_attempts(p: Provider, callers: usize, retry_after: Duration) -> Vec<Duration> {
        let t0 = Instant::now();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let calls: Vec<_> = (0..callers)
            .map(|_| {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut attempts = 0;
                    p.execute(|| {
                        attempts += 1;
                        let first = attempts == 1;
                        if !first {
                            seen.lock().unwrap().push(t0.elapsed());
                        }
                        async move {
                            match first {
                                true => Err(Error::Throttled(Some(retry_after))),
                                false => Ok(()),
                            }
                        }
                    })
                    .await
                })
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        let mut seen = std::mem::take(&mut *seen.lock().unwrap());
        seen.sort();
        seen
    }

    /// Callers told the same `Retry-After` (a 429 or a 503 to every
    /// caller of a provider that sheds load) must not all come back at the same instant, the
    /// moment the provider named: with the defaults (a 1 s base, full jitter) and
    /// `Retry-After: 1`, the jittered backoff was always below the header, so all 50 retries
    /// came at exactly 1 s.
    #[tokio::test(start_paused = true)]
    async fn callers_told_the_same_retry_after_do_not_retry_in_step() {
        let _isolated = crate::testing::isolate();
        let p = crate::configure("call-retry-after-spread", Settings::new()).unwrap();
        let ra = Duration::from_secs(1);
        let mut at = second_attempts(p, 50, ra).await;
        assert_eq!(at.len(), 50);
        assert!(at[0] >= ra, "no retry before the header's time: {at:?}");
        assert!(*at.last().unwrap() <= p.config().max_delay);
        at.dedup();
        assert!(at.len() > 25, "retries in step at {at:?}");
    }

    /// Without jitter the wait stays exactly the longer of the backoff and the header.
    #[tokio::test(start_paused = true)]
    async fn without_jitter_retry_after_is_waited_exactly() {
        let _isolated = crate::testing::isolate();
        let p = crate::configure(
            "call-retry-after-exact",
            Settings::new().jitter(Jitter::None),
        )
        .unwrap();
        let at = second_attempts(p, 3, Duration::from_secs(2)).await;
        assert_eq!(at, [Duration::from_secs(2); 3]);
        let at = second_attempts(p, 3, Duration::from_millis(300)).await;
        assert_eq!(at, [Duration::from_secs(1); 3], "the 1 s backoff is longer");
    }

    /// The spread after a `Retry-After` stays under the maximum delay and within the call's
    /// deadline: it never turns a retry the header alone allows into giving up.
    #[tokio::test(start_paused = true)]
    async fn the_spread_after_retry_after_keeps_to_the_cap_and_the_deadline() {
        let _isolated = crate::testing::isolate();
        let capped = crate::configure(
            "call-retry-after-capped",
            Settings::new().max_delay(Duration::from_millis(1200)),
        )
        .unwrap();
        for t in second_attempts(capped, 50, Duration::from_secs(1)).await {
            assert!(
                t >= Duration::from_secs(1) && t <= Duration::from_millis(1200),
                "{t:?}"
            );
        }
        let deadline = Duration::from_millis(1100);
        let tight = crate::configure(
            "call-retry-after-deadline",
            Settings::new().total_timeout(Some(deadline)),
        )
        .unwrap();
        let at = second_attempts(tight, 50, Duration::from_secs(1)).await;
        assert_eq!(at.len(), 50, "every call retried");
        for t in at {
            assert!(
                t >= Duration::from_secs(1) && t <= deadline - 2 * TIMER_TICK,
                "{t:?}"
            );
        }
    }

    /// How many of `at` fall on its most common instant.
    ///
    /// `MOST_AT_ONCE` bounds it for 50 callers spread uniformly over 200 or more of the
    /// paused clock's 1 ms ticks. At 5, one run in about 24,000 (200 ticks; 70,000 at 249)
    /// failed with the code right: 6 of 50 on one tick has a chance of 2e-7 per tick. At 8
    /// it is under 4e-8 a run, and the gathering it guards against put 40 of 50 on one tick.
    const MOST_AT_ONCE: usize = 8;

    fn most_at_once(at: &[Duration]) -> usize {
        let mut counts = std::collections::BTreeMap::new();
        for t in at {
            *counts.entry(*t).or_insert(0) += 1;
        }
        counts.into_values().max().unwrap_or(0)
    }

    /// A spread cut to the maximum delay put every caller whose jitter passed it at that one
    /// instant: with a 1.2 s cap and `Retry-After: 1`, four in five of them came back at
    /// exactly 1.2 s, in step again.
    #[tokio::test(start_paused = true)]
    async fn the_spread_cut_by_the_cap_does_not_gather_callers_at_it() {
        let _isolated = crate::testing::isolate();
        let p = crate::configure(
            "call-retry-after-cap-spread",
            Settings::new().max_delay(Duration::from_millis(1200)),
        )
        .unwrap();
        let at = second_attempts(p, 50, Duration::from_secs(1)).await;
        assert!(
            most_at_once(&at) <= MOST_AT_ONCE,
            "retries in step at {at:?}"
        );
    }

    /// Under a deadline the spread came out of the retry's own time: cut to the deadline's
    /// room, nine in ten of the callers told `Retry-After: 1` with a 1.1 s deadline started
    /// their retry 2 ms before it, all at once, where the header alone left them 100 ms. An
    /// attempt of 20 ms was cut off by the deadline, each one a breaker failure: the
    /// provider that asked for the wait had its breaker opened by the retries.
    #[tokio::test(start_paused = true)]
    async fn the_spread_under_a_deadline_leaves_the_retry_its_time() {
        let _isolated = crate::testing::isolate();
        let p = crate::configure(
            "call-retry-after-deadline-time",
            Settings::new().total_timeout(Some(Duration::from_millis(1100))),
        )
        .unwrap();
        let calls: Vec<_> = (0..50)
            .map(|_| {
                tokio::spawn(async move {
                    let mut attempts = 0;
                    p.execute(|| {
                        attempts += 1;
                        let first = attempts == 1;
                        async move {
                            if first {
                                return Err(Error::Throttled(Some(Duration::from_secs(1))));
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(())
                        }
                    })
                    .await
                })
            })
            .collect();
        let mut failed = Vec::new();
        for call in calls {
            if let Err(e) = call.await.unwrap() {
                failed.push(e);
            }
        }
        assert!(failed.is_empty(), "{} cut off: {failed:?}", failed.len());
        assert_eq!(p.state(), crate::CircuitState::Closed);
        // Nor do they meet at the edge of what the spread may take.
        let wide = crate::configure(
            "call-retry-after-deadline-spread",
            Settings::new().total_timeout(Some(Duration::from_millis(1500))),
        )
        .unwrap();
        let at = second_attempts(wide, 50, Duration::from_secs(1)).await;
        assert!(
            most_at_once(&at) <= MOST_AT_ONCE,
            "retries in step at {at:?}"
        );
    }

    /// A header only lengthens the wait. `Retry-After: 0` (or an HTTP date already past, which
    /// reads as 0) asks for no wait, the same as no header; and one shorter than the backoff
    /// let a call retry where it had none: equal jitter of a 2 s base (1–2 s) does not fit an
    /// 800 ms deadline, and gives up with no header or one of 0, but with one of 0 (then) or
    /// 1 ms the spread was drawn again within the deadline's room and the call retried within
    /// 400 ms, its own backoff ignored.
    #[tokio::test(start_paused = true)]
    async fn a_retry_after_no_longer_than_the_backoff_does_not_shorten_it() {
        let _isolated = crate::testing::isolate();
        let p = crate::configure(
            "call-retry-after-short",
            Settings::new()
                .jitter(Jitter::Equal)
                .base_delay(Duration::from_secs(2))
                .total_timeout(Some(Duration::from_millis(800))),
        )
        .unwrap();
        for retry_after in [
            None,
            Some(Duration::ZERO),
            Some(Duration::from_nanos(1)),
            Some(Duration::from_millis(1)),
        ] {
            let mut attempts = 0;
            let r = p
                .execute(|| {
                    attempts += 1;
                    async move { Err::<(), _>(Error::Throttled(retry_after)) }
                })
                .await;
            assert!(
                matches!(r, Err(Error::Throttled(_))),
                "{retry_after:?}: {r:?}"
            );
            assert_eq!(attempts, 1, "{retry_after:?}: a 1–2 s backoff in 800 ms");
        }
    }

    /// Equal jitter waits at least half the backoff; a header redrawn below it broke that.
    /// With a 60 s backoff (30–60 s) and `Retry-After: 20`, two in three draws passed the cap
    /// and were drawn again in 20–60 s: one caller in six came back before 30 s. Under a 10 s
    /// deadline, an 8 s backoff (4–8 s) and `Retry-After: 3`, every draw passed half the
    /// room and was drawn again in 3–6.5 s: more than one in four came back before 4 s. Each
    /// caller's wait is now at least the longer of the two, so this holds for every draw.
    #[tokio::test(start_paused = true)]
    async fn a_retry_after_keeps_equal_jitter_s_floor() {
        let _isolated = crate::testing::isolate();
        let capped = crate::configure(
            "call-retry-after-equal-cap",
            Settings::new()
                .jitter(Jitter::Equal)
                .base_delay(Duration::from_secs(60)),
        )
        .unwrap();
        let at = second_attempts(capped, 50, Duration::from_secs(20)).await;
        assert_eq!(at.len(), 50);
        assert!(at[0] >= Duration::from_secs(30), "{at:?}");
        assert!(*at.last().unwrap() <= Duration::from_secs(60), "{at:?}");
        let deadline = Duration::from_secs(10);
        let tight = crate::configure(
            "call-retry-after-equal-deadline",
            Settings::new()
                .jitter(Jitter::Equal)
                .base_delay(Duration::from_secs(8))
                .total_timeout(Some(deadline)),
        )
        .unwrap();
        let at = second_attempts(tight, 50, Duration::from_secs(3)).await;
        assert_eq!(at.len(), 50, "every call retried, as with no header");
        assert!(at[0] >= Duration::from_secs(4), "{at:?}");
        assert!(*at.last().unwrap() <= deadline - 2 * TIMER_TICK, "{at:?}");
    }
}
