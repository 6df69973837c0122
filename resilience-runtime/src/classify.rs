//! Which errors are worth retrying, and which count against a provider's breaker.
//!
//! Why three classes and not a boolean "retryable"? Because the breaker needs a different answer
//! than the retry loop: a 429 is worth retrying after a pause, but it proves the provider is up,
//! so it must not push the breaker towards open; a 400 is not worth retrying and says nothing
//! about the provider's health either.

use std::borrow::Cow;
use std::time::Duration;

/// How the runtime treats a failed attempt.
///
/// | class | retried? | breaker |
/// |---|---|---|
/// | `Transient` | yes, with backoff | counts as a failure |
/// | `Throttled` | yes, waiting at least `retry_after` | neutral |
/// | `Permanent` | no, returned at once | neutral |
///
/// Not `#[non_exhaustive]`, on purpose: the classes are what the runtime does with an error,
/// and a `match` on them in your code should name each, so that a class added in a later
/// (major) version is a compile error to decide on, not a wildcard arm that decides unseen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The provider or the network failed; another attempt may succeed.
    Transient,
    /// The provider asked us to slow down (HTTP 429). It is up, so this is not a breaker
    /// failure; the next attempt waits at least `retry_after`.
    Throttled {
        /// The provider's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The caller was wrong (bad request, auth, not found): retrying cannot help, and the
    /// provider answered, so the breaker treats it as neither success nor failure.
    Permanent,
}

/// `transient`, `throttled` or `permanent`, as in the logs' `class` field.
impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorClass {
    /// `true` for the classes the retry loop may retry.
    pub fn is_retryable(self) -> bool {
        !matches!(self, ErrorClass::Permanent)
    }

    /// The lower-case label used in logs and in the `result` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Throttled { .. } => "throttled",
            ErrorClass::Permanent => "permanent",
        }
    }
}

/// Tells the runtime how to treat an error type. Every `#[resilient]` method's error type and
/// every error returned through [`Provider::execute`](crate::Provider::execute) implements it.
///
/// Derive it (`#[derive(resilience::Classify)]`, with `#[classify(transparent)]` or a fixed
/// class on each variant: see the derive's docs), or write it as below. Written by hand, an
/// enum that wraps other errors forwards [`classify`](Self::classify) and, for those that
/// carry one (an [`HttpError`](crate::HttpError)), [`retry_after`](Self::retry_after): a 429's
/// `Retry-After` is in its class, but a 503's is only there, and without the forwarding the
/// retry waits its plain backoff instead. [`log_summary`](Self::log_summary) is forwarded for
/// the error's text in the logs.
///
/// ```
/// use resilience::{Classify, ErrorClass};
///
/// enum UploadError { Network(std::io::Error), Http(resilience::HttpError), TooLarge }
///
/// impl Classify for UploadError {
///     fn classify(&self) -> ErrorClass {
///         match self {
///             UploadError::Network(e) => e.classify(),
///             UploadError::Http(e) => e.classify(),
///             UploadError::TooLarge => ErrorClass::Permanent,
///         }
///     }
///     fn retry_after(&self) -> Option<std::time::Duration> {
///         match self {
///             UploadError::Http(e) => e.retry_after(),
///             _ => None,
///         }
///     }
/// }
/// # assert_eq!(UploadError::TooLarge.classify(), ErrorClass::Permanent);
/// # let e = UploadError::Http(resilience::HttpError::from_header(503, Some("2")));
/// # assert_eq!((e.classify(), e.retry_after()), (ErrorClass::Transient, Some(std::time::Duration::from_secs(2))));
/// ```
// First, where it applies: with the `reqwest` feature off, `reqwest::Error` has no `Classify`.
#[cfg_attr(
    not(feature = "reqwest"),
    diagnostic::on_unimplemented(
        note = "if it is a `reqwest::Error`: resilience classifies one only with its `reqwest` feature, which is off here (it is on by default: `default-features = false` turned it off); add `features = [\"reqwest\"]` to resilience's dependency"
    )
)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `resilience::Classify`",
    label = "this error type must implement `Classify`: which of its errors to retry, and which count against the breaker",
    note = "for an error type of your own, derive it (`#[derive(resilience::Classify)]`, with `#[classify(transparent)]` or a class on each variant) or implement it, to say which errors are transient, throttled or permanent",
    note = "for `anyhow::Error`, enable resilience's `anyhow` feature, and for `reqwest_middleware::Error` its `reqwest-middleware` feature; Rust's orphan rule forbids implementing it for another crate's error type (`Box<dyn Error>`): return an enum of your own that wraps it (see the README's \"Using it\"); where it is the field of a `#[classify(transparent)]` variant already, give that variant a fixed class instead (`#[classify(permanent)]`, `transient` or `throttled`)"
)]
pub trait Classify {
    /// The class of this error.
    fn classify(&self) -> ErrorClass;

