//! The runtime behind `#[resilient]`: per-provider circuit breakers, retry with backoff and
//! jitter, retry budgets, error classification, configuration and telemetry.
//!
//! Depend on the `resilience` facade rather than on this crate; it re-exports everything here.

// Two audited `unsafe` uses: one block (`context::current_call`) keeps the hot path free of
// copies, and the x86 `rdtsc` intrinsic (`tsc`), an unsafe function that touches no memory,
// reads a call's clock inline; everything else is safe code.
#![deny(unsafe_code)]
#![warn(missing_docs)]
// docs.rs builds with every feature: show which items need which.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backoff;
mod breaker;
mod budget;
mod call;
mod classify;
mod config;
mod context;
mod drain;
mod error;
mod http;
mod invisible;
mod redact;
mod registry;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
mod tsc;

#[doc(hidden)]
pub mod __private;

/// Marks the branch it is called in as unlikely, so the compiler lays the likely path out
/// straight, with no taken jump: on a hot path of about 30 instructions, each taken jump
/// costs about a cycle (the branch predictor's), and the calls' straight path took 18 of
/// them where 11 remain (`hot_path_probe`; see `call.rs`). `std::hint::cold_path` does the
/// same from Rust 1.95; this is the form older compilers (back to our 1.88) honour: a call to
/// a `#[cold]` function is what marks the branch, and, inlined, it costs nothing.
#[cold]
#[inline(always)]
pub(crate) fn cold_path() {}

pub use breaker::CircuitState;
pub use call::CallSite;
pub use classify::{Classify, ErrorClass, classify_status};
pub use config::{Config, Jitter, Settings, env_provider_name, provider_variable, variables};
pub use context::{CallInfo, IdempotencyKey, current_call};
pub use drain::{drain, draining, is_draining};
pub use error::{ConfigError, ConfigProblem, ParseNameError, ResilienceError};
#[cfg(feature = "reqwest")]
pub use http::ResponseExt;
pub use http::{HttpError, parse_retry_after};
pub use redact::redact;
pub use registry::{
    Builder, Provider, call_site, call_site_without_retry, check_names, configure, init, provider,
    providers,
};
