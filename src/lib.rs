//! Reliable calls to flaky remote providers, by annotation.
//!
//! ```
//! use resilience::{resilient, Classify, ResilienceError};
//!
//! // Each variant's class, `Retry-After` and log text are its field's own.
//! #[derive(Debug, Classify)]
//! enum UploadError {
//!     #[classify(transparent)]
//!     Http(resilience::HttpError),
//!     #[classify(transparent)]
//!     Resilience(ResilienceError),
//! }
//!
//! impl From<ResilienceError> for UploadError {
//!     fn from(e: ResilienceError) -> Self { UploadError::Resilience(e) }
//! }
//!
//! trait FileProvider {
//!     async fn upload_file(&self, name: &str, bytes: Vec<u8>) -> Result<String, UploadError>;
//! }
//!
//! struct Kimi;
//!
//! impl FileProvider for Kimi {
//!     #[resilient(provider = "doc-lib-kimi")]
//!     async fn upload_file(&self, name: &str, bytes: Vec<u8>) -> Result<String, UploadError> {
//!         let call = resilience::current_call().unwrap();
//!         // Send `call.idempotency_key` as the `Idempotency-Key` header here.
//!         Ok(format!("{name}:{}:{}", bytes.len(), call.attempt))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! assert_eq!(Kimi.upload_file("a.txt", vec![1, 2]).await.unwrap(), "a.txt:2:1");
//! # }
//! ```
//!
//! See the README for the semantics, every setting and the metrics.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use resilience_runtime::*;
// Named as well as globbed: without the feature, rustc's "cannot find `testing`" then adds
// that the item is gated behind the `testing` feature (a glob brings no such note).
#[cfg(feature = "testing")]
#[doc(inline)]
pub use resilience_runtime::testing;

#[doc(inline)]
pub use resilience_macros::resilient;

/// The derive of the trait of the same name (a macro and a trait may share it, as serde's do).
#[doc(inline)]
pub use resilience_macros::Classify;