    /// A short description that is safe to log: no secrets, no URL query strings, no
    /// credentials. The runtime also strips URL queries and user-info from it before logging;
    /// code that logs a summary itself should pass it through [`redact`](crate::redact)
    /// (`reqwest::Error`'s, for one, is reqwest's text with the request URL in it).
    /// The default logs no text at all, only the class.
    fn log_summary(&self) -> Option<Cow<'_, str>> {
        None
    }

    /// How long the provider asked callers to wait (HTTP `Retry-After`), whatever the class.
    /// A `503` with `Retry-After` stays a `Transient` breaker failure, and the next attempt
    /// still waits at least this long; above the max delay, the call gives up instead. A
    /// `Throttled` class's `retry_after` is honoured too (the longer of the two wins). The
    /// default is `None`; an error type that wraps [`HttpError`](crate::HttpError) forwards
    /// its `retry_after()` here.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// Makes error chains find error types whose [`Classify`] is written by hand, as they find
/// those that derive it: an `anyhow::Error` (with the `anyhow` feature) is classified by the
/// first error in its chain whose class is known, and an `io::Error` by the error it wraps.
/// Without it, such a type in a chain is not seen, and the chain is classified by what else
/// it holds (an `anyhow::Error` with nothing known is permanent: never retried).
///
/// Each type must be an [`Error`](std::error::Error) and `'static`; a generic one is named
/// with its parameters, once for each instantiation used. The types are registered at
/// program load, as `#[resilient]` call sites are, wherever the macro is written (at module
/// level, or in a function that never runs); naming a type twice is harmless.
///
/// ```
/// use resilience::{Classify, ErrorClass};
///
/// #[derive(Debug)]
/// struct Overloaded;
/// impl std::fmt::Display for Overloaded {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("overloaded")
///     }
/// }
/// impl std::error::Error for Overloaded {}
/// impl Classify for Overloaded {
///     fn classify(&self) -> ErrorClass {
///         ErrorClass::Transient
///     }
/// }
///
/// resilience::classify_in_chains!(Overloaded);
///
/// // Read from a stream, say: the `io::Error` is classified as the error it wraps.
/// let e = std::io::Error::other(Overloaded);
/// assert_eq!(e.classify(), ErrorClass::Transient);
/// ```
#[macro_export]
macro_rules! classify_in_chains {
    () => {
        ::core::compile_error!(
            "`classify_in_chains!` takes the error types to find in chains: \
             `resilience::classify_in_chains!(Overloaded, Wrapper<u8>);`"
        );
    };
    ($($t:ty),+ $(,)?) => {$(
        $crate::__private::inventory::submit! {
            $crate::__private::ChainType(|| {
                ::core::option::Option::Some($crate::__private::chain_fn::<$t>())
            })
        }
    )+};
}

/// A pointer to an error classifies as the error.
macro_rules! forward_classify {
    ($($pointer:ty),*) => {$(
        impl<E: Classify + ?Sized> Classify for $pointer {
            fn classify(&self) -> ErrorClass {
                (**self).classify()
            }
            fn log_summary(&self) -> Option<Cow<'_, str>> {
                (**self).log_summary()
            }
            fn retry_after(&self) -> Option<Duration> {
                (**self).retry_after()
            }
        }
    )*};
}

forward_classify!(Box<E>, &E, std::sync::Arc<E>);

