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
//! [`configure`](crate::configure), [`Builder::init`](crate::Builder::init),
//! [`CallSite::execute`](crate::CallSite::execute)) then finds, for each name, a provider
//! made fresh for this isolation:
//!
//! - its breaker closed, its budget full, its counts at 0;
//! - configured by the code run under the guard alone: the built-in defaults, under what
//!   `Builder::init` and `configure` set there (the service's own start-up code, called from
//!   the test). Neither `RESILIENCE_*` variables nor what code set up for the whole process
//!   (a test without a guard, a start-up `init`) reach it, so no other test and no machine's
//!   environment changes a test's result;
//! - `configure` and `Builder::init` check it as they check the process's providers, and may
//!   set it up differently from another test's provider of the same name.
//! - [`drain()`](crate::drain) drains the isolation's providers only,
//!   [`is_draining()`](crate::is_draining) answers for it, and a
//!   [`draining()`](crate::draining) future made on the thread waits for it: a test can drive
//!   its service's shutdown while other tests retry. A new isolation starts undrained, and the
//!   process's `drain()` (called under no guard) does not reach it.
//!
//! Logs name it as the global one. Its calls count in the metrics under the name, with the
//! process's (they are the process's counters: a test that asserts on them needs a process of
//! its own, a test binary or nextest); its breaker's state and transitions are not published,
//! so a test cannot set the process's gauge to a state its provider is not in.
//! [`providers()`](crate::providers) and `telemetry::health()` list the process's providers.
//! Assert on the [`Provider`]'s state and counts, on `current_call()` or on the fault
//! server's counts. An isolation's providers live until the process ends (about 1 KB
//! each, plus a failure-rate window's bits: up to 512 bytes).
//!
//! A call keeps the provider it found at its start (its first poll) to its end, wherever it
//! is polled after.
//!
//! The thread is what is isolated, not the task: `#[tokio::test]` runs its test on one thread
//! (the default `current_thread` flavour), tasks it spawns included (not `spawn_blocking`'s,
//! which run on the blocking pool). With `#[tokio::test(flavor = "multi_thread")]` the test's
//! own body still runs on its thread, under its guard, but every task it spawns (or code it
//! calls spawns: a service's background worker) runs on the runtime's workers, where no guard
//! is: wrap them with [`Isolation::run`] (the guard's [`isolation()`](Isolated::isolation)),
//! or they use the process's providers, shared with every other test (a warning says so, once
//! per provider name, while a guard is alive on another thread).
//! A future on the test's thread that holds a guard of its own across an `.await` (a branch of
//! `join!`, a `spawn_local` task) puts every other future on that thread under its providers
//! while it holds it. So take one guard, on the test's first line; a helper that takes its own
//! and returns leaves the test on the process's providers. A [`Provider`] handle taken before
//! the guard keeps the provider it was taken for.
//!
//! Needs the `testing` feature, which is for dev-dependencies only: with it, every call looks
//! up a thread-local list first. (Without it, `resilience::testing` is not found: "cannot
//! find `testing` in `resilience`".) Cargo's resolver 2 or later (edition 2021 and up; in a
//! virtual workspace, only with `resolver = "2"` or later in its `[workspace]`: without it,
//! resolver 1, `cargo build` has it too) keeps it out of `cargo build` and `cargo run`, but
//! not out of builds that include tests or benches (`--all-targets`, `cargo bench`), nor out
//! of a `cargo build --workspace` with a member that has it in `[dependencies]` (a test-support
//! crate): benchmark and ship from a build without it.
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
//! // Fast retries for this test, whatever another test, the process or the environment says.
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
//! assert_eq!(resilience::provider("glm").consecutive_failures(), 0);
//! # }
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use crate::config::{Config, Settings};
use crate::drain::Switch;
use crate::error::{ConfigError, ConfigProblem};
use crate::registry::{Provider, ProviderInner, add_new, code_config, make};

