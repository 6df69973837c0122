//! Providers of a test's own, for tests that run at the same time in one process.
//!
//! A provider is global: one breaker, retry policy and budget per name for the whole process.
//! That is what a service needs, and what tests that run in parallel (`cargo test` runs a
//! binary's tests on several threads) must not share: one test's failures open the breaker
//! another test is refused by, its successes clear the failure count another test is
//! counting, its `configure()` is refused because another test configured the name first.
//!
//! [`isolate`] gives the calling thread providers of its own until its guard drops. Every
//! call made on that thread (a `#[resilient]` method, [`provider`](crate::provider),
//! [`configure`](crate::configure), [`CallSite::execute`](crate::CallSite::execute)) then
//! finds, for each name, a provider made fresh for this guard:
//!
//! - its breaker closed, its budget full, its counts at 0;
//! - its configuration from the code alone: the built-in defaults, under what
//!   [`Builder`](crate::Builder) and [`configure`](crate::configure) set for every test, under
//!   what this test's `configure` sets. `RESILIENCE_*` variables are not read, so a machine's
//!   environment does not change a test's result;
//! - `configure` may set it up differently from another test's provider of the same name.
//!
//! Logs name it as the global one. Its calls count in the metrics under the name, with the
//! process's (they are the process's counters); its breaker's state and moves are not
//! published, so a test cannot set the process's gauge to a state its provider is not in.
//! Assert on the [`Provider`]'s state and counts, on `current_call()` or on the fault
//! server's counts. A guard's providers live until the process ends (a few hundred bytes
//! each).
//!
//! The thread is what is isolated, not the task: `#[tokio::test]` runs its test on one thread
//! (the default `current_thread` flavour), tasks it spawns included. On a `multi_thread`
//! runtime, tasks spawned onto its workers use the global providers; a task on the test's
//! thread that takes a guard of its own changes what the test sees while it holds it. The
//! guard cannot be sent to another thread. A [`Provider`] handle taken before the guard keeps
//! the provider it was taken for.
//!
//! Needs the `testing` feature, which is for dev-dependencies only: with it, every call looks
//! up a thread-local map first.
//!
//! ```toml
//! [dev-dependencies]
//! resilience = { version = "0.1", features = ["testing"] }
//! ```
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use resilience::{CircuitState, Settings};
//! use std::time::Duration;
//!
//! let _isolated = resilience::testing::isolate();
//! // Fast retries for this test, whatever another test or the environment says.
//! let glm = resilience::configure(
//!     "glm",
//!     Settings::new().base_delay(Duration::ZERO).failure_threshold(1),
//! )
//! .unwrap();
//! let down: Result<(), std::io::Error> = glm
//!     .execute(|| async { Err(std::io::ErrorKind::ConnectionReset.into()) })
//!     .await;
//! assert!(down.is_err());
//! assert_eq!(resilience::provider("glm").state(), CircuitState::Open);
//! drop(_isolated);
//! // The process's own `glm` never saw those failures.
//! assert_eq!(resilience::provider("glm").state(), CircuitState::Closed);
//! # }
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::rc::Rc;

use crate::config::Settings;
use crate::error::ConfigError;
use crate::registry::{Provider, ProviderInner, code_config, make};

thread_local! {
    /// The guards alive on this thread, the newest last: its providers are the ones used.
    static GUARDS: RefCell<Vec<Rc<Scope>>> = const { RefCell::new(Vec::new()) };
}

/// One guard's providers, and the settings its `configure` calls gave, by name.
#[derive(Default)]
struct Scope {
    providers: RefCell<BTreeMap<String, &'static ProviderInner>>,
    code: RefCell<BTreeMap<String, Settings>>,
}

/// Gives this thread providers of its own until the guard drops (see the [module](self)).
/// Guards nest: the newest guard alive decides, and when it drops the one before it does
/// again, whatever order they drop in.
pub fn isolate() -> Isolated {
    let scope = Rc::new(Scope::default());
    GUARDS.with(|g| g.borrow_mut().push(scope.clone()));
    Isolated {
        scope,
        _one_thread: PhantomData,
    }
}

/// The guard [`isolate`] returns: this thread's calls use its providers until it drops.
/// Bind it to a name (`let _isolated = …`): `let _ = isolate()` drops it at once.
#[must_use = "the providers are this thread's only while the guard lives"]
pub struct Isolated {
    scope: Rc<Scope>,
    /// Not `Send`: the guard restores this thread's providers when it drops.
    _one_thread: PhantomData<*const ()>,
}

impl std::fmt::Debug for Isolated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Isolated").finish_non_exhaustive()
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        // During the thread's teardown the list may be gone already: nothing to undo.
        let _ = GUARDS.try_with(|g| {
            let mut guards = g.borrow_mut();
            if let Some(i) = guards.iter().rposition(|s| Rc::ptr_eq(s, &self.scope)) {
                guards.remove(i);
            }
        });
    }
}

fn current() -> Option<Rc<Scope>> {
    GUARDS
        .try_with(|g| g.borrow().last().cloned())
        .ok()
        .flatten()
}

/// The provider `name` means on this thread, when it is under a guard: made on first use
/// from the code's settings.
pub(crate) fn scoped(name: &str) -> Option<&'static ProviderInner> {
    let scope = current()?;
    if let Some(p) = scope.providers.borrow().get(name) {
        return Some(p);
    }
    // The code's settings were checked as they were given (`Builder::init`, `configure`);
    // a conflict only the environment resolved falls back as the global provider's does.
    // Made with no borrow held: a log layer may call the provider as it is made.
    let (config, _) = code_config(name, &Settings::new());
    let made = make(name, config, false);
    Some(
        *scope
            .providers
            .borrow_mut()
            .entry(name.to_owned())
            .or_insert(made),
    )
}

/// `configure` under a guard, as the global one: settings merge with the ones this guard's
/// `configure` gave the name before, and may not change a provider already made. `None`
/// when this thread has no guard.
pub(crate) fn configure(name: &str, settings: Settings) -> Option<Result<Provider, ConfigError>> {
    let scope = current()?;
    let merged = match scope.code.borrow().get(name) {
        Some(old) => settings.over(old),
        None => settings,
    };
    let (config, mut problems) = code_config(name, &merged);
    let existing = scope.providers.borrow().get(name).copied();
    if let Some(p) = existing {
        problems.extend(p.config.changes(&config, name));
    }
    if !problems.is_empty() {
        return Some(Err(ConfigError::new(problems)));
    }
    scope.code.borrow_mut().insert(name.to_owned(), merged);
    let p = existing.unwrap_or_else(|| {
        let made = make(name, config, false);
        *scope
            .providers
            .borrow_mut()
            .entry(name.to_owned())
            .or_insert(made)
    });
    Some(Ok(Provider(p)))
}