/// Connection-level failures are transient; everything the OS reports about a bad input
/// (not found, permission denied, invalid data) is permanent. An `io::Error` that wraps one of
/// our errors, an [`HttpError`](crate::HttpError), (with the `reqwest` feature) a
/// `reqwest::Error`, a type that derives `Classify` or one named to
/// [`classify_in_chains!`](crate::classify_in_chains) is classified as the error it wraps, its
/// `Retry-After` included, through any `io::Error`s wrapped around it: that is how an HTTP
/// failure arrives through `io::Error::other(..)` or a body read as a stream. One of kind
/// `Other` around a plain `io::Error` (`io::Error::other(reset)`) is classified by the kind
/// inside.
impl Classify for std::io::Error {
    fn classify(&self) -> ErrorClass {
        use std::io::ErrorKind::*;
        if let Some(inner) = wrapped(self) {
            return inner.classify();
        }
        match said_kind(self) {
            ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected | BrokenPipe
            | TimedOut | Interrupted | WouldBlock | UnexpectedEof | AddrInUse
            | AddrNotAvailable | NetworkUnreachable | NetworkDown | HostUnreachable
            | ResourceBusy | WriteZero => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }

    fn log_summary(&self) -> Option<Cow<'_, str>> {
        // The kind, not the message: an io::Error's message can carry a path or a peer address.
        // A wrapped error of ours knows what of itself is safe to log.
        match wrapped(self) {
            Some(inner) => inner.log_summary(),
            None => Some(Cow::Owned(format!("io error: {}", said_kind(self)))),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        wrapped(self).and_then(Classify::retry_after)
    }
}

/// The error inside an `io::Error`, when it is one whose class we know better than its kind
/// does: one of [`known`]'s, or one inside an `io::Error` inside it. (An `io::Error` inside one
/// with nothing of ours in it is classified by [`said_kind`].)
fn wrapped(e: &std::io::Error) -> Option<&dyn Classify> {
    let mut e = e;
    loop {
        let inner = e.get_ref()?;
        if let Some(found) = known(inner) {
            return Some(found);
        }
        // `io::Error::other(e)` of an `io::Error` (a stream adapter that wants an error of its
        // own) hides the first from `source()` too: an HTTP error two deep was classified
        // `Other`. A loop: as deep as the nesting goes.
        e = inner.downcast_ref()?;
    }
}

/// The kind of `e` that says what happened: one made with `io::Error::other(inner)` of another
/// `io::Error` says nothing of its own (`Other`), and a connection reset below it, from the
/// stream adapter that [`wrapped`] looks through for an HTTP error, was permanent. A kind the
/// wrapper chose (`InvalidData`) is its word, and kept. A loop: as deep as the nesting goes.
fn said_kind(e: &std::io::Error) -> std::io::ErrorKind {
    let mut e = e;
    while e.kind() == std::io::ErrorKind::Other
        && let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<std::io::Error>())
    {
        e = inner;
    }
    e.kind()
}

/// `e` as one of ours, an [`HttpError`](crate::HttpError), (with the `reqwest` feature) a
/// `reqwest::Error`, or a type that derives `Classify` or is named to `classify_in_chains!`
/// (registered at program load: see `__private::ChainType`).
fn known<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a dyn Classify> {
    if let Some(e) = e.downcast_ref::<crate::ResilienceError>() {
        return Some(e);
    }
    if let Some(e) = e.downcast_ref::<crate::HttpError>() {
        return Some(e);
    }
    #[cfg(feature = "reqwest")]
    if let Some(e) = e.downcast_ref::<reqwest::Error>() {
        return Some(e);
    }
    #[cfg(feature = "reqwest-middleware")]
    if let Some(e) = e.downcast_ref::<reqwest_middleware::Error>() {
        return Some(e);
    }
    crate::__private::chain_types().find_map(|found| found(e))
}

