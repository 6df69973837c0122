//! The retry loop around the breaker: one logical call, made of attempts.
//!
//! Composition: retry wraps the breaker. Each attempt asks the breaker for a permit; a
//! rejection ends the call at once (never retried, never counted as a failure). A failed
//! attempt is classified; transient and throttled ones are retried with backoff while
//! attempts, the retry budget and the deadline allow, and the last error is returned unchanged.
//!
//! `#[resilient]` expands to the loop in [`CallSite::execute`] written out inline (so the
//! method body can borrow its arguments); both drive the same [`Call`].

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use crate::backoff;
use crate::breaker::{Permit, Verdict};
use crate::classify::{Classify, ErrorClass};
use crate::context::{CallInfo, IdempotencyKey, WithCall};
use crate::error::ResilienceError;
use crate::registry::{Provider, ProviderInner, resolve_site};
use crate::telemetry::{self, AttemptResult, CallOutcome, SiteMetrics};

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
pub struct CallSite {
    provider: &'static str,
    method: &'static str,
    retry: bool,
    resolved: OnceLock<&'static ProviderInner>,
    metrics: OnceLock<SiteMetrics>,
}

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

    #[inline]
    fn inner(&self) -> &'static ProviderInner {
        // After the first call, an acquire load and a branch.
        match self.resolved.get() {
            Some(p) => p,
            None => resolve_site(&self.resolved, self.provider),
        }
    }

    pub(crate) fn bind(&self, inner: &'static ProviderInner) {
        let _ = self.resolved.set(inner);
    }

    #[inline]
    fn metrics(&self) -> Option<&SiteMetrics> {
        if telemetry::recording() {
            Some(
                self.metrics
                    .get_or_init(|| SiteMetrics::new(self.inner().name, self.method)),
            )
        } else {
            None
        }
    }

    /// Runs `op` (called once per attempt) with the provider's retry policy and breaker.
    pub async fn execute<F, Fut, T, E>(&self, mut op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify + From<ResilienceError>,
    {
        let hooks = hooks::<Result<T, E>>();
        let mut call = Call::new(self);
        loop {
            let permit = match call.permit(&hooks) {
                Ok(p) => p,
                Err(rejected) => return rejected,
            };
            match call.attempt(&hooks, permit, op()).await {
                ControlFlow::Break(out) => return out,
                ControlFlow::Continue(()) => {}
            }
        }
    }
}

/// What the loop needs to know about a method's return type, as plain function pointers.
///
/// Why not trait bounds on every step of the loop? Because `#[resilient]` spans the single
/// [`hooks`] call at the user's return type: a missing `Classify` or `From<ResilienceError>`
/// then yields one error there, instead of one per generated line.
#[doc(hidden)]
pub struct Hooks<R> {
    class: fn(&R) -> Option<ErrorClass>,
    summary: fn(&R) -> Option<String>,
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

/// Builds the loop's view of `R`; the only place the bounds are checked.
#[doc(hidden)]
#[inline]
pub fn hooks<R>() -> Hooks<R>
where
    R: IsResult,
    R::Error: Classify + From<ResilienceError>,
{
    Hooks {
        class: |r| r.error().map(Classify::classify),
        summary: |r| {
            r.error()
                .and_then(|e| e.log_summary())
                .map(|s| crate::redact::redact(&s))
        },
        reject: |e| R::from_error(From::from(e)),
    }
}

/// One logical call in progress.
#[doc(hidden)]
pub struct Call<'s> {
    p: &'static ProviderInner,
    metrics: Option<&'s SiteMetrics>,
    info: CallInfo,
    direct: bool,
    breaker: bool,
    started: Option<Instant>,
    deadline: Option<Instant>,
    previous_delay: Duration,
}

enum GiveUp {
    Permanent,
    Exhausted,
    RetryAfterTooLong(Duration),
    Deadline,
    CircuitOpen,
    Budget,
    NoRuntime,
}

impl<'s> Call<'s> {
    /// Starts a call. Hot path: a few loads, one thread-local counter, no clock read unless
    /// metrics or a deadline need one.
    #[inline]
    pub fn new(site: &'s CallSite) -> Self {
        let p = site.inner();
        let c = &p.config;
        let direct = !c.enabled;
        let metrics = if direct { None } else { site.metrics() };
        let started =
            (metrics.is_some() || (c.total_timeout.is_some() && !direct)).then(Instant::now);
        let deadline = match (started, c.total_timeout) {
            (Some(s), Some(t)) if !direct => Some(s + t),
            _ => None,
        };
        if !direct {
            p.budget.on_call();
        }
        Call {
            p,
            metrics,
            info: CallInfo {
                provider: p.name,
                method: site.method,
                attempt: 0,
                max_attempts: if site.retry {
                    c.effective_attempts()
                } else {
                    1
                },
                idempotency_key: IdempotencyKey::next(),
            },
            direct,
            breaker: c.breaker_enabled && !direct,
            started,
            deadline,
            previous_delay: Duration::ZERO,
        }
    }

