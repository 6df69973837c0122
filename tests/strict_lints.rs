//! A crate with the lint levels a strict service sets, clippy's restriction lints on shadowing
//! and on literals among them: nothing of the expansion may trip them (`.ci/run` runs clippy
//! on this file, with `-D warnings`). Each attempt's copy of an argument binds the argument's
//! name again; the parameter it is copied from has a pattern of the expansion's (a `mut` of
//! ours, its name still the user's), so clippy does not read the copy as shadowing a binding of
//! the user's (`shadow_unrelated` at every named owned or `&mut` argument, `shadow_same` at a
//! `mut` reference one, `shadow_reuse` in an `#[async_trait]` impl). The labels
//! (`CallSite::new("fournisseur-é", "téléverser")`) are the expansion's literals, not the
//! body's (`non_ascii_literal` at a method's non-ASCII name).
#![deny(
    unused,
    unused_qualifications,
    unused_results,
    unreachable_pub,
    elided_lifetimes_in_paths,
    rust_2018_idioms,
    single_use_lifetimes,
    unused_lifetimes,
    trivial_casts,
    trivial_numeric_casts,
    unsafe_code
)]
#![deny(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    clippy::shadow_unrelated,
    clippy::shadow_reuse,
    clippy::shadow_same,
    clippy::non_ascii_literal,
    clippy::absolute_paths,
    clippy::std_instead_of_core,
    clippy::let_underscore_untyped,
    clippy::allow_attributes,
    clippy::allow_attributes_without_reason,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

#[expect(
    unsafe_code,
    clippy::redundant_pub_crate,
    reason = "the runner's variables are removed before main (see the module); its \
              `pub(super)` name check serves `tests/hermetic_env`"
)]
mod hermetic;

use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;
use std::sync::Arc;

use async_trait::async_trait;
use resilience::{Classify, ErrorClass, Jitter, ResilienceError, Settings, resilient};

#[derive(Debug, PartialEq, Eq)]
enum StrictError {
    Transient,
    Resilience(ResilienceError),
}

impl From<ResilienceError> for StrictError {
    fn from(e: ResilienceError) -> Self {
        Self::Resilience(e)
    }
}

impl Classify for StrictError {
    fn classify(&self) -> ErrorClass {
        match self {
            Self::Transient => ErrorClass::Transient,
            Self::Resilience(e) => e.classify(),
        }
    }
}

/// Fails the first call, then succeeds.
#[derive(Clone, Default)]
struct Flaky(Arc<AtomicU32>);

impl Flaky {
    fn hit(&self) -> Result<u32, StrictError> {
        match self.0.fetch_add(1, Ordering::SeqCst) {
            0 => Err(StrictError::Transient),
            n => Ok(n.saturating_add(1)),
        }
    }
}

struct Client {
    flaky: Flaky,
    sent: u32,
}

impl Client {
    /// Owned, `mut` owned and `&mut` arguments, each copied (or reborrowed) per attempt under
    /// its own name.
    #[resilient(provider = "strict")]
    async fn upload(
        &self,
        name: String,
        mut body: Vec<u8>,
        seen: &mut u32,
    ) -> Result<usize, StrictError> {
        body.push(0);
        *seen = seen.saturating_add(1);
        let attempt = self.flaky.hit()?;
        Ok(name
            .len()
            .saturating_add(body.len())
            .saturating_add(attempt as usize))
    }

    /// `&mut self` and an owned argument with `#[instrument]` below, which records it.
    #[resilient(provider = "strict")]
    #[tracing::instrument(skip(self))]
    async fn touch(&mut self, n: u32) -> Result<u32, StrictError> {
        self.sent = self.sent.saturating_add(n);
        Ok(self.sent)
    }

    /// A `mut` reference argument, and a `mut` owned one with one attempt.
    #[resilient(provider = "strict", retry = false)]
    async fn once(&self, mut s: String, mut t: &str) -> Result<usize, StrictError> {
        s.push('!');
        t = t.trim();
        Ok(s.len().saturating_add(t.len()))
    }

    /// Owned arguments, plain, unnamed and a pattern, moved into the one attempt in their
    /// places.
    #[resilient(provider = "strict", retry = false)]
    async fn once_owned(
        &self,
        name: String,
        _: Vec<u8>,
        (a, _b): (u32, String),
    ) -> Result<usize, StrictError> {
        Ok(name.len().saturating_add(a as usize))
    }

    /// A method named in French, calling a provider named in French.
    #[resilient(provider = "fournisseur-é")]
    async fn téléverser(&self) -> Result<u32, StrictError> {
        Ok(self.sent)
    }
}

/// Receivers cloned per attempt: held by the expansion while the caller's value stays the
/// first parameter.
#[derive(Clone)]
struct Owned(Flaky);

