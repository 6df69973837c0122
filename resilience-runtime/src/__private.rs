//! What `#[resilient]` expansions name: `::resilience::__private::…`. Not a public API.

pub use crate::call::{
    Attempt, AttemptFn, AttemptFuture, Backoff, Call, CallClassify, CallError, CallSite,
    FromResilienceError, Hooks, IsResult, Operation, Step, hooks,
};
pub use core::option::Option;
// `#[derive(Classify)]`'s `log_summary`: named through us, so a `#![no_std]` crate, which has
// no `std` of its own to name, can derive it.
pub use core::pin::Pin;
pub use core::result::Result;
pub use std::borrow::Cow;
// The expansion registers its call site with `inventory::submit!`.
pub use inventory;

/// `Classify` as `#[derive(Classify)]`'s `transparent` forwarding calls it, under a name of our
/// own, so a field's type without it is reported with what to do in a derive (give the
/// variant a fixed class), not with `Classify`'s own advice, which is for a method's error.
/// The derive calls its `classify` only, the one check per field (see [`Forward`]).
// First, where it applies: with the `reqwest` feature off (`default-features = false`), a
// `reqwest::Error` field was told of other versions and of reqwest-middleware (helper-246).
#[cfg_attr(
    not(feature = "reqwest"),
    diagnostic::on_unimplemented(
        note = "if it is a `reqwest::Error`: resilience classifies one only with its `reqwest` feature, which is off here (it is on by default: `default-features = false` turned it off); add `features = [\"reqwest\"]` to resilience's dependency"
    )
)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `resilience::Classify`, which `#[classify(transparent)]` forwards to",
    label = "this field's type has no `Classify`",
    note = "give the variant a fixed class instead: `#[classify(permanent)]` (or `transient`, `throttled`), which needs nothing of the field, and gives each of its errors that one class",
    note = "or, for a type of your own, derive `Classify` for it or implement it",
    // Told by what the user can see on any toolchain: rustc notes a field type's crate's two
    // versions only since rust-lang/rust#146874 (autumn 2025, after 1.91), not at our MSRV.
    note = "or, if `{Self}` is another version of a type resilience classifies (reqwest 0.12's error beside resilience's 0.13: `cargo tree -d` shows both), use resilience's version, or implement `Classify` for your enum by hand, as a fixed class would retry every error of it or none",
    // reqwest-middleware's error holds a reqwest::Error (Error::Reqwest), and reqwest-retry's
    // one inside Error::Middleware: a fixed class there would retry a 400 and a refused
    // connection alike (tests/migration.rs).
    note = "or, if `{Self}` wraps an error resilience classifies (`reqwest_middleware::Error` holds a `reqwest::Error`), turn on resilience's `reqwest-middleware` feature, which classifies it; or implement `Classify` for your enum by hand and classify the error inside (see the README's \"Keeping reqwest-middleware's client\")"
)]
pub trait Forwarded {
    /// [`Classify::classify`](crate::Classify::classify).
    fn classify(&self) -> crate::ErrorClass;
    /// [`Classify::retry_after`](crate::Classify::retry_after).
    fn retry_after(&self) -> Option<std::time::Duration>;
    /// [`Classify::log_summary`](crate::Classify::log_summary).
    fn log_summary(&self) -> Option<Cow<'_, str>>;
}

impl<T: crate::Classify + ?Sized> Forwarded for T {
    #[inline]
    fn classify(&self) -> crate::ErrorClass {
        crate::Classify::classify(self)
    }
    #[inline]
    fn retry_after(&self) -> Option<std::time::Duration> {
        crate::Classify::retry_after(self)
    }
    #[inline]
    fn log_summary(&self) -> Option<Cow<'_, str>> {
        crate::Classify::log_summary(self)
    }
}

/// `(&&Forward(field)).resilience_retry_after()` and `.resilience_log_summary()`: a transparent
/// variant's other two forwards, which `#[derive(Classify)]` makes beside
/// `<Ty as Forwarded>::classify(field)`.
/// That call alone requires the field's type to be `Classify`: had these two required it as
/// well, a type without it was reported three times, once per method (rustc dedups identical
/// errors within one function body, not across the impl's three). Method lookup tries the
/// `&&Forward` receiver first, so `ForwardSpecific`'s forwarding is taken whenever the type is
/// `Classify`, which is exactly when the `classify` call compiles; `ForwardFallback`'s is
/// taken only in a build that fails at that call, and never runs. A transient or throttled
/// variant's `retry_after` is forwarded the same way (with no `classify` call beside it): its
/// field's own when the field is `Classify`, else the fallback's `None`. The methods have names of
/// their own, not `Classify`'s: a method call sees every trait in scope where the derive is
/// used, and a user's trait with a `retry_after` for every type (`impl<T> Hints for T`) made
/// the call ambiguous (E0034), where the forwarding by path had compiled.
pub struct Forward<'a, T: ?Sized>(pub &'a T);

/// For a field's type that is `Classify`: its own `retry_after` and `log_summary`.
pub trait ForwardSpecific<'a> {
    /// [`Classify::retry_after`](crate::Classify::retry_after).
    fn resilience_retry_after(&self) -> Option<std::time::Duration>;
    /// [`Classify::log_summary`](crate::Classify::log_summary).
    fn resilience_log_summary(&self) -> Option<Cow<'a, str>>;
}

impl<'a, T: crate::Classify + ?Sized> ForwardSpecific<'a> for &Forward<'a, T> {
    #[inline]
    fn resilience_retry_after(&self) -> Option<std::time::Duration> {
        crate::Classify::retry_after(self.0)
    }
    #[inline]
    fn resilience_log_summary(&self) -> Option<Cow<'a, str>> {
        crate::Classify::log_summary(self.0)
    }
}