    /// Asks the breaker for the next attempt. On rejection, returns the method's own error.
    #[inline]
    pub fn permit<R>(&mut self, hooks: &Hooks<R>) -> Result<Permit<'static>, R> {
        if !self.breaker {
            return Ok(Permit::untracked());
        }
        match self.p.breaker.acquire() {
            Ok(p) => Ok(p),
            Err(e) => Err(self.rejected(hooks, e)),
        }
    }

    #[cold]
    fn rejected<R>(&mut self, hooks: &Hooks<R>, e: ResilienceError) -> R {
        let (provider, method) = (self.p.name, self.info.method);
        tracing::debug!(target: "resilience", provider, method, attempt = self.info.attempt + 1, "[CIRCUIT] Call to {method} rejected: breaker for {provider} is open");
        self.finish(if self.info.attempt == 0 {
            CallOutcome::Rejected
        } else {
            CallOutcome::Failure
        });
        (hooks.reject)(e)
    }

    /// Runs one attempt and decides what follows: `Break` with the call's result, or
    /// `Continue` after sleeping the backoff delay.
    pub async fn attempt<R, F>(
        &mut self,
        hooks: &Hooks<R>,
        permit: Permit<'static>,
        fut: F,
    ) -> ControlFlow<R>
    where
        F: Future<Output = R>,
    {
        match self.run(hooks, permit, fut, true).await {
            Ok(out) => ControlFlow::Break(out),
            Err((delay, out)) => {
                // Dropped before sleeping: an error may hold a connection or a response body.
                drop(out);
                tokio::time::sleep(delay).await;
                ControlFlow::Continue(())
            }
        }
    }

    /// The single attempt of a `retry = false` call site: always the result.
    pub async fn attempt_once<R, F>(
        &mut self,
        hooks: &Hooks<R>,
        permit: Permit<'static>,
        fut: F,
    ) -> R
    where
        F: Future<Output = R>,
    {
        match self.run(hooks, permit, fut, false).await {
            Ok(out) | Err((_, out)) => out,
        }
    }

    /// One attempt: `Ok(result)` ends the call, `Err((delay, error))` asks for a retry.
    #[inline]
    async fn run<R, F>(
        &mut self,
        hooks: &Hooks<R>,
        permit: Permit<'static>,
        fut: F,
        may_retry: bool,
    ) -> Result<R, (Duration, R)>
    where
        F: Future<Output = R>,
    {
        self.info.attempt += 1;
        if self.info.attempt == 1 {
            tracing::debug!(target: "resilience", provider = self.p.name, method = self.info.method, attempt = 1, max_attempts = self.info.max_attempts, "[RETRY] Attempt 1/{} for {}", self.info.max_attempts, self.info.method);
        }
        let fut = WithCall::new(fut, self.info);
        let (out, timed_out) = match self.attempt_limit() {
            None => (fut.await, false),
            Some((limit, err)) => match tokio::time::timeout(limit, fut).await {
                Ok(out) => (out, false),
                Err(_) => ((hooks.reject)(err), true),
            },
        };
        if self.direct {
            return Ok(out);
        }
        let class = (hooks.class)(&out);
        permit.record(Verdict::of(class));
        let Some(class) = class else {
            if let Some(m) = self.metrics {
                m.attempt(AttemptResult::Success);
            }
            self.finish(CallOutcome::Success);
            return Ok(out);
        };
        self.failed(hooks, out, class, timed_out, may_retry)
    }

    #[cold]
    fn failed<R>(
        &mut self,
        hooks: &Hooks<R>,
        out: R,
        class: ErrorClass,
        timed_out: bool,
        may_retry: bool,
    ) -> Result<R, (Duration, R)> {
        if let Some(m) = self.metrics {
            m.attempt(match class {
                _ if timed_out => AttemptResult::Timeout,
                ErrorClass::Transient => AttemptResult::Transient,
                ErrorClass::Throttled { .. } => AttemptResult::Throttled,
                ErrorClass::Permanent => AttemptResult::Permanent,
            });
        }
        if !may_retry {
            self.info.max_attempts = self.info.attempt;
        }
        match self.next_delay(class) {
            Ok(delay) => {
                let (provider, method) = (self.p.name, self.info.method);
                let (next, max) = (self.info.attempt + 1, self.info.max_attempts);
                let error = (hooks.summary)(&out);
                tracing::info!(
                    target: "resilience", provider, method, attempt = next, max_attempts = max,
                    delay_ms = delay.as_millis() as u64, class = class.as_str(), error = error.as_deref(),
                    "[RETRY] Attempt {next}/{max} for {method} in {:.3}s after a {} error",
                    delay.as_secs_f64(), class.as_str(),
                );
                if let Some(m) = self.metrics {
                    m.retry();
                }
                self.previous_delay = delay;
                Err((delay, out))
            }
            Err(why) => {
                self.log_give_up(&why, class, (hooks.summary)(&out));
                self.finish(CallOutcome::Failure);
                Ok(out)
            }
        }
    }

    /// The time this attempt may take: the per-attempt timeout, cut to what is left of the
    /// deadline. `None` (and no clock read) when neither is configured.
    fn attempt_limit(&self) -> Option<(Duration, ResilienceError)> {
        if self.direct {
            return None;
        }
        let c = &self.p.config;
        let provider = self.p.name;
        let per_attempt = c.attempt_timeout.map(|t| {
            (
                t,
                ResilienceError::AttemptTimeout {
                    provider,
                    timeout: t,
                },
            )
        });
        let Some(deadline) = self.deadline else {
            return per_attempt;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let total = c.total_timeout.unwrap_or_default();
        let by_deadline = (
            left,
            ResilienceError::DeadlineExceeded {
                provider,
                deadline: total,
            },
        );
        Some(match per_attempt {
            Some(pa) if pa.0 <= left => pa,
            _ => by_deadline,
        })
    }

    fn next_delay(&mut self, class: ErrorClass) -> Result<Duration, GiveUp> {
        let c = &self.p.config;
        if class == ErrorClass::Permanent {
            return Err(GiveUp::Permanent);
        }
        if self.info.attempt >= self.info.max_attempts {
            return Err(GiveUp::Exhausted);
        }
        let mut delay = backoff::delay(
            c,
            self.info.attempt - 1,
            self.previous_delay,
            &mut rand::rng(),
        );
        if let ErrorClass::Throttled {
            retry_after: Some(ra),
        } = class
        {
            if ra > c.max_delay {
                return Err(GiveUp::RetryAfterTooLong(ra));
            }
            delay = delay.max(ra);
        }
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now + delay >= d) {
            return Err(GiveUp::Deadline);
        }
        if self.breaker && self.p.breaker.rejects_after(delay) {
            return Err(GiveUp::CircuitOpen);
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(GiveUp::NoRuntime);
        }
        if !self.p.budget.try_withdraw(now) {
            telemetry::budget_exhausted(self.p.name);
            return Err(GiveUp::Budget);
        }
        Ok(delay)
    }

    fn log_give_up(&self, why: &GiveUp, class: ErrorClass, error: Option<String>) {
        let (provider, method) = (self.p.name, self.info.method);
        let (n, max) = (self.info.attempt, self.info.max_attempts);
        let cls = class.as_str();
        let error = error.as_deref();
        match why {
            GiveUp::Permanent => tracing::warn!(
                target: "resilience", provider, method, attempt = n, max_attempts = max, class = cls, error,
                "[RETRY] Non-retryable error for {method} on attempt {n}/{max}: not retrying"
            ),
            GiveUp::Exhausted => tracing::error!(
                target: "resilience", provider, method, attempt = n, max_attempts = max, class = cls, error,
                "[RETRY] Giving up on {method} after {n}/{max} attempts ({cls} error)"
            ),
            GiveUp::RetryAfterTooLong(ra) => tracing::warn!(
                target: "resilience", provider, method, attempt = n, max_attempts = max, class = cls, error,
                retry_after_ms = ra.as_millis() as u64,
                "[RETRY] Giving up on {method} after attempt {n}/{max}: Retry-After {:.3}s is above the maximum delay", ra.as_secs_f64()
            ),
            GiveUp::Deadline => tracing::warn!(
                target: "resilience", provider, method, attempt = n, max_attempts = max, class = cls, error,
                "[RETRY] Giving up on {method} after attempt {n}/{max}: the next retry would pass the call's deadline"
            ),
            GiveUp::CircuitOpen => tracing::warn!(
                target: "resilience", provider, method, attempt = n, max_attempts = max, class = cls, error,
                "[RETRY] Giving up on {method} after attempt {n}/{max}: the breaker for {provider} is open"
            ),
            GiveUp::Budget => tracing::warn!(
                target: "resilience", provider, method, attempt = n, max_attempts = max, class = cls, error,
                "[RETRY] Giving up on {method} after attempt {n}/{max}: retry budget for {provider} exhausted"
            ),
            GiveUp::NoRuntime => tracing::error!(
                target: "resilience", provider, method, attempt = n, max_attempts = max, class = cls, error,
                "[RETRY] Giving up on {method} after attempt {n}/{max}: retries need a Tokio runtime with its time driver"
            ),
        }
    }

    fn finish(&self, outcome: CallOutcome) {
        if let (Some(m), Some(s)) = (self.metrics, self.started) {
            m.call(outcome, s.elapsed().as_secs_f64());
        }
    }
}
