//! A crate that depends on `resilience` as `res`, where `::resilience` does not exist: it
//! compiles only if `#[resilient(crate = …)]` and `#[classify(crate = …)]` make every path of
//! their expansions go through the path given. Its tests run them.

use std::sync::atomic::{AtomicU32, Ordering};

use res::{Classify, ResilienceError, resilient};

#[derive(Debug, Classify)]
#[classify(crate = res)]
pub enum UploadError {
    #[classify(transparent)]
    Resilience(ResilienceError),
    #[classify(transient)]
    Flaky,
    #[classify(permanent)]
    Refused,
}

impl From<ResilienceError> for UploadError {
    fn from(e: ResilienceError) -> Self {
        UploadError::Resilience(e)
    }
}

/// A struct, with the path as a string (serde's and tokio's form), beside its class.
#[derive(Debug, Classify)]
#[classify(crate = "res")]
#[classify(throttled)]
pub struct Busy;

/// The path beside the class, in one attribute.
#[derive(Debug, Classify)]
#[classify(permanent, crate = res)]
pub struct Gone;

/// `log` beside the path (its text goes through the path's `__private::Cow`), on a generic
/// type whose `Display` holds for some arguments only.
#[derive(Debug, Classify)]
#[classify(permanent, crate = res, log)]
pub struct Refusal<T>(pub T);

impl<T: std::fmt::Display> std::fmt::Display for Refusal<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused: {}", self.0)
    }
}

/// A fixed class over a `Classify` field forwards its `Retry-After` through the path given.
#[derive(Debug, Classify)]
#[classify(transient, crate = res)]
pub struct Upstream(pub res::HttpError);

/// A wrapper crate's re-export: what its own macros name by `$crate`.
pub mod sdk {
    pub use res as resilience;
}

/// How a wrapper crate writes methods for its users: `$crate` names the wrapper wherever the
/// macro is used, and keeps doing so through the expansion.
#[macro_export]
macro_rules! sdk_method {
    ($name:ident, $provider:literal) => {
        pub async fn $name(n: u32) -> Result<u32, $crate::UploadError> {
            #[$crate::sdk::resilience::resilient(provider = $provider, crate = $crate::sdk::resilience)]
            async fn inner(n: u32) -> Result<u32, $crate::UploadError> {
                Ok(n * 2)
            }
            inner(n).await
        }
    };
}

sdk_method!(double, "renamed-sdk");

pub struct Client {
    pub attempts: AtomicU32,
}

impl Client {
    /// Fails transiently once, then succeeds: the retry clones `body` through the path given.
    #[resilient(provider = "renamed-client", crate = res)]
    pub async fn upload(&self, body: Vec<u8>) -> Result<usize, UploadError> {
        if self.attempts.fetch_add(1, Ordering::Relaxed) == 0 {
            return Err(UploadError::Flaky);
        }
        Ok(body.len())
    }

    #[resilient(provider = "renamed-client", crate = ::res, retry = false)]
    pub async fn delete(&self, _id: u32) -> Result<(), UploadError> {
        Err(UploadError::Refused)
    }
}

// The runner's resilience variables are removed before the tests' `main` (see the module).
#[cfg(test)]
#[path = "../../hermetic/mod.rs"]
mod hermetic;

#[cfg(test)]
mod tests {
    use super::*;
    use res::{Classify, ErrorClass};

    #[tokio::test(start_paused = true)]
    async fn the_expansions_run_through_the_path_given() {
        let client = Client {
            attempts: AtomicU32::new(0),
        };
        assert_eq!(client.upload(vec![1, 2, 3]).await.unwrap(), 3);
        assert_eq!(client.attempts.load(Ordering::Relaxed), 2, "retried once");
        assert!(matches!(client.delete(1).await, Err(UploadError::Refused)));
        assert_eq!(double(21).await.unwrap(), 42);
        assert_eq!(UploadError::Flaky.classify(), ErrorClass::Transient);
        assert_eq!(Busy.classify(), ErrorClass::Throttled { retry_after: None });
        assert_eq!(Gone.classify(), ErrorClass::Permanent);
        assert_eq!(Refusal(7).log_summary().as_deref(), Some("refused: 7"));
        let upstream = Upstream(res::HttpError::from_header(503, Some("2")));
        assert_eq!(upstream.classify(), ErrorClass::Transient);
        assert_eq!(
            upstream.retry_after(),
            Some(std::time::Duration::from_secs(2))
        );
    }
}
