//! What `#[resilient]` expansions name: `::resilience::__private::…`. Not a public API.

pub use crate::call::{Attempt, Backoff, Call, CallSite, Hooks, IsResult, Step, hooks};
pub use core::option::Option;
pub use core::result::Result;

/// Clones an owned argument for the next attempt.
#[diagnostic::on_unimplemented(
    message = "owned argument of type `{Self}` must implement `Clone`, because each retry needs its own copy",
    label = "this argument is not `Clone`",
    note = "take it by reference, implement `Clone` for it, or use `#[resilient(provider = \"…\", retry = false)]`"
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

/// A fresh copy of an owned argument for one attempt.
#[inline]
pub fn clone_arg<T: CloneArg>(v: &T) -> T {
    v.clone_arg()
}