impl Owned {
    #[resilient(provider = "strict")]
    async fn consume(mut self, n: u32) -> Result<u32, StrictError> {
        self.0 = Flaky::default();
        Ok(self.0.hit().map_or(n, |_| 0))
    }

    #[resilient(provider = "strict")]
    async fn shared(self: Arc<Self>) -> Result<u32, StrictError> {
        let me = Arc::clone(&self);
        me.0.hit()
    }
}

#[async_trait]
trait Boxed {
    async fn fill(&self, tag: String, buf: &mut Vec<u8>, s: &str) -> Result<usize, StrictError>;
    async fn bump(&self, pair: &mut (u32, u32)) -> Result<u32, StrictError>;
}

#[async_trait]
impl Boxed for Client {
    #[resilient(provider = "strict")]
    async fn fill(
        &self,
        tag: String,
        buf: &mut Vec<u8>,
        mut s: &str,
    ) -> Result<usize, StrictError> {
        s = s.trim();
        buf.push(1);
        let attempt = self.flaky.hit()?;
        Ok(tag
            .len()
            .saturating_add(buf.len())
            .saturating_add(s.len())
            .saturating_add(attempt as usize))
    }

    /// A pattern on a `&mut` argument, bound per attempt under a name of the expansion's.
    #[resilient(provider = "strict")]
    async fn bump(&self, (a, b): &mut (u32, u32)) -> Result<u32, StrictError> {
        *a = a.saturating_add(1);
        let attempt = self.flaky.hit()?;
        Ok(b.saturating_add(attempt))
    }
}

/// The derive under these lints: a transparent variant, and fixed classes over a `Classify`
/// field (whose `Retry-After` they forward) and over other fields.
#[derive(Debug, Classify)]
enum DerivedError {
    #[classify(transparent)]
    Resilience(ResilienceError),
    #[classify(throttled)]
    Overloaded(resilience::HttpError),
    #[classify(transient)]
    Gateway {
        status: u16,
        source: resilience::HttpError,
    },
    #[classify(permanent)]
    Refused,
}

/// A struct of a fixed class over a `Classify` field.
#[derive(Debug, Classify)]
#[classify(transient)]
struct Upstream(resilience::HttpError);

fn fast(provider: &str) {
    let configured = resilience::configure(
        provider,
        Settings::new()
            .jitter(Jitter::None)
            .base_delay(Duration::from_millis(10))
            .failure_threshold(100),
    );
    assert!(configured.is_ok(), "{configured:?}");
}

#[tokio::test(start_paused = true)]
async fn each_attempt_still_gets_its_own_copies() {
    fast("strict");
    let mut client = Client {
        flaky: Flaky::default(),
        sent: 0,
    };
    let mut seen = 0;
    // The first attempt's `push` is on its own copy: the second sees `[1]` again.
    assert_eq!(
        client.upload(String::from("ab"), vec![1], &mut seen).await,
        Ok(2 + 2 + 2)
    );
    assert_eq!(seen, 2);
    assert_eq!(client.touch(3).await, Ok(3));
    assert_eq!(client.once(String::from("a"), " b ").await, Ok(3));
    assert_eq!(client.téléverser().await, Ok(3));
    assert_eq!(
        client
            .once_owned(String::from("ab"), vec![], (1, String::new()))
            .await,
        Ok(3)
    );
    assert_eq!(Owned(Flaky::default()).consume(4).await, Ok(4));
    assert_eq!(Arc::new(Owned(Flaky::default())).shared().await, Ok(2));
    let mut buf = Vec::new();
    client.flaky = Flaky::default();
    // Both attempts push into the caller's buffer, which each reborrows.
    assert_eq!(
        client.fill(String::from("x"), &mut buf, " y ").await,
        Ok(1 + 2 + 1 + 2)
    );
    assert_eq!(buf, [1, 1]);
    client.flaky = Flaky::default();
    let mut pair = (0, 5);
    assert_eq!(client.bump(&mut pair).await, Ok(5 + 2));
    assert_eq!(pair, (2, 5), "both attempts bumped the caller's pair");
    let http = || resilience::HttpError::from_header(503, Some("2"));
    let two = Some(Duration::from_secs(2));
    assert_eq!(DerivedError::Overloaded(http()).retry_after(), two);
    let gateway = DerivedError::Gateway {
        status: 503,
        source: http(),
    };
    assert!(matches!(gateway, DerivedError::Gateway { status: 503, .. }));
    assert_eq!(gateway.retry_after(), two);
    assert_eq!(DerivedError::Refused.retry_after(), None);
    assert_eq!(Upstream(http()).retry_after(), two);
    assert_eq!(
        DerivedError::Resilience(ResilienceError::Draining {
            provider: "strict",
            retry_in: None
        })
        .classify(),
        ErrorClass::Permanent
    );
}