thread_local! {
    /// The guards alive on this thread, each with the scope it entered, the newest last: its
    /// providers are the ones used.
    static ENTERED: RefCell<Vec<(u64, Arc<Scope>)>> = const { RefCell::new(Vec::new()) };
    /// The names this thread knows [`warn_outside`] has spoken of (see there).
    static WARNED_HERE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Tells guards apart: one isolation may be entered twice on a thread.
static GUARD_IDS: AtomicU64 = AtomicU64::new(0);

/// Guards alive in the process, on any thread: while there is one, a call made outside every
/// isolation is most likely one a test meant to isolate, on a thread its guard does not
/// reach (a task spawned onto a `multi_thread` runtime's workers), which would otherwise share
/// the process's providers without a word ([`warn_outside`]). A guard leaked with
/// `mem::forget` counts for ever.
static ALIVE: AtomicUsize = AtomicUsize::new(0);

/// The provider names [`warn_outside`] has spoken of: once each per process, so that a test
/// run without a guard on purpose does not use up the warning another name needs.
static WARNED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// One isolation: its providers and the code settings given under it, behind one lock held
/// from a check to its insert, as the registry's is (threads of one isolation may make or
/// configure a name at once). Nothing done under it logs or calls out.
#[derive(Default)]
struct Scope(Mutex<State>);

#[derive(Default)]
struct State {
    providers: BTreeMap<String, &'static ProviderInner>,
    /// `Builder::defaults` under it.
    global: Settings,
    /// `Builder::provider` and `configure` under it, by name.
    code: BTreeMap<String, Settings>,
    /// What `drain()` turns on under it, for its providers only; made at first need and
    /// leaked, as its providers are, since they point to it.
    drain: Option<&'static Switch>,
}

impl Scope {
    /// A panic in a test while it was held leaves nothing half-written.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn drain(&mut self) -> &'static Switch {
        self.drain
            .get_or_insert_with(|| Box::leak(Box::new(Switch::new())))
    }

    /// `name`'s settings: `own` (or its code settings) over the defaults.
    fn settings(&self, name: &str, own: Option<&Settings>) -> Settings {
        match own.or_else(|| self.code.get(name)) {
            Some(own) => own.over(&self.global),
            None => self.global.clone(),
        }
    }

    /// The names its code or its providers know (a name may come twice), checked against each
    /// other as the registry checks the process's.
    fn names(&self) -> Vec<&str> {
        self.code
            .keys()
            .chain(self.providers.keys())
            .map(String::as_str)
            .collect()
    }

    fn config(&self, name: &str, settings: &Settings) -> (Config, Vec<ConfigProblem>) {
        code_config(name, settings, &self.names())
    }

    fn make(&mut self, name: &str, config: Config) -> &'static ProviderInner {
        let made = make(name, config, false, self.drain());
        self.providers.insert(name.to_owned(), made);
        made
    }
}

/// A set of providers of a test's own. Cheap to clone, and `Send`: enter it on each thread
/// the test runs code on ([`enter`](Self::enter)), or wrap the futures it spawns
/// ([`run`](Self::run)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use resilience::testing::Isolation;
///
/// let isolation = Isolation::new();
/// let worker = isolation.clone();
/// let state = tokio::spawn(worker.run(async {
///     resilience::provider("doc-iso").force_open();
///     resilience::provider("doc-iso").state()
/// }))
/// .await
/// .unwrap();
/// assert_eq!(state, resilience::CircuitState::ForcedOpen);
/// let _entered = isolation.enter();
/// assert_eq!(resilience::provider("doc-iso").state(), state, "the same providers");
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Isolation(Arc<Scope>);

impl std::fmt::Debug for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Isolation")
            .field("providers", &self.0.lock().providers.keys())
            .finish()
    }
}

impl Isolation {
    /// Providers no code has used yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes these the providers of this thread until the guard drops.
    pub fn enter(&self) -> Isolated {
        let id = GUARD_IDS.fetch_add(1, Ordering::Relaxed);
        ENTERED.with(|e| e.borrow_mut().push((id, self.0.clone())));
        ALIVE.fetch_add(1, Ordering::Relaxed);
        Isolated {
            id,
            isolation: self.clone(),
            _one_thread: PhantomData,
        }
    }

    /// `future`, run with these providers on whichever thread polls it: for a task spawned
    /// onto a `multi_thread` runtime's workers.
    pub fn run<F: Future>(&self, future: F) -> Run<F> {
        Run {
            future,
            isolation: self.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// [`Isolation::run`]'s future.
    #[must_use = "futures do nothing unless polled"]
    pub struct Run<F> {
        #[pin]
        future: F,
        isolation: Isolation,
    }
}

impl<F> std::fmt::Debug for Run<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").finish_non_exhaustive()
    }
}

impl<F: Future> Future for Run<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.isolation.enter();
        this.future.poll(cx)
    }
}

/// Gives this thread providers of its own until the guard drops: `Isolation::new().enter()`.
/// See the [module](self).
pub fn isolate() -> Isolated {
    Isolation::new().enter()
}