/// The error an `anyhow::Error` is classified by: the first in its chain that is one of
/// [`known`]'s, else the first `io::Error` (whose kind is all it tells: an `io::Error` hides
/// what it wraps from the chain, so a 503 below one is still found through its own `Classify`).
#[cfg(feature = "anyhow")]
fn anyhow_known(e: &anyhow::Error) -> Option<&dyn Classify> {
    // An `io::Error`'s `source()` is the source of the error it wraps, not that error: looked
    // at here, or a type of yours wrapped in one would be passed over for its own source.
    fn known_or_wrapped<'a>(c: &'a (dyn std::error::Error + 'static)) -> Option<&'a dyn Classify> {
        known(c).or_else(|| wrapped(c.downcast_ref()?))
    }
    e.chain().find_map(known_or_wrapped).or_else(|| {
        e.chain()
            .find_map(|c| c.downcast_ref::<std::io::Error>())
            .map(|io| io as &dyn Classify)
    })
}

/// With the `anyhow` feature, a method may return `anyhow::Result`. The error is classified
/// as the first error in its chain that is ours, an [`HttpError`](crate::HttpError), a
/// `reqwest::Error`, a type that derives `Classify` (and is an `Error`, without generics:
/// the derive registers it) or is named to [`classify_in_chains!`](crate::classify_in_chains),
/// or an `io::Error` that wraps one of those, else the first `io::Error` (by its kind), its
/// `Retry-After` and log summary included; one with none is permanent (never retried: we
/// cannot tell) and logs no text (its messages are yours, and may hold anything). A boxed
/// error converted with `anyhow!(boxed)` or `Error::from_boxed` hides its type from anyhow's
/// chain: downcast the box first. An open breaker comes back as an `anyhow::Error` holding the
/// [`ResilienceError`](crate::ResilienceError) (`downcast_ref` finds it). reqwest-retry's error
/// in the chain (`Request failed after 2 retries`: its middleware retried inside one of our
/// attempts) changes no class; the summary ends `(after 2 retries by a middleware inside the
/// attempt)`, and the first one in the process is warned of.
///
/// ```
/// # #[cfg(feature = "anyhow")] {
/// use anyhow::Context;
/// use resilience::{Classify, ErrorClass, HttpError};
///
/// let e = Err::<(), _>(HttpError::from_header(503, None)).context("uploading a.txt").unwrap_err();
/// assert_eq!(e.classify(), ErrorClass::Transient);
/// assert_eq!(anyhow::anyhow!("no idea").classify(), ErrorClass::Permanent);
/// # }
/// ```
#[cfg(feature = "anyhow")]
impl Classify for anyhow::Error {
    fn classify(&self) -> ErrorClass {
        if let Some(retries) = nested::retried_inside(self) {
            nested::warn(retries);
        }
        anyhow_known(self).map_or(ErrorClass::Permanent, Classify::classify)
    }

    fn log_summary(&self) -> Option<Cow<'_, str>> {
        nested::said(self, anyhow_known(self).and_then(Classify::log_summary))
    }

    fn retry_after(&self) -> Option<Duration> {
        anyhow_known(self).and_then(Classify::retry_after)
    }
}

/// A retrying middleware's retries inside one of our attempts (reqwest-retry's, left in a
/// reqwest-middleware client), found in an `anyhow::Error`'s chain: reqwest-middleware's
/// `Error::Middleware` holds one, and a user's `anyhow::Error` may hold that.
#[cfg(feature = "anyhow")]
mod nested {
    use super::*;
    use std::fmt;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// What reqwest-retry's `RetryError::WithRetries` says (`Request failed after 2 retries`),
    /// found in the chain: its retries, made inside one of our attempts. Read
    /// from the text, as reqwest-retry is not a dependency of ours (its type is not one to
    /// downcast to here), and only after a failed attempt. Its retries that end in a response
    /// (a 503 after the last) leave no error to find.
    pub(super) fn retried_inside(e: &anyhow::Error) -> Option<u32> {
        e.chain().find_map(|c| {
            let mut m = Match::default();
            // Never an error: `Match` takes every write (see there).
            fmt::write(&mut m, format_args!("{c}")).ok()?;
            m.retries()
        })
    }