/// For any other: what keeps these two calls from adding their own errors to the one the
/// `classify` call reports.
pub trait ForwardFallback<'a> {
    /// `None`.
    fn resilience_retry_after(&self) -> Option<std::time::Duration>;
    /// `None`.
    fn resilience_log_summary(&self) -> Option<Cow<'a, str>>;
}

impl<'a, T: ?Sized> ForwardFallback<'a> for Forward<'a, T> {
    #[inline]
    fn resilience_retry_after(&self) -> Option<std::time::Duration> {
        None
    }
    #[inline]
    fn resilience_log_summary(&self) -> Option<Cow<'a, str>> {
        None
    }
}

/// A `#[resilient]` call site, registered at program load (before `main`), so that switching
/// the recorder on makes its method's series, at 0, before its first call.
pub struct Registered(pub &'static CallSite);

inventory::collect!(Registered);

/// Clones an owned argument for the next attempt.
#[diagnostic::on_unimplemented(
    message = "owned argument of type `{Self}` must implement `Clone`, because each retry needs its own copy",
    label = "this argument is not `Clone`",
    note = "take it by reference; or take what it is made from (bytes, a path) and build it in the body, once per attempt (a request body, a stream); or implement `Clone` for it if it is your own type; or use `#[resilient(provider = \"…\", retry = false)]`",
    note = "an argument (not `self`) that the body does not use is not copied, unless the body calls a macro `#[resilient]` cannot read (one that could build its name from pieces, as `paste!` can): name such an argument `_` (`_: {Self}`)"
)]
pub trait CloneArg: Sized {
    /// A copy for one attempt.
    fn clone_arg(&self) -> Self;
}

impl<T: Clone> CloneArg for T {
    #[inline]
    fn clone_arg(&self) -> Self {
        self.clone()
    }
}

/// A fresh copy of an owned argument for one attempt, for an argument whose type the
/// expansion cannot name (`impl Trait`, the receiver of an async-trait method); the others
/// call `<Ty as CloneArg>::clone_arg`. The argument is lent by a closure because, given `&arg`
/// directly, rustc answers a type that is not `Clone` by suggesting to borrow the argument
/// (`&T` is `Clone`): wrong advice here. Through the closure it suggests adding `Clone`.
#[inline]
pub fn clone_arg_from<'a, T: CloneArg + 'a>(arg: impl FnOnce() -> &'a T) -> T {
    arg().clone_arg()
}

/// Finds one type in an error chain, as `&dyn Classify`.
pub type ChainFn =
    for<'a> fn(&'a (dyn std::error::Error + 'static)) -> Option<&'a dyn crate::Classify>;

/// A `#[derive(Classify)]` type, or one named to `classify_in_chains!`, registered at program
/// load, that error chains are searched for (an `anyhow::Error`'s, an `io::Error`'s inner
/// error) beside ours: its `ChainFn`, when the type is an `Error` (which the derive cannot
/// know, so `Probe` tells at compile time; the macro's bound requires it).
pub struct ChainType(pub fn() -> Option<ChainFn>);

inventory::collect!(ChainType);

/// The `ChainFn` of the derived types registered.
pub(crate) fn chain_types() -> impl Iterator<Item = ChainFn> {
    inventory::iter::<ChainType>
        .into_iter()
        .filter_map(|t| (t.0)())
}

/// `(&&Probe::<T>::NEW).resilience_chain_type()`: `ChainSpecific`'s for a `T` that is an
/// `Error` (method lookup tries its `&&Probe` receiver first), else `ChainFallback`'s `None`.
/// A name of its own, as [`Forward`]'s methods have: a user's trait in scope with a
/// `chain_type` for every type was taken, or made the call ambiguous.
pub struct Probe<T: ?Sized>(std::marker::PhantomData<T>);

// `?Sized`: a struct whose last field is unsized derives `Classify` too; it cannot be in a
// chain (`downcast_ref` needs `Sized`), so it takes the fallback.
impl<T: ?Sized> Probe<T> {
    /// The probe of `T`.
    pub const NEW: Self = Probe(std::marker::PhantomData);
}

/// For a type that is an `Error`: found by downcasting.
pub trait ChainSpecific {
    /// How to find the type in a chain.
    fn resilience_chain_type(&self) -> Option<ChainFn>;
}

impl<T: std::error::Error + crate::Classify + 'static> ChainSpecific for &Probe<T> {
    fn resilience_chain_type(&self) -> Option<ChainFn> {
        Some(chain_fn::<T>())
    }
}

/// How to find `T` in a chain: by downcasting. Named by [`classify_in_chains!`], whose bound
/// errors point at the type given.
///
/// [`classify_in_chains!`]: crate::classify_in_chains
pub fn chain_fn<T: std::error::Error + crate::Classify + 'static>() -> ChainFn {
    |e| e.downcast_ref::<T>().map(|t| t as &dyn crate::Classify)
}

/// For any other: not in any chain.
pub trait ChainFallback {
    /// `None`.
    fn resilience_chain_type(&self) -> Option<ChainFn>;
}

impl<T: ?Sized> ChainFallback for Probe<T> {
    fn resilience_chain_type(&self) -> Option<ChainFn> {
        None
    }
}

/// The coarse clock's reading as an open breaker's rejection makes it (ticks of 2^-32 s; 0 off
/// Linux): for the benchmarks' `clock_coarse` row, which times that read beside the bare call.
/// Panics on a kernel that cannot read the clock, where no breaker reads it.
#[inline(always)]
pub fn coarse_clock() -> u64 {
    crate::breaker::coarse_now()
}