/// The guard of [`isolate`] and [`Isolation::enter`]: this thread's calls use its providers
/// until it drops. Bind it to a name (`let _isolated = …`): `let _ = isolate()` drops it at
/// once. Guards nest: the newest one alive decides, whatever order they drop in.
#[must_use = "the providers are this thread's only while the guard lives"]
pub struct Isolated {
    id: u64,
    isolation: Isolation,
    /// Not `Send`: it undoes its entry on this thread when it drops.
    _one_thread: PhantomData<*const ()>,
}

impl Isolated {
    /// The providers this guard entered, to enter on another thread or to wrap a task with.
    pub fn isolation(&self) -> Isolation {
        self.isolation.clone()
    }
}

impl std::fmt::Debug for Isolated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Isolated").field(&self.isolation).finish()
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        ALIVE.fetch_sub(1, Ordering::Relaxed);
        // During the thread's teardown the list may be gone already: nothing to undo.
        let _ = ENTERED.try_with(|e| {
            e.borrow_mut().retain(|(id, _)| *id != self.id);
        });
    }
}

fn current() -> Option<Arc<Scope>> {
    ENTERED
        .try_with(|e| e.borrow().last().map(|(_, s)| s.clone()))
        .ok()
        .flatten()
}

/// The provider `name` means on this thread, when an isolation is entered: made on first use
/// from the settings given under it.
pub(crate) fn scoped(name: &str) -> Option<&'static ProviderInner> {
    let Some(scope) = current() else {
        if ALIVE.load(Ordering::Relaxed) > 0 {
            warn_outside(name);
        }
        return None;
    };
    let mut state = scope.lock();
    if let Some(p) = state.providers.get(name) {
        return Some(p);
    }
    // The settings were checked as they were given (`Builder::init`, `configure`), so what is
    // left is the name's own problems (` kimi`, or variables another name reads).
    let (config, problems) = state.config(name, &state.settings(name, None));
    let made = state.make(name, config);
    // As the registry's are, so that a test sees what its code will log; after the
    // isolation's lock, which a log layer that makes a provider would wait on.
    drop(state);
    for p in problems {
        tracing::error!(
            target: "resilience",
            provider = made.name, variable = p.variable.as_str(), expected = %p.expected,
            "[CONFIG] {p}.",
        );
    }
    crate::registry::on_made(made);
    Some(made)
}

/// A call to `name` outside every isolation while a guard is alive on another thread: said
/// once per name and process, at warn, as the call uses the process's provider, shared with
/// every test (helper-246: a task spawned onto a worker made its calls there, on the defaults
/// and the environment's settings, and nothing said so).
///
/// Where no subscriber takes it (helper-247: the calls it is about run on threads that see
/// only the global subscriber, and a suite that captures logs per thread, or sets its
/// subscriber later, spent the warning unseen), it is written to the process's standard error
/// itself, not through `eprintln!`: libtest captures that per test and shows it only for a
/// failing one, and a worker's output went to the capture of whichever test built its
/// runtime, so the one warning was lost with a passing test (helper-248); and a closed stderr
/// would panic the call.
///
/// After the first time a thread sees a name, it answers from its own list, without the lock:
/// held on every such call, it slowed calls outside an isolation 3× on one thread and 80× on
/// four (helper-248, while a guard was alive elsewhere).
#[cold]
fn warn_outside(name: &str) {
    // During the thread's teardown its list may be gone: the process's list decides.
    let seen_here = WARNED_HERE
        .try_with(|seen| {
            let mut seen = seen.borrow_mut();
            let known = seen.iter().any(|n| n == name);
            if !known {
                seen.push(name.to_owned());
            }
            known
        })
        .unwrap_or(false);
    if seen_here {
        return;
    }
    {
        let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
        if warned.iter().any(|n| n == name) {
            return;
        }
        warned.push(name.to_owned());
    }
    let shown = name.escape_debug();
    let text = format!(
        "[CONFIG] A call to provider `{shown}` ran outside every testing::isolate() while a \
         test's guard was alive on another thread: it used the process's provider, shared with \
         every test. A task spawned onto a multi_thread runtime's workers is not under its \
         test's guard: wrap it, tokio::spawn(isolated.isolation().run(fut)); on a thread of \
         your own or in spawn_blocking, hold isolation.enter() there; a test without a guard \
         shares the process's providers (said once for the name)"
    );
    if tracing::enabled!(target: "resilience", tracing::Level::WARN) {
        tracing::warn!(target: "resilience", provider = name, "{text}");
    } else {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), "WARN resilience: {text}");
    }
}