    /// `Request failed after {n} retries`, matched as it is written, without allocating. A
    /// write that cannot match ends the match, not the formatting: `fmt::Error` there would reach
    /// a `Display` that unwraps its writes (`write!(f, …).unwrap()`), which `to_string()` never
    /// fails, and panic the call; one that ignores it went on feeding the matcher and matched
    /// what followed. The rest is skipped at a write's cost.
    #[derive(Default)]
    struct Match {
        /// Bytes of `BEFORE` and `AFTER` matched (the count's digits not counted).
        at: usize,
        retries: Option<u32>,
        failed: bool,
    }

    const BEFORE: &str = "Request failed after ";
    const AFTER: &str = " retries";

    impl fmt::Write for Match {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            if !self.failed && !self.take(s) {
                self.failed = true;
            }
            Ok(())
        }
    }

    impl Match {
        fn done(&self) -> bool {
            self.at == BEFORE.len() + AFTER.len()
        }

        /// `false` as soon as `s` cannot continue the words.
        fn take(&mut self, s: &str) -> bool {
            for b in s.bytes() {
                if self.done() {
                    return false;
                }
                if self.at < BEFORE.len() {
                    if b != BEFORE.as_bytes()[self.at] {
                        return false;
                    }
                    self.at += 1;
                } else if b.is_ascii_digit() && self.at == BEFORE.len() {
                    let d = u32::from(b - b'0');
                    let n = self
                        .retries
                        .unwrap_or(0)
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(d));
                    match n {
                        Some(n) => self.retries = Some(n),
                        None => return false,
                    }
                } else {
                    let i = self.at - BEFORE.len();
                    if self.retries.is_none() || b != AFTER.as_bytes()[i] {
                        return false;
                    }
                    self.at += 1;
                }
            }
            true
        }

        /// reqwest-retry writes the words only after a retry (`0 retries` is not its).
        fn retries(&self) -> Option<u32> {
            self.retries
                .filter(|&n| n > 0 && !self.failed && self.done())
        }
    }

    /// Once a process: a retrying middleware's retries inside our attempts multiply the requests
    /// a call makes, unseen by the breaker, the metrics and the retry budget (README, "Keeping
    /// reqwest-middleware's client"). Each `[RETRY]` line then says so of its error as well.
    pub(super) fn warn(retries: u32) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        // A load first: after the warning, the failures that find it take no write. Not
        // spent where nothing would show it (no subscriber yet, or WARN filtered out here).
        if WARNED.load(Ordering::Relaxed)
            || !tracing::enabled!(target: "resilience", tracing::Level::WARN)
            || WARNED.swap(true, Ordering::Relaxed)
        {
            return;
        }
        tracing::warn!(
            target: "resilience", retries,
            "[RETRY] A retrying middleware retried before an error came back (\"Request failed \
             after {retries} retries\", reqwest-retry's error). Inside a #[resilient] call, each \
             attempt makes that many requests more, which the breaker, the metrics and the \
             retry budget count as one attempt, and a 429's Retry-After is not waited for \
             between them: take RetryTransientMiddleware out of the client, #[resilient] \
             retries the call. Said once a process; each [RETRY] line's error says it too",
        );
    }

    const SAID: &str = " by a middleware inside the attempt)";

    /// `summary`, followed by what the retries inside were, once (an `anyhow::Error` inside
    /// another one's chain says it already).
    pub(super) fn said<'a>(
        e: &anyhow::Error,
        summary: Option<Cow<'a, str>>,
    ) -> Option<Cow<'a, str>> {
        let Some(retries) = retried_inside(e) else {
            return summary;
        };
        match summary {
            // An error in the chain said its own (the same count, or an inner layer's).
            Some(s) if s.ends_with(SAID) => Some(s),
            s => {
                let plural = if retries == 1 { "retry" } else { "retries" };
                let s = s.as_deref().unwrap_or("error");
                Some(Cow::Owned(format!("{s} (after {retries} {plural}{SAID}")))
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn reqwest_retry_s_count_is_read_from_its_words_exactly() {
            let found = |text: &'static str| retried_inside(&anyhow::anyhow!(text));
            assert_eq!(found("Request failed after 2 retries"), Some(2));
            assert_eq!(
                found("Request failed after 4294967295 retries"),
                Some(u32::MAX)
            );
            for not in [
                "Request failed after 4294967296 retries",
                "Request failed after  retries",
                "Request failed after 2 retries!",
                "Request failed after 2 retrie",
                "Request failed after 2",
                "request failed after 2 retries",
                "Request failed after -2 retries",
                "Request failed after 2 3 retries",
                "Request failed after 0 retries",
                "",
            ] {
                assert_eq!(found(not), None, "{not:?}");
            }
            // Below a middleware's context, and written in pieces.
            let under = anyhow::anyhow!("Request failed after {} retries", 7).context("upload");
            assert_eq!(retried_inside(&under), Some(7));
        }

        /// A `Display` that unwraps its writes, or ignores their errors, as `to_string()` lets
        /// it: the matcher never fails a write, so neither panics, and nothing after a byte
        /// that cannot match is matched.
        #[test]
        fn any_display_is_read_to_its_end_without_an_error() {
            #[derive(Debug)]
            struct Unwraps(&'static str);
            impl fmt::Display for Unwraps {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    write!(f, "upload of {} failed", self.0).unwrap();
                    Ok(())
                }
            }
            impl std::error::Error for Unwraps {}
            #[derive(Debug)]
            struct Ignores(&'static str, &'static str);
            impl fmt::Display for Ignores {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    let _ = f.write_str(self.0);
                    f.write_str(self.1)
                }
            }
            impl std::error::Error for Ignores {}

            let e = anyhow::Error::new(Unwraps("a.txt"));
            assert_eq!(retried_inside(&e), None);
            assert_eq!(e.classify(), ErrorClass::Permanent);
            let said =
                anyhow::Error::new(Ignores("Upload said: ", "Request failed after 9 retries"));
            assert_eq!(retried_inside(&said), None);
            let pieces = anyhow::Error::new(Ignores("Request failed after 4", "2 retries"));
            assert_eq!(retried_inside(&pieces), Some(42));
        }

        /// Two counts in one `anyhow::Error`'s chain: one note, the outer count (an error
        /// inside it that says its own is in `http.rs`'s tests).
        #[test]
        fn two_counts_in_one_chain_make_one_note() {
            let e = anyhow::Error::new(crate::HttpError::from_header(503, None))
                .context("Request failed after 3 retries")
                .context("Request failed after 5 retries");
            assert_eq!(
                e.log_summary().as_deref(),
                Some("HTTP 503 (after 5 retries by a middleware inside the attempt)")
            );
        }

        /// The warning is not spent where nothing shows it (no subscriber: a `Classify` call
        /// before logging is set up), and is shown once where something does.
        #[test]
        fn the_warning_waits_for_a_subscriber_that_shows_it() {
            use std::sync::Arc;
            use std::sync::atomic::AtomicUsize;
            struct Counting(Arc<AtomicUsize>);
            impl tracing::Subscriber for Counting {
                fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                    true
                }
                fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                    tracing::span::Id::from_u64(1)
                }
                fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
                fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
                fn event(&self, event: &tracing::Event<'_>) {
                    let m = event.metadata();
                    if *m.level() == tracing::Level::WARN && m.target() == "resilience" {
                        self.0.fetch_add(1, Ordering::Relaxed);
                    }
                }
                fn enter(&self, _: &tracing::span::Id) {}
                fn exit(&self, _: &tracing::span::Id) {}
            }
            let e = anyhow::anyhow!("Request failed after 2 retries");
            e.classify();
            let seen = Arc::new(AtomicUsize::new(0));
            tracing::subscriber::with_default(Counting(seen.clone()), || {
                e.classify();
                e.classify();
            });
            assert_eq!(seen.load(Ordering::Relaxed), 1);
        }

        /// Without the reqwest-middleware feature too: a user's `anyhow::Error` holding
        /// reqwest-retry's error says it, after what its chain is classified by.
        #[test]
        fn an_anyhow_error_s_summary_says_so_and_its_class_is_unchanged() {
            let e = anyhow::Error::new(crate::HttpError::from_header(503, None))
                .context("Request failed after 3 retries")
                .context("uploading a.txt");
            assert_eq!(e.classify(), ErrorClass::Transient);
            assert_eq!(
                e.log_summary().as_deref(),
                Some("HTTP 503 (after 3 retries by a middleware inside the attempt)")
            );
            let unknown = anyhow::anyhow!("Request failed after 1 retries");
            assert_eq!(unknown.classify(), ErrorClass::Permanent);
            assert_eq!(
                unknown.log_summary().as_deref(),
                Some("error (after 1 retry by a middleware inside the attempt)"),
                "the count, never the error's own text"
            );
        }
    }
}