/// `configure` under an isolation, as the global one: settings merge with the ones given the
/// name before, and may not change a provider already made. `None` when none is entered.
pub(crate) fn configure(name: &str, settings: Settings) -> Option<Result<Provider, ConfigError>> {
    let scope = current()?;
    let mut state = scope.lock();
    let replaced = crate::registry::replaced_for(name, &settings, state.code.get(name));
    let merged = settings.after(state.code.get(name));
    let (config, mut problems) = state.config(name, &state.settings(name, Some(&merged)));
    let existing = state.providers.get(name).copied();
    if let Some(p) = existing {
        problems.extend(p.config.changes(&config, name));
    }
    if !problems.is_empty() {
        return Some(Err(ConfigError::new(problems)));
    }
    state.code.insert(name.to_owned(), merged);
    if let Some(p) = existing {
        drop(state);
        crate::registry::warn_replaced("configure()", &replaced);
        return Some(Ok(Provider(p)));
    }
    let made = state.make(name, config);
    drop(state);
    crate::registry::warn_replaced("configure()", &replaced);
    crate::registry::on_made(made);
    Some(Ok(Provider(made)))
}

/// `Builder::init` under an isolation: its settings are the isolation's, checked as the
/// global `init` checks code settings (no variable is read). `None` when none is entered.
pub(crate) fn init(
    defaults: &Settings,
    providers: &[(String, Settings)],
    strict: bool,
) -> Option<Result<(), ConfigError>> {
    let scope = current()?;
    let mut state = scope.lock();
    // A named site's provider is no slip, as for the process's `init()`. (Not among the
    // names checked for clashes below: the sites are the process's, made by any test.)
    let code_near = crate::registry::code_near_misses(
        providers,
        state
            .providers
            .keys()
            .map(String::as_str)
            .chain(crate::registry::named_site_providers()),
    );
    // What this `init()` sets over an earlier one's (or `configure()`'s) code settings: said
    // once installed, as the process's `init()` says it.
    let replaced = crate::registry::replaced_by(defaults, &state.global, providers, |name| {
        state.code.get(name)
    });
    let mut next = State {
        providers: state.providers.clone(),
        global: defaults.over(&state.global),
        code: state.code.clone(),
        drain: state.drain,
    };
    for (name, s) in providers {
        let merged = s.clone().after(next.code.get(name));
        next.code.insert(name.clone(), merged);
    }
    let (_, mut problems) = next.global.resolve();
    // Each once: a name may be both configured and made. With every `#[resilient]` method's
    // provider, made or not, as the process's `init` checks them: a start-up that clashes
    // with one (`kimi.v2` beside a method's `kimi-v2`) is refused in a test as in production.
    let names: std::collections::BTreeSet<String> = next
        .names()
        .into_iter()
        .chain(crate::call::CallSite::registered().map(|s| s.provider_name()))
        .map(str::to_owned)
        .collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    for name in &names {
        let (config, found) = code_config(name, &next.settings(name, None), &all);
        add_new(&mut problems, found);
        if let Some(existing) = next.providers.get(name) {
            problems.extend(existing.config.changes(&config, name));
        }
    }
    if strict {
        add_new(
            &mut problems,
            crate::registry::code_near_problems(&code_near),
        );
    }
    let installed = problems.is_empty();
    let result = if installed {
        *state = next;
        Ok(())
    } else {
        Err(ConfigError::new(problems))
    };
    drop(state);
    if installed {
        crate::registry::warn_replaced("init()", &replaced);
    }
    // In strict mode, they are among the problems returned.
    if !strict {
        for (given, names) in &code_near {
            crate::registry::warn_code_near_miss(given, names);
        }
    }
    Some(result)
}

/// `drain()` under an isolation: turns on its switch, for its providers alone, and wakes
/// their calls asleep in a backoff. `false` when none is entered.
pub(crate) fn drain_isolation() -> bool {
    let Some(scope) = current() else {
        return false;
    };
    let mut state = scope.lock();
    let switch = state.drain();
    // On before the providers are read, under the lock their making takes: one made after
    // this is not in the list, and its calls see the switch.
    if switch.turn_on() {
        let providers: Vec<_> = state.providers.values().copied().collect();
        drop(state);
        switch.wake_waiters();
        crate::drain::announce();
        crate::drain::wake(switch, providers);
    }
    true
}

/// The switch `drain()` turns on under the isolation entered on this thread, if any.
pub(crate) fn isolation_switch() -> Option<&'static Switch> {
    Some(current()?.lock().drain())
}

/// `is_draining()` under an isolation; `None` when none is entered.
pub(crate) fn isolation_draining() -> Option<bool> {
    let scope = current()?;
    Some(scope.lock().drain.is_some_and(|s| s.is_on()))
}