/// Classifies an HTTP status: 408, 500, 502, 503 and 504 are transient, 429 is throttled,
/// everything else (other 4xx, 501, 505, …) is permanent. (The original plan lists 429, 500,
/// 502, 503 and 504; 408, a server's timeout on a request that came too slowly, is as
/// transient as a 504, and the project's brief lists it.)
///
/// ```
/// use resilience::{classify_status, ErrorClass};
/// use std::time::Duration;
///
/// assert_eq!(classify_status(503, None), ErrorClass::Transient);
/// assert_eq!(classify_status(404, None), ErrorClass::Permanent);
/// assert_eq!(
///     classify_status(429, Some(Duration::from_secs(2))),
///     ErrorClass::Throttled { retry_after: Some(Duration::from_secs(2)) },
/// );
/// ```
#[must_use]
pub fn classify_status(status: u16, retry_after: Option<Duration>) -> ErrorClass {
    match status {
        408 | 500 | 502 | 503 | 504 => ErrorClass::Transient,
        429 => ErrorClass::Throttled { retry_after },
        _ => ErrorClass::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn status_classes() {
        for s in [408, 500, 502, 503, 504] {
            assert_eq!(classify_status(s, None), ErrorClass::Transient, "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413, 422, 501, 505, 200, 302] {
            assert_eq!(classify_status(s, None), ErrorClass::Permanent, "{s}");
        }
        let ra = Some(Duration::from_millis(1500));
        assert_eq!(
            classify_status(429, ra),
            ErrorClass::Throttled { retry_after: ra }
        );
    }

    #[test]
    fn io_errors() {
        for k in [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::TimedOut,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::BrokenPipe,
        ] {
            assert_eq!(
                io::Error::from(k).classify(),
                ErrorClass::Transient,
                "{k:?}"
            );
        }
        for k in [
            io::ErrorKind::NotFound,
            io::ErrorKind::PermissionDenied,
            io::ErrorKind::InvalidData,
            io::ErrorKind::InvalidInput,
        ] {
            assert_eq!(
                io::Error::from(k).classify(),
                ErrorClass::Permanent,
                "{k:?}"
            );
        }
        let e = io::Error::other("secret /home/me/key.pem");
        assert_eq!(e.log_summary().unwrap(), "io error: other error");
    }

    #[test]
    fn io_error_keeps_the_class_of_a_resilience_error() {
        use crate::ResilienceError;
        let open: io::Error = ResilienceError::CircuitOpen {
            provider: "p",
            retry_in: None,
        }
        .into();
        assert_eq!(open.classify(), ErrorClass::Permanent);
        let timeout: io::Error = ResilienceError::AttemptTimeout {
            provider: "p",
            timeout: Duration::from_secs(1),
        }
        .into();
        assert_eq!(timeout.classify(), ErrorClass::Transient);
        assert!(
            timeout
                .get_ref()
                .unwrap()
                .downcast_ref::<ResilienceError>()
                .is_some()
        );
    }

    /// An `io::Error` made from another (`io::Error::other(e)` in a stream adapter that wants
    /// an error of its own, over a body read as a stream) hid the HTTP error inside: a 503 was
    /// classified by the outer kind, `Other`, as permanent, and its `Retry-After` was lost. An
    /// inner `io::Error` with nothing of ours in it still leaves the outer kind.
    #[test]
    fn an_io_error_inside_an_io_error_keeps_the_class_of_what_it_wraps() {
        let busy = crate::HttpError::from_header(503, Some("2"));
        let twice = io::Error::other(io::Error::other(busy.clone()));
        assert_eq!(twice.classify(), ErrorClass::Transient);
        assert_eq!(twice.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(twice.log_summary().unwrap(), "HTTP 503 (retry after 2s)");
        let thrice = io::Error::other(io::Error::new(io::ErrorKind::InvalidData, twice));
        assert_eq!(thrice.classify(), ErrorClass::Transient);
        #[cfg(feature = "anyhow")]
        {
            let e = anyhow::Error::from(io::Error::other(io::Error::other(busy)));
            assert_eq!(
                e.context("upload").retry_after(),
                Some(Duration::from_secs(2))
            );
        }
        let plain = io::Error::other(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(plain.classify(), ErrorClass::Transient);
    }

    /// The same stream adapter over a connection that was reset: `io::Error::other` of the
    /// reset says nothing of its own (`Other`), and the call was not retried (permanent) where
    /// the reset alone was; its log said "other error". A kind the wrapper chose is its word.
    #[test]
    fn an_io_error_inside_an_other_io_error_is_classified_by_its_kind() {
        let reset = || io::Error::from(io::ErrorKind::ConnectionReset);
        let twice = io::Error::other(io::Error::other(reset()));
        assert_eq!(twice.classify(), ErrorClass::Transient);
        assert_eq!(twice.log_summary().unwrap(), "io error: connection reset");
        let said = io::Error::new(io::ErrorKind::InvalidData, reset());
        assert_eq!(said.classify(), ErrorClass::Permanent);
        let missing = io::Error::other(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(missing.classify(), ErrorClass::Permanent);
        // Nothing below: the outer kind, as ever.
        assert_eq!(io::Error::other("boom").classify(), ErrorClass::Permanent);
        #[cfg(feature = "anyhow")]
        {
            let e = anyhow::Error::from(io::Error::other(reset())).context("upload");
            assert_eq!(e.classify(), ErrorClass::Transient);
        }
        // Looked through in a loop, however deep (dropped, so deep a chain would recurse in
        // std's own drop: left).
        let mut deep = reset();
        for _ in 0..10_000 {
            deep = io::Error::other(deep);
        }
        assert_eq!(deep.classify(), ErrorClass::Transient);
        let busy = crate::HttpError::from_header(503, Some("2"));
        let mut deep_http = io::Error::other(busy);
        for _ in 0..10_000 {
            deep_http = io::Error::other(deep_http);
        }
        assert_eq!(deep_http.retry_after(), Some(Duration::from_secs(2)));
        std::mem::forget((deep, deep_http));
    }

    /// Looking inside takes the inner kind, never its text: a message below the wrapper (a
    /// peer address, a path) stays out of the log as the outer one's does. A `WouldBlock` or
    /// `TimedOut` inside is classed as it is alone, and a message-only `Other` inside an
    /// `Other` says nothing either.
    #[test]
    fn the_kind_inside_an_other_io_error_is_logged_without_its_text() {
        let secret = "peer 10.0.0.7 token=s3cr3t /home/me/key.pem";
        let reset = io::Error::other(io::Error::new(io::ErrorKind::ConnectionReset, secret));
        assert_eq!(reset.log_summary().unwrap(), "io error: connection reset");
        let other = io::Error::other(io::Error::other(secret));
        assert_eq!(other.classify(), ErrorClass::Permanent);
        assert_eq!(other.log_summary().unwrap(), "io error: other error");
        for k in [io::ErrorKind::WouldBlock, io::ErrorKind::TimedOut] {
            let e = io::Error::other(io::Error::new(k, secret));
            assert_eq!(e.classify(), io::Error::from(k).classify(), "{k:?}");
            assert!(!e.log_summary().unwrap().contains("s3cr3t"), "{k:?}");
        }
    }

    #[test]
    fn boxed_forwards() {
        let e: Box<io::Error> = Box::new(io::ErrorKind::TimedOut.into());
        assert_eq!(e.classify(), ErrorClass::Transient);
        assert!(ErrorClass::Throttled { retry_after: None }.is_retryable());
        assert!(!ErrorClass::Permanent.is_retryable());
    }
}
