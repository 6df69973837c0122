//! The global, lazily filled map from provider name to its breaker, retry policy and budget.
//!
//! A provider is created on first use and never dropped (its state must outlive any one
//! struct instance or task), so its handle is a `&'static` and call sites cache it: the name
//! is looked up once per call site, never per call.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::breaker::{Breaker, CircuitState};
use crate::budget::Budget;
use crate::call::{CallSite, Mode};
use crate::config::{
    Config, Layers, Lookup, Scan, Settings, env_provider_name, name_clashes, parse_switch,
    provider_var_parts, scan_provider_vars,
};
use crate::drain::{Drain, Switch};
use crate::error::{ConfigError, ConfigProblem};

/// Aligned to 128 bytes (two cache lines: a line's neighbour is fetched with it), so no other
/// allocation shares a line with it. Every call reads it (mode, breaker word, failure count,
/// budget) and a healthy provider's calls write none of it, so threads calling it never
/// contend; but a heap neighbour that a thread writes on every call (a task's future,
/// allocated next to the provider made by that task's first call) would pull the lines away
/// from every other thread's reads. Run AF of the benchmark, with a binary that gave 2.00× in
/// the runs before and after it, took 0.86× for two threads against one while the controls
/// that share nothing took 2.00×: such a neighbour is the cause this rules out (not reproduced
/// on demand: it depends on where the allocator puts a run's futures).
#[repr(align(128))]
pub(crate) struct ProviderInner {
    pub(crate) name: &'static str,
    pub(crate) config: Config,
    pub(crate) breaker: Breaker,
    pub(crate) budget: Budget,
    pub(crate) execute_site: CallSite,
    pub(crate) mode: Mode,
    /// `mode.plain` while no recorder is known: a call here needs nothing of `Ext`. One load
    /// where there were two (the mode's flag, then the global recorder flag, which another
    /// crate's code reaches through the GOT: four instructions of each call, counted with
    /// callgrind). Cleared for every provider, by `recording_started`, when the recorder is
    /// switched on; set at creation under the same lock (`make`).
    pub(crate) plain: AtomicBool,
    /// Whether its calls may still retry (`drain()`), and its calls asleep in a backoff.
    /// Out of line (leaked with the provider), read only where a retry is decided: inline,
    /// its 40 bytes (a `Notify` and the switch) made rustc lay the fields out anew, and the
    /// budget's balance and refill mark, which every call reads, fell on two lines where they
    /// shared one (see `a_plain_call_reads_three_lines_of_its_provider`). Apart, too, the
    /// `Notify`'s lock and state, written as backoffs start and end, share no line with them.
    pub(crate) drain: &'static Drain,
}

/// Every provider made, the registry's and the tests' own (`testing`), for
/// [`recording_started`]. A provider is made under this lock and switched under it, so none
/// misses the switch: made first, it is in the list; made after, it sees the recorder.
static MADE: Mutex<Vec<&'static ProviderInner>> = Mutex::new(Vec::new());

/// Every provider made so far, read under the lock and handed out after it (`drain()` wakes
/// their sleeping calls, which runs wakers: code we do not know).
pub(crate) fn made() -> Vec<&'static ProviderInner> {
    MADE.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The recorder was just switched on (`RECORDING` set before): no provider's calls are plain
/// any more.
pub(crate) fn recording_started() {
    for p in MADE.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        p.plain.store(false, Ordering::Relaxed);
    }
}

// As `CallSite`'s: atomics, poison-tolerant locks and cells filled once, so a handle used
// across `catch_unwind` needs no `AssertUnwindSafe`.
impl std::panic::RefUnwindSafe for ProviderInner {}

#[derive(Default)]
struct Registry {
    providers: BTreeMap<String, &'static ProviderInner>,
    global_code: Settings,
    provider_code: BTreeMap<String, Settings>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while holding the lock cannot leave the map inconsistent (inserts are single
    // steps), so a poisoned lock is still safe to use; the runtime must not panic because of it.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(not(test))]
fn process_env(var: &str) -> Option<String> {
    std::env::var_os(var).map(|v| v.to_string_lossy().into_owned())
}

/// This crate's unit tests see no environment: none sets one (those that read variables
/// pass their own), and a variable of the runner's (`RETRY_MAX_ATTEMPTS=5` in a developer's
/// shell) beat the defaults they assert on.
#[cfg(test)]
fn process_env(_: &str) -> Option<String> {
    None
}

/// Environment variables that are no provider setting: the telemetry module's, and
/// [`STRICT_VARIABLE`], which `init()` reads.
pub(crate) const OTHER_VARIABLES: &[&str] = &["RESILIENCE_METRICS_ADDR", STRICT_VARIABLE];

/// The operators' switch for [`Builder::strict`]: when set, it decides whether `init()` is
/// strict, whatever the code says (the environment beats code, as for every setting).
pub(crate) const STRICT_VARIABLE: &str = "RESILIENCE_STRICT";

impl Registry {
    fn resolve(&self, name: &str, lookup: Lookup<'_>) -> (Config, Vec<ConfigProblem>) {
        let (config, problems, _) = self.resolve_own(name, lookup);
        (config, problems)
    }

    /// As [`resolve`](Self::resolve), with the provider's own settings (its variables over
    /// its code settings) and the global ones below them, read in the same pass: the line
    /// that ignores a bad value says which of them the provider's value comes from.
    fn resolve_own(&self, name: &str, lookup: Lookup<'_>) -> (Config, Vec<ConfigProblem>, Layers) {
        let (global_env, mut problems) = Settings::from_env(lookup, None);
        let (provider_env, p2) = Settings::from_env(lookup, Some(name));
        problems.extend(p2);
        let empty = Settings::new();
        let provider_code = self.provider_code.get(name).unwrap_or(&empty);
        let own = provider_env.over(provider_code);
        let below = global_env.over(&self.global_code);
        let (config, p3) = own.over(&below).resolve();
        problems.extend(p3);
        (config, problems, Layers { own, below })
    }

    /// `name`'s clashes with the providers that exist or have code settings.
    fn clashes_of(&self, name: &str) -> Vec<ConfigProblem> {
        let known = self.providers.keys().chain(self.provider_code.keys());
        clashes_with(name, known.map(String::as_str))
    }

    /// Makes and registers `name`'s provider; with how many the registry holds now, for
    /// [`warn_if_many`] (counted under the lock: each count is some call's alone).
    fn create(&mut self, name: &str, config: Config) -> (&'static ProviderInner, usize) {
        let inner = make(name, config, true, &crate::drain::PROCESS);
        self.providers.insert(name.to_owned(), inner);
        crate::telemetry::provider_known(inner.name, inner.breaker.state());
        (inner, self.providers.len())
    }
}

/// A provider, registered nowhere yet; `published`: its breaker's state is the name's in the
/// metrics (not for a test's own); `drain`, the switch that stops its retries (the process's,
/// or a test's own). Leaked: call sites keep `&'static` handles to it.
pub(crate) fn make(
    name: &str,
    config: Config,
    published: bool,
    drain: &'static Switch,
) -> &'static ProviderInner {
    let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    let breaker = Breaker::new(name, &config).published(published);
    let inner: &'static ProviderInner = Box::leak(Box::new(ProviderInner {
        name,
        breaker,
        budget: Budget::new(&config),
        execute_site: CallSite::new(name, "execute"),
        mode: Mode::of(&config),
        plain: AtomicBool::new(false),
        // Its own allocation: see the field.
        drain: Box::leak(Box::new(Drain::new(drain))),
        config,
    }));
    inner.execute_site.bind(inner);
    {
        let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
        made.push(inner);
        // Read under the lock: a switch that set it before took the lock before (see `MADE`).
        let plain = inner.mode.plain && !crate::telemetry::recording();
        inner.plain.store(plain, Ordering::Relaxed);
    }
    inner
}

/// A test's own provider's configuration (`testing`): `settings` over the built-in defaults,
/// neither the environment nor what the process's code set up, with the problems the global
/// `configure` would find: a name whose variables clash with one of `others` (the names its
/// isolation knows), or with the library's own variables, is refused there, and so here.
#[cfg(feature = "testing")]
pub(crate) fn code_config(
    name: &str,
    settings: &Settings,
    others: &[&str],
) -> (Config, Vec<ConfigProblem>) {
    let (config, mut problems) = settings.resolve();
    problems.extend(clashes_with(name, others.iter().copied()));
    (config, problems)
}

/// `name`'s clashes with `others` (names may repeat) and with the library's own variables.
/// Only names whose variables can meet `name`'s are checked with it, so that making the n-th
/// provider costs a pass over the names, not the full check of all n (which made creating
/// 2,000 providers take minutes). One name's variable equals another's only if their
/// environment forms are equal or one is the other plus `_` and more.
fn clashes_with<'a>(name: &'a str, others: impl Iterator<Item = &'a str>) -> Vec<ConfigProblem> {
    let env = env_provider_name(name);
    let mut names: Vec<&str> = others
        .filter(|other| may_share_variables(&env, &env_provider_name(other)))
        .chain([name])
        .collect();
    names.sort_unstable();
    names.dedup();
    let subject = format!("provider `{}`", name.escape_debug());
    name_clashes(&names, OTHER_VARIABLES)
        .into_iter()
        .filter(|p| p.variable == subject)
        .collect()
}

/// Whether two providers, by their environment forms, can have a variable in common: equal
/// forms, or one is the other plus `_` and more (`KIMI` and `KIMI_RETRY`: the first's
/// `RESILIENCE_KIMI_RETRY_ENABLED` is the second's `ENABLED`).
fn may_share_variables(a: &str, b: &str) -> bool {
    let under = |long: &str, short: &str| {
        long.len() > short.len() && long.starts_with(short) && long.as_bytes()[short.len()] == b'_'
    };
    a == b || under(a, b) || under(b, a)
}

pub(crate) fn lookup(name: &str) -> &'static ProviderInner {
    let mut reg = registry();
    if let Some(p) = reg.providers.get(name) {
        return p;
    }
    let (config, problems, layers) = reg.resolve_own(name, &process_env);
    let clashes = reg.clashes_of(name);
    // `init()` checks the names the code gives it or a `#[resilient]` method has, not one the
    // program computes: that one must be named to it.
    let seen_by_init = reg.provider_code.contains_key(name)
        || CallSite::registered().any(|s| s.provider_name() == name)
        || has_named_site(name);
    let (inner, count) = reg.create(name, config);
    drop(reg);
    on_registered(inner, count);
    // After an `init()` that returned these as an error, the advice would be wrong.
    let advice = if INIT_RAN.load(Ordering::Relaxed) {
        ""
    } else {
        " Call resilience::init() at start-up to turn this into an error."
    };
    // None after an `init()`, as above: it may have been given the name and refused it.
    let name_advice = if seen_by_init || advice.is_empty() {
        advice
    } else {
        " Call resilience::init() at start-up, with this provider named in code \
         (Builder::provider), to turn this into an error."
    };
    for p in clashes {
        tracing::error!(
            target: "resilience",
            provider = inner.name, variable = p.variable.as_str(), expected = %p.expected,
            "[CONFIG] {p}.{name_advice}",
        );
    }
    for p in problems.into_iter().filter(first_report) {
        // A global variable is not its own fallback, and a conflict is settled by its own rule.
        let instead = crate::config::used_instead(&p, &inner.config, &layers);
        tracing::error!(
            target: "resilience",
            provider = inner.name, variable = p.variable.as_str(), value = &*crate::error::logged_value(&p.value), expected = %p.expected,
            "[CONFIG] Ignoring {}={} for provider {}: expected {}; it uses {instead}. \
             Logged once, however many providers it applies to.{advice}",
            p.variable, p.shown_value(), inner.name.escape_debug(), p.expected,
        );
    }
    inner
}

/// The handle of one provider: its breaker, retry policy and retry budget, shared by every
/// call for that name from any task, thread or struct instance. Cheap to copy.
///
/// The breaker's open timeout follows Tokio's clock when the breaker opens under a paused
/// one (`tokio::time::pause`), so tests can advance past it; opened under a running clock, it
/// is timed on the kernel's coarse clock (on Linux), which a clock paused later does not move. Tests that need to advance
/// a breaker pause from the start (`#[tokio::test(start_paused = true)]`).
#[derive(Clone, Copy)]
pub struct Provider(pub(crate) &'static ProviderInner);

/// The same provider: the same breaker and budget (under `testing::isolate`, two handles of one
/// name may be two providers).
impl PartialEq for Provider {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Provider {}

/// By the provider itself, as `==` is (not by its name, which two providers may share under
/// `testing::isolate`): a set of providers, or a map keyed by them, holds each one once.
/// Clippy's `mutable_key_type` lint flags such a set, seeing the breaker's atomics behind the
/// handle: the hash is the handle's address, which they never change, so allow it there.
impl std::hash::Hash for Provider {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(self.0, state);
    }
}

/// The state as stored: not [`state()`](Provider::state), which moves an open breaker whose
/// timeout has passed to half-open (a transition, its log line and its metric). Printing a
/// handle (`?provider` in a log line) moves nothing: such a breaker still reads `Open`.
impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.0.name)
            .field("state", &self.0.breaker.stored_state())
            .finish()
    }
}

/// The global handle for `name`, created with its configuration on first use.
///
/// This looks the name up in a map behind a lock: keep the handle (it is `Copy`) or use
/// `#[resilient]`, whose call sites look it up once. Names are never forgotten, so do not
/// build provider names from user input. Nor put a secret in one (a base URL with its
/// user-info or key): a name is a metric label value, a field and part of the text of every
/// log line about the provider, and shown by `/health`, none of them redacted.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # let _hermetic = resilience::testing::isolate(); // whatever the shell's resilience variables say
/// use resilience::CircuitState;
///
/// let kimi = resilience::provider("doc-kimi");
/// let n: Result<u32, std::io::Error> = kimi.execute(|| async { Ok(42) }).await;
/// assert_eq!(n.unwrap(), 42);
/// assert_eq!(kimi.state(), CircuitState::Closed);
/// # }
/// ```
pub fn provider(name: &str) -> Provider {
    #[cfg(feature = "testing")]
    if let Some(p) = crate::testing::scoped(name) {
        return Provider(p);
    }
    Provider(lookup(name))
}

/// Every provider created so far, by name.
pub fn providers() -> Vec<Provider> {
    registry().providers.values().map(|p| Provider(p)).collect()
}

impl Provider {
    /// The provider's name.
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    /// The effective configuration, fixed at the provider's creation.
    pub fn config(&self) -> &'static Config {
        &self.0.config
    }

    /// The breaker state the next call would see. An open breaker whose timeout has passed
    /// reports (and becomes) [`CircuitState::HalfOpen`].
    pub fn state(&self) -> CircuitState {
        self.0.breaker.state()
    }

    /// Consecutive failures counted by a closed breaker (failures in the window, in
    /// failure-rate mode).
    pub fn consecutive_failures(&self) -> u32 {
        self.0.breaker.failures()
    }

    /// A call site of this provider labelled `method`, for a provider whose name is known
    /// only at run time (one client type for several providers), where `#[resilient]`, which
    /// needs the name at compile time, and a `static` [`CallSite`] cannot go. Made on first
    /// use and kept for the process's life: the same `method` gives the same site, so make
    /// it once (when the client is made) and keep the `&'static` it returns. This provider is
    /// made already, its configuration fixed: in a client made before `init()`, use
    /// [`call_site`](crate::call_site)`(name, method)`, which finds its provider at its first
    /// call.
    ///
    /// It calls this provider; but under `testing::isolate()`, like a `#[resilient]`
    /// method, the provider of its name in the calling thread's isolation (so a client made
    /// once for every test is isolated in each), and on a thread outside any isolation the
    /// one it was made from (a task spawned onto a worker by a test that made it).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use resilience::CallSite;
    ///
    /// struct Compatible {
    ///     upload: &'static CallSite,
    ///     create_job: &'static CallSite,
    /// }
    ///
    /// impl Compatible {
    ///     fn new(provider: &str) -> Self {
    ///         let p = resilience::provider(provider);
    ///         Compatible {
    ///             upload: p.call_site("upload"),
    ///             // Not idempotent: one attempt, the breaker still applies.
    ///             create_job: p.call_site_without_retry("create_job"),
    ///         }
    ///     }
    /// }
    ///
    /// let client = Compatible::new("doc-call-site-kimi");
    /// let method = client
    ///     .upload
    ///     .execute(|| async {
    ///         Ok::<_, std::io::Error>(resilience::current_call().unwrap().method)
    ///     })
    ///     .await;
    /// assert_eq!(method.unwrap(), "upload");
    /// assert!(std::ptr::eq(client.upload, resilience::provider("doc-call-site-kimi").call_site("upload")));
    /// # }
    /// ```
    pub fn call_site(&self, method: &'static str) -> &'static CallSite {
        site_of(self.0, method, true)
    }

    /// [`call_site`](Provider::call_site) for an operation that is not idempotent: every
    /// call makes exactly one attempt (the breaker still applies), as `retry = false` and
    /// [`CallSite::without_retry`] do. A site of its own, apart from `call_site(method)`'s.
    pub fn call_site_without_retry(&self, method: &'static str) -> &'static CallSite {
        site_of(self.0, method, false)
    }

    /// How long until an open breaker lets a probe through; `None` unless open.
    pub fn retry_in(&self) -> Option<Duration> {
        self.0.breaker.retry_in()
    }

    /// Retries the budget would allow right now; infinite when the budget is off
    /// (`RESILIENCE_RETRY_BUDGET_ENABLED=false`), as it then limits nothing (`null` on
    /// `/health`).
    pub fn retry_budget_available(&self) -> f64 {
        self.0.budget.available()
    }

    /// Opens the breaker until [`reset`](Self::reset): every call is rejected. For
    /// maintenance windows and incident response.
    pub fn force_open(&self) {
        self.0.breaker.force(CircuitState::ForcedOpen);
    }

    /// Switches the breaker off until [`reset`](Self::reset): every call is admitted and
    /// nothing is counted.
    pub fn disable_breaker(&self) {
        self.0.breaker.force(CircuitState::Disabled);
    }

    /// The provider as it was made: closes the breaker and clears its counts (or returns it
    /// to `Disabled` when the breaker, or the whole library, is switched off in the
    /// configuration), and fills the retry budget. For the end of an incident, and for a
    /// test that must not inherit another's failures (for tests that run at the same time,
    /// see the `testing` module, behind the feature of that name).
    pub fn reset(&self) {
        let to = if self.0.config.breaker_enabled && self.0.config.enabled {
            CircuitState::Closed
        } else {
            CircuitState::Disabled
        };
        self.0.breaker.force(to);
        self.0.budget.fill();
    }

    /// Runs `op` with this provider's retry policy and breaker, for code that does not use
    /// `#[resilient]`. `op` is called once per attempt; the method label in logs and metrics
    /// is `execute` (declare a [`CallSite`] for your own label).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let _hermetic = resilience::testing::isolate(); // whatever the shell's resilience variables say
    /// use std::io;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// let kimi = resilience::configure(
    ///     "doc-execute",
    ///     resilience::Settings::new().base_delay(std::time::Duration::ZERO),
    /// ).unwrap();
    /// let tries = AtomicU32::new(0);
    /// let out: Result<&str, io::Error> = kimi
    ///     .execute(|| async {
    ///         if tries.fetch_add(1, Ordering::Relaxed) == 0 {
    ///             Err(io::ErrorKind::ConnectionReset.into()) // transient: retried
    ///         } else {
    ///             Ok("file-123")
    ///         }
    ///     })
    ///     .await;
    /// assert_eq!(out.unwrap(), "file-123");
    /// assert_eq!(tries.load(Ordering::Relaxed), 2);
    /// # }
    /// ```
    ///
    /// `op` is a closure that returns a future of `Result<T, E>`: `|| async { … }`, or
    /// `|| fetch()` for an `async fn fetch`. It may borrow locals and be `FnMut`; its future
    /// need not be `Send` nor `Unpin`. `E` must implement [`Classify`](crate::Classify)
    /// (which errors to retry) and `From<ResilienceError>` (see Errors). The bound
    /// `F: Operation<T, E>` says just that, with a trait of our own, so that a mistake is
    /// reported once, at `op`, with what to do.
    ///
    /// # Errors
    ///
    /// The operation's last error, unchanged, when it is permanent or its retries are over
    /// (attempts, budget, deadline, [`drain()`](crate::drain)); `E::from(ResilienceError)`
    /// when the call ends on the breaker (`CircuitOpen`), a timeout (`AttemptTimeout`,
    /// `DeadlineExceeded`) or a drain that woke it in its backoff (`Draining`).
    // The call site's future itself (see `CallSite::execute` for why a plain `fn`).
    //
    // `use<F, T, E>`: the future holds the provider's `&'static` call site, not the handle, so
    // it may outlive the handle it was made from (`tokio::spawn(provider("x").execute(op))`).
    pub fn execute<F, T, E>(
        &self,
        op: F,
    ) -> impl std::future::Future<Output = Result<T, E>> + use<F, T, E>
    where
        F: crate::__private::Operation<T, E>,
    {
        let site: &'static CallSite = &self.0.execute_site;
        site.execute(op)
    }
}

/// The sites [`Provider::call_site`] made, by provider (its address: each is leaked, and a
/// test's isolation makes providers of the same name), method and whether they retry.
type SiteKey = (usize, &'static str, bool);
static SITES: Mutex<Option<HashMap<SiteKey, &'static CallSite>>> = Mutex::new(None);

fn site_of(p: &'static ProviderInner, method: &'static str, retry: bool) -> &'static CallSite {
    let key = (std::ptr::from_ref(p) as usize, method, retry);
    site_in(&SITES, key, || {
        let site = leaked_site(p.name, method, retry);
        // Resolved now, to this provider: never looked up by name outside a test's isolation
        // (where the name may mean another provider, or none yet).
        site.bind(p);
        site
    })
}

/// The site under `key` in `map`, made by `make` the first time. The new site's series are
/// made after the map's lock is let go (`site_made` reaches the recorder).
fn site_in<K: Eq + std::hash::Hash>(
    map: &Mutex<Option<HashMap<K, &'static CallSite>>>,
    key: K,
    make: impl FnOnce() -> &'static CallSite,
) -> &'static CallSite {
    let mut guard = map.lock().unwrap_or_else(|e| e.into_inner());
    let sites = guard.get_or_insert_with(HashMap::new);
    if let Some(site) = sites.get(&key) {
        return site;
    }
    let site = make();
    sites.insert(key, site);
    drop(guard);
    crate::telemetry::site_made(site);
    site
}

/// The sites in `map`, read under its lock alone.
fn sites_in<K>(map: &Mutex<Option<HashMap<K, &'static CallSite>>>) -> Vec<&'static CallSite> {
    map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|sites| sites.values().copied().collect())
        .unwrap_or_default()
}

/// A call site made at run time, leaked: call sites are `&'static`, and these are kept for the
/// process's life in the maps above, one per key.
fn leaked_site(provider: &'static str, method: &'static str, retry: bool) -> &'static CallSite {
    let site = CallSite::new(provider, method);
    Box::leak(Box::new(if retry { site } else { site.without_retry() }))
}

/// The sites [`call_site`] made, by provider name, then by method and whether they retry:
/// keyed by the name first, so that asking again for a site made before looks the `&str` up
/// as it is (a `(String, …)` key made every ask allocate a copy of the name, and a gateway
/// that asks per request made one allocation per request).
type NamedSites = HashMap<String, HashMap<(&'static str, bool), &'static CallSite>>;
static NAMED_SITES: Mutex<Option<NamedSites>> = Mutex::new(None);

fn named_site(provider: &str, method: &'static str, retry: bool) -> &'static CallSite {
    let mut guard = NAMED_SITES.lock().unwrap_or_else(|e| e.into_inner());
    let by_name = guard.get_or_insert_with(HashMap::new);
    if let Some(site) = by_name.get(provider).and_then(|m| m.get(&(method, retry))) {
        return site;
    }
    let sites = by_name.entry(provider.to_owned()).or_default();
    // Leaked once per name, as call sites' names are `&'static`: a name's other sites (another
    // method, or without retry) share the copy their first one made.
    let name: &'static str = match sites.values().next() {
        Some(other) => other.provider_name(),
        None => Box::leak(provider.to_owned().into_boxed_str()),
    };
    let site = leaked_site(name, method, retry);
    sites.insert((method, retry), site);
    drop(guard);
    // Its series are made after the lock is let go (`site_made` reaches the recorder).
    crate::telemetry::site_made(site);
    site
}

/// The sites [`call_site`] made so far, read under its lock alone.
fn named_sites() -> Vec<&'static CallSite> {
    NAMED_SITES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|by_name| by_name.values().flat_map(|m| m.values().copied()).collect())
        .unwrap_or_default()
}

/// Whether [`call_site`] made a site for provider `name`.
fn has_named_site(name: &str) -> bool {
    NAMED_SITES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|by_name| by_name.contains_key(name))
}

/// Every site [`Provider::call_site`] and [`call_site`] made so far, for the metrics switch
/// to make their counters at 0. Each map's lock is taken alone, and let go before the
/// recorder is reached.
pub(crate) fn run_time_sites() -> Vec<&'static CallSite> {
    let mut sites = sites_in(&SITES);
    sites.extend(named_sites());
    sites
}

/// A call site for the provider named `provider`, a name known only at run time (one client
/// type for several OpenAI-compatible providers, named in its configuration), labelled
/// `method` in logs and metrics: what `#[resilient]`, which needs the name at compile time,
/// and a `static` [`CallSite`] cannot give. Made on first use and kept for the process's
/// life, the same for the same name, method and retry flag: make it once, when the client is
/// made, and keep the `&'static`.
///
/// It makes no provider: as a `#[resilient]` method's, its provider is found by name at its
/// first call, so a client made before `init()` takes the settings `init()` gives (where
/// [`provider`]`(name).`[`call_site`](Provider::call_site) makes the provider, whose
/// configuration is then fixed). Under `testing::isolate()` it calls the isolation's provider
/// of that name, as a `#[resilient]` method does. Its name is known to `init()` from now on,
/// as a `#[resilient]` method's is from program load (its variables and settings are no slip
/// of a provider near it; a name clashing with it is an error); a bad one (empty, with a
/// control character) is reported as [`provider`]'s, at the first call. Names are never
/// forgotten (every later `init()` names a bad one again): check names read from a file
/// with [`check_names`] first, and, as for [`provider`], do not build them from user input.
/// Asking again for a site made before allocates nothing, but takes a lock the process
/// shares: keep the site rather than asking per request.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # let _hermetic = resilience::testing::isolate(); // whatever the shell's resilience variables say
/// use resilience::{Builder, CallSite, Settings};
///
/// struct Compatible {
///     upload: &'static CallSite,
///     create_job: &'static CallSite,
/// }
///
/// impl Compatible {
///     fn new(provider: &str) -> Self {
///         Compatible {
///             upload: resilience::call_site(provider, "upload"),
///             // Not idempotent: one attempt, the breaker still applies.
///             create_job: resilience::call_site_without_retry(provider, "create_job"),
///         }
///     }
/// }
///
/// // Made before `init()`: no provider yet, so its settings are still open.
/// let client = Compatible::new("doc-named-site");
/// Builder::new()
///     .provider("doc-named-site", Settings::new().max_attempts(5))
///     .init()
///     .unwrap();
/// let attempts = client
///     .upload
///     .execute(|| async {
///         Ok::<_, std::io::Error>(resilience::current_call().unwrap().max_attempts)
///     })
///     .await;
/// assert_eq!(attempts.unwrap(), 5);
/// assert!(std::ptr::eq(client.upload, resilience::call_site("doc-named-site", "upload")));
/// # }
/// ```
pub fn call_site(provider: &str, method: &'static str) -> &'static CallSite {
    named_site(provider, method, true)
}

/// The providers of the sites [`call_site`] made so far (a name may repeat): known to `init()`
/// from then on, as a `#[resilient]` method's are from program load, though none is made yet.
/// Taken after the registry's (or an isolation's) lock where both are held; `named_site`
/// takes no other.
pub(crate) fn named_site_providers() -> Vec<&'static str> {
    named_sites()
        .into_iter()
        .map(CallSite::provider_name)
        .collect()
}

/// Checks provider names the program computes (a gateway's upstreams, read from its config
/// file) as [`init`] checks the names it knows, without making, configuring or remembering
/// any of them: so that a bad name can be refused before it reaches [`call_site`] or
/// [`provider`], which take any name, and after which every later `init()` names it for
/// the life of the process.
///
/// Refused, each with a problem that names the value and what was expected: a name with no
/// ASCII letter or digit (an empty one), with leading or trailing spaces, control characters
/// or invisible ones; and a name whose `RESILIENCE_<NAME>_…` variables are another's, among
/// `names` (`acme-eu` beside `ACME EU`) or with a name known already (a `#[resilient]`
/// method's, a call site's, one given settings in code, or a provider made), or with a
/// global variable (`retry`). Only the problems of the names given are returned. A name
/// given twice is checked once. It reads the process's names, not a test isolation's.
///
/// ```
/// let err = resilience::check_names(["doc-acme-eu", "doc-ACME EU", "", "retry"]).unwrap_err();
/// let text = err.to_string();
/// assert!(text.contains("provider ``: expected a provider name with at least one ASCII letter"));
/// assert!(text.contains("provider `doc-ACME EU`: expected a name whose RESILIENCE_DOC_ACME_EU_… variables are its own, but provider `doc-acme-eu` reads them too"));
/// assert!(text.contains("provider `retry`"));
/// assert!(resilience::check_names(["doc-acme-eu", "doc-acme-us"]).is_ok());
/// // Names read from a file: any strings.
/// let read: Vec<String> = vec!["doc-acme-eu".into(), " doc-acme-us".into()];
/// assert_eq!(resilience::check_names(&read).unwrap_err().problems().len(), 1);
/// // Nothing was made or remembered.
/// assert!(resilience::providers().iter().all(|p| !p.name().starts_with("doc-acme")));
/// ```
///
/// # Errors
///
/// Every problem of the names given, in one [`ConfigError`].
pub fn check_names<I>(names: I) -> Result<(), ConfigError>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    // Any strings: a config file's names are `String`s (`check_names(&names)`), not `&str`s.
    let owned: Vec<I::Item> = names.into_iter().collect();
    let mut given: Vec<&str> = owned.iter().map(AsRef::as_ref).collect();
    given.sort_unstable();
    given.dedup();
    let known: Vec<String> = {
        let reg = registry();
        named(&reg, &reg).into_iter().map(str::to_owned).collect()
    };
    let mut all: Vec<&str> = given
        .iter()
        .copied()
        .chain(known.iter().map(String::as_str))
        .collect();
    all.sort_unstable();
    all.dedup();
    let subjects: BTreeSet<String> = given
        .iter()
        .map(|n| format!("provider `{}`", n.escape_debug()))
        .collect();
    let problems: Vec<ConfigProblem> = name_clashes(&all, OTHER_VARIABLES)
        .into_iter()
        .filter(|p| subjects.contains(&p.variable))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::new(problems))
    }
}

/// [`call_site`] for an operation that is not idempotent: every call makes exactly one attempt
/// (the breaker still applies), as `retry = false` does. A site of its own, apart from
/// `call_site(provider, method)`'s.
pub fn call_site_without_retry(provider: &str, method: &'static str) -> &'static CallSite {
    named_site(provider, method, false)
}

/// Start-up configuration: settings in code, checked together with the environment.
///
/// ```
/// # let _hermetic = resilience::testing::isolate(); // whatever the shell's resilience variables say
/// use resilience::{Builder, Settings};
/// use std::time::Duration;
///
/// Builder::new()
///     .defaults(Settings::new().max_attempts(4))
///     .provider("doc-builder-kimi", Settings::new().breaker_timeout(Duration::from_secs(30)))
///     .init()
///     .expect("valid configuration");
/// assert_eq!(resilience::provider("doc-builder-kimi").config().breaker_timeout, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    global: Settings,
    providers: Vec<(String, Settings)>,
    strict: bool,
}

impl Builder {
    /// A builder with nothing set: `init()` then checks the environment alone.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Settings for every provider (below the environment; see the precedence in [`Settings`]).
    #[must_use]
    pub fn defaults(mut self, settings: Settings) -> Self {
        self.global = settings.scoped("Builder::defaults").over(&self.global);
        self
    }

    /// Settings for one provider.
    #[must_use]
    pub fn provider(mut self, name: &str, settings: Settings) -> Self {
        let scope = format!("Builder::provider(\"{}\")", name.escape_debug());
        self.providers
            .push((name.to_owned(), settings.scoped(&scope)));
        self
    }

    /// Makes [`init`](Self::init) refuse what it otherwise only warns about, so that a typo
    /// stops the start-up instead of running on the defaults. Returned with the other
    /// problems, in the same [`ConfigError`], each naming the variable or the code call and,
    /// where one is near, what was meant (never the variable's value: it may be a secret
    /// pasted into the wrong variable):
    ///
    /// - an unknown `RESILIENCE_…` variable (`RESILIENCE_KIMI_RETRY_MAX_ATEMPTS`), or one of
    ///   ours in another case or a switch without its prefix (`RETRY_ENABLED`);
    /// - each variable of a provider part that no `#[resilient]` method, setting or provider
    ///   made names, but one nearly does (`RESILIENCE_KIMII_…` beside `kimi`);
    /// - a name given settings in code (`Builder::provider("kimii", …)`) that no
    ///   `#[resilient]` method nor provider made has, but one nearly does.
    ///
    /// Not a global misspelt without the prefix (`RETRY_MAX_ATEMPTS`), which may be another
    /// program's variable: it stays a warning.
    ///
    /// They are found whether or not a provider made before `init()` already warned about
    /// them. When any problem is found, nothing is installed (without `strict`, the code
    /// settings are installed when every problem is the environment's). A provider variable
    /// for a name no one nearly has is still accepted: a provider may be made later by a name
    /// the program computes (name it in code, `Builder::provider(name, Settings::new())`, to
    /// have its variables' near misses found). Likewise a provider of its own whose name is
    /// that near a called one's and that only `provider()` calls (`harbour` beside a
    /// `#[resilient]` method's `harbor`): give it its settings with
    /// [`configure`](crate::configure) before `init()`, which makes it, so that it is called.
    ///
    /// `RESILIENCE_STRICT` (`true` or `false`, also `1`/`0`, `yes`/`no`, `on`/`off`), when
    /// set, decides instead, so that an operator can turn strict mode on (or off) without a
    /// rebuild; a bad value is a problem of its own, and leaves the code's choice. Under a
    /// test's isolation (`testing` feature) no variable is read, `RESILIENCE_STRICT`
    /// included: strict mode there refuses the near misses of names given in code only.
    ///
    /// ```
    /// # let _hermetic = resilience::testing::isolate(); // whatever the shell's resilience variables say
    /// use resilience::{Builder, Settings};
    ///
    /// let _kimi = resilience::provider("doc-strict-kimi");
    /// let err = Builder::new()
    ///     .provider("doc-strict-kimii", Settings::new().max_attempts(5))
    ///     .strict()
    ///     .init()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains(
    ///     "Builder::provider(\"doc-strict-kimii\", …): expected the name of a provider"
    /// ));
    /// assert!(err.to_string().contains("did you mean provider `doc-strict-kimi`?"));
    /// ```
    #[must_use]
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// Reads and checks every setting (the global variables, every `RESILIENCE_<PROVIDER>_…`
    /// variable in the environment, and the code settings) and installs the code settings for
    /// providers created from now on. Returns every problem at once. When every problem is
    /// the environment's (the code settings alone have none, and change no provider already
    /// made), the code settings are installed all the same, so a service that logs the error
    /// and goes on keeps them: a provider made later uses them with each bad variable
    /// replaced by the next setting in line, and logs it at error level, as without `init()`.
    /// Otherwise nothing is installed. Unknown `RESILIENCE_…` variables (typos) are logged as
    /// warnings, unless the first provider made already warned about them, and so are
    /// misspelt provider names; [`strict`](Self::strict) makes them errors.
    ///
    /// Under a test's isolation (`testing` feature), the settings are the isolation's and no
    /// variable is read or checked.
    ///
    /// # Errors
    ///
    /// Every bad value, conflict (a base delay above a max delay), clashing name and change
    /// to a provider already made, in one [`ConfigError`]; in strict mode, the typos too.
    pub fn init(self) -> Result<(), ConfigError> {
        #[cfg(feature = "testing")]
        if let Some(done) = crate::testing::init(&self.global, &self.providers, self.strict) {
            return done;
        }
        // Whatever the outcome, the names are looked at here: the first provider need not,
        // and typos a first provider already reported are not reported again.
        let reported = NAMES_CHECKED.swap(true, Ordering::Relaxed);
        self.init_with(&process_env, process_vars(), !reported)
    }

    pub(crate) fn init_with(
        self,
        lookup: Lookup<'_>,
        vars: Vec<(String, String)>,
        warn_typos: bool,
    ) -> Result<(), ConfigError> {
        let (_, mut problems) = Settings::from_env(lookup, None);
        let strict = match lookup(STRICT_VARIABLE) {
            None => self.strict,
            Some(raw) => parse_switch(&raw).unwrap_or_else(|expected| {
                problems.push(ConfigProblem {
                    settled: None,
                    name_only: false,
                    variable: STRICT_VARIABLE.into(),
                    value: raw,
                    expected: expected.into(),
                });
                self.strict
            }),
        };
        // Strict mode's problems: the names warned about otherwise.
        let mut refused: Vec<ConfigProblem> = Vec::new();
        let Scan {
            problems: p,
            misnamed,
            unknown,
            near_globals,
            providers: env_providers,
            provider_vars,
        } = scan_provider_vars(vars.into_iter(), OTHER_VARIABLES);
        problems.extend(p);
        problems.extend(misnamed);
        if strict {
            refused.extend(unknown.iter().map(|name| unknown_problem(name)));
        } else if warn_typos {
            unknown.iter().for_each(|name| warn_unknown(name));
        }
        // A warning in either mode: the name may be another program's.
        if warn_typos {
            near_globals
                .iter()
                .for_each(|(name, var)| warn_near_global(name, var));
        }
        #[cfg(feature = "telemetry")]
        if let Some(addr) = lookup("RESILIENCE_METRICS_ADDR")
            && addr.trim().parse::<std::net::SocketAddr>().is_err()
        {
            problems.push(ConfigProblem {
                settled: None,
                name_only: false,
                variable: "RESILIENCE_METRICS_ADDR".into(),
                value: addr,
                expected: "an IP address and port, e.g. 127.0.0.1:9464".into(),
            });
        }
        let mut reg = registry();
        // What an earlier `init()` set in code that this one sets otherwise: said once it is
        // installed, as a library and its application may both call `init()`.
        let replaced = replaced_by(&self.global, &reg.global_code, &self.providers, |name| {
            reg.provider_code.get(name)
        });
        let mut next = Registry {
            providers: BTreeMap::new(),
            global_code: self.global.over(&reg.global_code),
            provider_code: reg.provider_code.clone(),
        };
        let given: Vec<String> = self.providers.iter().map(|(n, _)| n.clone()).collect();
        // Said whenever given, as a variable's slip is.
        let code_near = code_near_misses(
            &self.providers,
            reg.providers
                .keys()
                .map(String::as_str)
                .chain(named_site_providers()),
        );
        for (name, s) in self.providers {
            let merged = s.after(next.provider_code.get(&name));
            next.provider_code.insert(name, merged);
        }
        // The global layer, environment over code, checked on its own: conflicts between
        // global settings (`RETRY_BASE_DELAY` above `RETRY_MAX_DELAY`) reach every provider,
        // those made later by an `execute` site of the user's own too. The values' own
        // problems were reported above.
        let (global_env, _) = Settings::from_env(lookup, None);
        let (_, p) = global_env.over(&next.global_code).resolve();
        add_new(&mut problems, p);
        // Every provider the code names (in settings, or in a `#[resilient]` method, made or
        // not), that exists, or that the environment configures (by its environment name,
        // which resolves to the same variables): conflicts between settings (base delay above
        // max delay, …) and between names are found here too, not only bad values.
        let mut known = named(&next, &reg);
        // Logged once the lock is released (a log layer may make a provider), whatever the
        // answer. Looked for whether or not the names were looked at before: a first provider
        // made before `init()` knew only the names known then, not those given here (each
        // part is said once, `first_near_warning`).
        let near: Vec<(String, Vec<String>)> = near_misses(&env_providers, &known)
            .into_iter()
            .map(|(part, names)| (part, names.into_iter().map(str::to_owned).collect()))
            .collect();
        if strict {
            for (part, names) in &near {
                refused.extend(near_miss_problems(part, names, &provider_vars));
            }
            refused.extend(code_near_problems(&code_near));
        }
        known.sort_unstable();
        known.dedup();
        problems.extend(name_clashes(&known, OTHER_VARIABLES));
        // An environment name that a known provider reads is checked as that provider, with
        // its code settings, not as a provider of its own.
        let env_only = env_providers
            .into_iter()
            .filter(|e| !known.iter().any(|k| env_provider_name(k) == *e));
        let names: Vec<String> = known
            .iter()
            .map(|&k| k.to_owned())
            .chain(env_only)
            .collect();
        let mut changes_made = false;
        for name in names {
            let (config, p) = next.resolve(&name, lookup);
            add_new(&mut problems, p);
            if let Some(existing) = reg.providers.get(&name) {
                // The hint, if any, once for the whole error: said after the first name's.
                let changes = process_changes(&existing.config, &config, &name, !changes_made);
                changes_made |= !changes.is_empty();
                problems.extend(changes);
            }
        }
        // Installed despite the environment's problems, so that a service that logs the error
        // and goes on runs with the settings it shipped with (each bad variable replaced by
        // the next setting in line, logged at the provider's first use, as without `init()`),
        // not with the built-in defaults. Not when the code settings have problems of their
        // own, or change a provider already made: a later `init()` or `configure()` would
        // meet them again.
        // In strict mode, nothing when there is any problem.
        add_new(&mut problems, refused);
        let clean = problems.is_empty();
        // The code settings' own problems, a bad value a variable overrides included:
        // returned, so that an error whose every problem is the environment's means
        // installed. Read even when the environment has none: a bad value a variable
        // overrides is no problem of the resolved settings, and was returned only beside
        // another problem (helper-235).
        let own = own_problems(code_problems(&next, &known, &given), &problems);
        let sound = own.is_empty();
        add_new(&mut problems, own);
        let install = sound && !changes_made && (clean || !strict);
        let result = if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::new(problems))
        };
        if install {
            reg.global_code = next.global_code;
            reg.provider_code = next.provider_code;
        }
        INIT_RAN.store(true, Ordering::Relaxed);
        drop(reg);
        if install {
            warn_replaced("init()", &replaced);
        }
        // In strict mode, they are among the problems returned.
        if !strict {
            for (part, names) in near.iter().filter(|(part, _)| first_near_warning(part)) {
                warn_near_miss(part, names);
            }
            for (given, names) in &code_near {
                warn_code_near_miss(given, names);
            }
        }
        result
    }
}

/// What a later `init()` or `configure()` changed of the settings given in code before it:
/// `(None for the defaults or the provider's name, the setter, the earlier value, the new)`.
pub(crate) type Replaced = Vec<(Option<String>, &'static str, String, String)>;

/// What an `init()` given `defaults` and `providers` sets otherwise than the code settings
/// before it (`earlier_defaults`, and `earlier` for each provider's).
pub(crate) fn replaced_by<'a>(
    defaults: &Settings,
    earlier_defaults: &Settings,
    providers: &[(String, Settings)],
    earlier: impl Fn(&str) -> Option<&'a Settings>,
) -> Replaced {
    let mut replaced: Replaced = defaults
        .replaced(earlier_defaults)
        .into_iter()
        .map(|(setter, old, new)| (None, setter, old, new))
        .collect();
    for (name, s) in providers {
        replaced.extend(replaced_for(name, s, earlier(name)));
    }
    replaced
}

/// What `settings`, given to provider `name` (`configure()`, `Builder::provider`), set
/// otherwise than its code settings before them, if any.
pub(crate) fn replaced_for(
    name: &str,
    settings: &Settings,
    earlier: Option<&Settings>,
) -> Replaced {
    earlier.map_or_else(Vec::new, |earlier| {
        settings
            .replaced(earlier)
            .into_iter()
            .map(|(setter, old, new)| (Some(name.to_owned()), setter, old, new))
            .collect()
    })
}

/// Says, once installed, what `by` (`init()`, `configure()`) set over an earlier layer of
/// code settings, as a library and its application may both set them: the process's and an
/// isolation's alike.
pub(crate) fn warn_replaced(by: &str, replaced: &Replaced) {
    for (provider, setter, old, new) in replaced {
        let whose = provider.as_deref().map_or_else(
            || "the defaults".to_owned(),
            |p| format!("provider `{}`", p.escape_debug()),
        );
        tracing::warn!(
            target: "resilience", provider = provider.as_deref(), setting = *setter, earlier = old.as_str(), value = new.as_str(),
            "[CONFIG] {by} sets Settings::{setter} of {whose} to {new}, over the {old} \
             given in code before (an earlier init(), or configure()): settings in code \
             layer over those before them"
        );
    }
}

/// The problems of `next`'s code settings, read without any environment (none when they are
/// sound): bad values and conflicts for any provider `known`, and the names given settings
/// (`given`) clashing with another. (Clashes among the rest, `#[resilient]` methods'
/// providers say, are not the settings' and are not kept by installing them.) Whether they
/// would change a provider already made is the caller's to ask, with the environment: made
/// with its variables, valid ones included, a provider differs from its code settings read
/// alone (a review found that one valid variable then kept every code setting out).
fn code_problems(next: &Registry, known: &[&str], given: &[String]) -> Vec<ConfigProblem> {
    let no_env = |_: &str| None;
    let mut problems = next.global_code.resolve().1;
    for name in given {
        add_new(&mut problems, clashes_with(name, known.iter().copied()));
    }
    for name in known {
        add_new(&mut problems, next.resolve(name, &no_env).1);
    }
    problems
}

/// The code settings' own problems: those of the code settings read without the environment
/// (`alone`), whatever the variables make of them (a bad value a variable overrides, a
/// conflict with a default that a variable settles: settings given in code must hold in any
/// environment), and a conflict no variable takes part in that only the values that apply
/// show (`applied`: failure-rate mode turned on by a variable). A conflict with a default
/// that the applied problems do not have as it is says it is the code settings' read alone
/// ([`read_alone`](crate::config::read_alone)): beside the applied one a variable makes, if
/// any, it is a second fact, not the same one twice.
fn own_problems(alone: Vec<ConfigProblem>, applied: &[ConfigProblem]) -> Vec<ConfigProblem> {
    let mut own: Vec<ConfigProblem> = alone
        .into_iter()
        .map(|mut p| {
            if !applied.contains(&p) {
                crate::config::read_alone(&mut p);
            }
            p
        })
        .collect();
    let of_code = applied
        .iter()
        .filter(|p| p.settled.is_some_and(|s| s.of_code()))
        .cloned()
        .collect();
    add_new(&mut own, of_code);
    own
}

/// Adds the problems not reported already: every provider inherits the global layer's.
pub(crate) fn add_new(problems: &mut Vec<ConfigProblem>, found: Vec<ConfigProblem>) {
    for p in found {
        if !problems.contains(&p) {
            problems.push(p);
        }
    }
}

/// Reads and checks the whole configuration from the environment at start-up. Without it, the
/// first use of each provider reads the environment, logs bad values at error level and uses
/// the next setting in line instead; with it, a bad value is an error you can act on.
///
/// ```
/// # let _hermetic = resilience::testing::isolate(); // whatever the shell's resilience variables say
/// resilience::init().expect("resilience configuration");
/// ```
///
/// # Errors
///
/// As [`Builder::init`]: every problem at once.
pub fn init() -> Result<(), ConfigError> {
    Builder::new().init()
}

/// Creates (or checks) one provider with settings given in code, below its
/// `RESILIENCE_<PROVIDER>_…` variables. Errors name every bad value, and refuse settings that
/// would change a provider already set up (by its first call or an earlier `configure`).
///
/// ```
/// # let _hermetic = resilience::testing::isolate(); // whatever the shell's resilience variables say
/// use resilience::Settings;
/// let glm = resilience::configure("doc-glm", Settings::new().max_attempts(5)).unwrap();
/// assert_eq!(glm.config().max_attempts, 5);
/// // The same settings again are fine; different ones are refused.
/// assert!(resilience::configure("doc-glm", Settings::new().max_attempts(5)).is_ok());
/// assert!(resilience::configure("doc-glm", Settings::new().max_attempts(2)).is_err());
/// ```
///
/// # Errors
///
/// Every bad value and conflict among the settings and the provider's variables, a name whose
/// variables clash with another provider's, and every setting that would change the provider
/// already made, in one [`ConfigError`]; when every problem is the
/// environment's (the settings alone have none, and change no provider already made), the
/// settings are kept for the provider's first use, as [`Builder::init`] keeps its code
/// settings; otherwise nothing is installed, and the settings' own problems are among those
/// returned (a bad value that a provider's variable overrides too).
pub fn configure(name: &str, settings: Settings) -> Result<Provider, ConfigError> {
    let settings = settings.scoped(&format!("configure(\"{}\")", name.escape_debug()));
    #[cfg(feature = "testing")]
    if let Some(made) = crate::testing::configure(name, settings.clone()) {
        return made;
    }
    configure_with(name, settings, &process_env)
}

/// What the test of a build with the `testing` feature is told when it changes a process's
/// provider already made: in such a build the providers are most often shared by the tests of
/// one binary, one of which (run before it, or beside it: `cargo test` runs several at once)
/// made the provider or configured it first. Not "at the same time" only: with
/// `--test-threads=1`, an earlier test's provider is refused all the same.
#[cfg(feature = "testing")]
const ISOLATE_HINT: &str = "; in a test, another test of this binary (run before it or beside \
    it) may have made it: start each test with `let _isolated = resilience::testing::isolate();` \
    for providers of its own";

/// [`Config::changes`] for the process's providers (an isolation's are checked apart). With
/// the `testing` feature, the last change says how a test gets providers of its own
/// ([`ISOLATE_HINT`]) when `hint` (once per error: one line of it each is enough): the usual
/// cause there is another test, not the order of a start-up's calls.
fn process_changes(existing: &Config, new: &Config, name: &str, hint: bool) -> Vec<ConfigProblem> {
    #[cfg_attr(not(feature = "testing"), allow(unused_mut))]
    let mut changes = existing.changes(new, name);
    #[cfg(feature = "testing")]
    if let Some(c) = changes.last_mut().filter(|_| hint) {
        c.expected.push_str(ISOLATE_HINT);
    }
    #[cfg(not(feature = "testing"))]
    let _ = hint;
    changes
}

/// [`configure`] with `settings` scoped already, reading the environment through `lookup`.
fn configure_with(
    name: &str,
    settings: Settings,
    lookup: Lookup<'_>,
) -> Result<Provider, ConfigError> {
    let mut reg = registry();
    let previous = reg.provider_code.get(name).cloned();
    let replaced = replaced_for(name, &settings, previous.as_ref());
    let merged = settings.after(previous.as_ref());
    reg.provider_code.insert(name.to_owned(), merged);
    let (config, mut problems) = reg.resolve(name, lookup);
    let clashes = reg.clashes_of(name);
    // The settings' own problems, read without the environment: a bad value a provider's
    // variable overrides is one too, and is returned with the rest when they are refused.
    let own = own_problems(reg.resolve(name, &|_| None).1, &problems);
    let code_is_sound = clashes.is_empty() && own.is_empty();
    problems.extend(clashes);
    let changes = match reg.providers.get(name) {
        Some(existing) => process_changes(&existing.config, &config, name, true),
        None => Vec::new(),
    };
    let changes_made = !changes.is_empty();
    problems.extend(changes);
    // Not only beside other problems: a bad value a variable overrides leaves the resolved
    // settings with none (helper-235).
    if !problems.is_empty() || !code_is_sound {
        // Kept when every problem is the environment's, as `init()` keeps them: a service
        // that logs the error and goes on makes the provider at its first use with these
        // settings, each bad variable replaced by the next setting in line, not with the
        // built-in defaults.
        let kept = !changes_made && code_is_sound;
        if !kept {
            match previous {
                Some(old) => reg.provider_code.insert(name.to_owned(), old),
                None => reg.provider_code.remove(name),
            };
        }
        // Named, so that an error whose every problem is the environment's means kept.
        add_new(&mut problems, own);
        drop(reg);
        // Kept, they change what was given before as much as when accepted.
        if kept {
            warn_replaced("configure()", &replaced);
        }
        return Err(ConfigError::new(problems));
    }
    if let Some(&existing) = reg.providers.get(name) {
        drop(reg);
        // A setting a variable overrides changes no provider made, but is kept all the same.
        warn_replaced("configure()", &replaced);
        return Ok(Provider(existing));
    }
    let (made, count) = reg.create(name, config);
    drop(reg);
    warn_replaced("configure()", &replaced);
    on_registered(made, count);
    Ok(Provider(made))
}

/// After the process's registry made `p`, its `count`th provider (the registry's lock
/// released): the names' one check, what [`on_made`] says of any provider, and the registry's
/// size when it is one to warn of. A test isolation's providers are not the registry's, and
/// have [`on_made`] alone.
fn on_registered(p: &ProviderInner, count: usize) {
    check_names_once();
    on_made(p);
    warn_if_many(p, count);
}

/// What is said of a provider as it is made, with no lock of ours held (a log layer may make a
/// provider): a switch that is off, and a retry budget that never refills.
pub(crate) fn on_made(p: &ProviderInner) {
    say_switches_off(p);
    warn_if_budget_never_refills(p);
    warn_if_name_holds_a_credential(p);
}

/// A provider named with what [`redact`](crate::redact) removes (a base URL's user-info or
/// query, a key: `https://user:pass@api.example`, `kimi?key=…`) says so once, at its making,
/// with the name redacted: the name itself is a metric label, a field and part of the text of
/// every log line about the provider, and shown by `/health`, none of them redacted (the
/// README, Metrics). Nothing else is done: the name is the code's to change.
fn warn_if_name_holds_a_credential(p: &ProviderInner) {
    let shown = crate::redact::redact(p.name);
    if shown != p.name {
        tracing::warn!(
            target: "resilience", provider = &*shown,
            "[CONFIG] Provider name {} holds what looks like a credential (shown here \
             redacted): a provider's name is a metric label, part of every log line about it \
             and shown by /health, none of them redacted. Name the provider for what it is \
             (kimi), not by a URL or a key",
            shown.escape_debug(),
        );
    }
}

/// The counts of providers at which the registry says, once each, that names are never
/// forgotten.
const MANY_PROVIDERS: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];

/// At each of [`MANY_PROVIDERS`], a warning: every name makes a provider kept for the process's
/// life (its breaker, budget and metric series: about 15 KB of `/metrics` a method), so a
/// program that makes names from request data (a tenant, a URL) grows without bound; the
/// README's Metrics measures it. `count` is the registry's size once `p` was made.
fn warn_if_many(p: &ProviderInner, count: usize) {
    if MANY_PROVIDERS.contains(&count) {
        let last = crate::redact::redact(p.name);
        tracing::warn!(
            target: "resilience", providers = count,
            "[CONFIG] {count} providers made (the last {}): each name makes a provider kept \
             for the process's life, with its breaker, budget and metric series. A name made \
             from request data (a tenant, a URL) grows memory and /metrics without bound: \
             name providers by upstream",
            last.escape_debug(),
        );
    }
}

/// A provider made with resilience, its retries or its breaker switched off says so once, at
/// info: an operator who flips `RESILIENCE_ENABLED=false` in an incident sees that it took (the
/// breaker's `Disabled` state shows only in `/health` and the gauge, and no transition is
/// logged for a breaker made disabled). The `setting` field names the setting, not the layer
/// that set it: the line lists where it can come from.
fn say_switches_off(p: &ProviderInner) {
    let c = &p.config;
    let name = p.name.escape_debug();
    let own = |global: &str| crate::config::provider_variable(p.name, global);
    if !c.enabled {
        tracing::info!(
            target: "resilience", provider = p.name, setting = "enabled",
            "[CONFIG] Resilience is off for provider {name} (RESILIENCE_ENABLED, {} or \
             Settings::enabled): each call runs once, directly, with no breaker, retry, time \
             limit or metrics",
            own("RESILIENCE_ENABLED"),
        );
        return;
    }
    match (c.retry_enabled, c.breaker_enabled) {
        (true, true) => {}
        (false, true) => tracing::info!(
            target: "resilience", provider = p.name, setting = "retry_enabled",
            "[CONFIG] Retries are off for provider {name} (RESILIENCE_RETRY_ENABLED, {} or \
             Settings::retry_enabled): each call makes one attempt, with the breaker on",
            own("RESILIENCE_RETRY_ENABLED"),
        ),
        (true, false) => tracing::info!(
            target: "resilience", provider = p.name, setting = "circuit_breaker_enabled",
            "[CONFIG] The circuit breaker is off for provider {name} \
             (RESILIENCE_CIRCUIT_BREAKER_ENABLED, {} or Settings::circuit_breaker_enabled): \
             calls are retried and never refused",
            own("RESILIENCE_CIRCUIT_BREAKER_ENABLED"),
        ),
        (false, false) => tracing::info!(
            target: "resilience", provider = p.name,
            setting = "retry_enabled,circuit_breaker_enabled",
            "[CONFIG] Retries and the circuit breaker are off for provider {name} \
             (RESILIENCE_RETRY_ENABLED, {} or Settings::retry_enabled; \
             RESILIENCE_CIRCUIT_BREAKER_ENABLED, {} or Settings::circuit_breaker_enabled): each \
             call makes one attempt and is never refused",
            own("RESILIENCE_RETRY_ENABLED"),
            own("RESILIENCE_CIRCUIT_BREAKER_ENABLED"),
        ),
    }
}

/// A retry budget that earns nothing per call and nothing per second is its capacity for the
/// life of the process: after that many retries the provider retries no more until `reset()`.
/// Each value is sound alone, and the pair may be meant (a test's lifetime allowance), so it
/// is a warning, not an error; but a service would otherwise find out in an outage, when
/// every retry is refused. Not for a provider allowed one attempt, which never retries. Called
/// with no lock of ours held: a log layer may make a provider.
fn warn_if_budget_never_refills(p: &ProviderInner) {
    let c = &p.config;
    if c.enabled
        && c.retry_enabled
        && c.max_attempts > 1
        && c.retry_budget_enabled
        && c.retry_budget_ratio == 0.0
        && c.retry_budget_min_per_second == 0.0
    {
        tracing::warn!(
            target: "resilience", provider = p.name, capacity = c.retry_budget_capacity,
            "[CONFIG] The retry budget of provider {} never refills (RETRY_BUDGET_RATIO=0 and \
             RETRY_BUDGET_MIN_PER_SECOND=0): after {} retries (RETRY_BUDGET_CAPACITY) it \
             allows none until reset(). Give either a value above 0, or switch the budget off \
             (RESILIENCE_RETRY_BUDGET_ENABLED=false) to bound retries by attempts alone",
            p.name.escape_debug(), c.retry_budget_capacity,
        );
    }
}

/// Whether `p` is logged for the first time. A bad global value (`RETRY_MAX_ATTEMPTS=abc`) is
/// found again as each provider is made; one line says it, not one per provider. The whole
/// problem is the key: the same global value in conflict with each provider's own setting
/// (`RETRY_BASE_DELAY=5` above two providers' max delays) is a problem of each, told apart by
/// what was expected.
fn first_report(p: &ConfigProblem) -> bool {
    static SEEN: Mutex<BTreeSet<(String, String, String)>> = Mutex::new(BTreeSet::new());
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).insert((
        p.variable.clone(),
        p.value.clone(),
        p.expected.clone(),
    ))
}

/// Whether the near miss of a variable's provider part (`KIMIV2` for `kimi-v2`) is warned
/// about for the first time: by the first provider made, or by an `init()`, which may know
/// names the first provider did not (those its builder is given), and so looks again.
fn first_near_warning(part: &str) -> bool {
    static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    WARNED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(part.to_owned())
}

/// Set by the first [`Builder::init`] (outside a test's isolation), whatever its outcome.
static INIT_RAN: AtomicBool = AtomicBool::new(false);

/// Set once the environment's `RESILIENCE_*` names were looked at, by [`Builder::init`] or by
/// the first provider made, so that their typos are reported once.
static NAMES_CHECKED: AtomicBool = AtomicBool::new(false);

#[cfg(not(test))]
fn process_vars() -> Vec<(String, String)> {
    std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

/// As [`process_env`]: none in this crate's unit tests.
#[cfg(test)]
fn process_vars() -> Vec<(String, String)> {
    Vec::new()
}

/// The providers the code names: those given settings in `code`, those made in `made`, and
/// every `#[resilient]` method's, made or not (registered at program load). A name may come
/// more than once.
fn named<'a>(code: &'a Registry, made: &'a Registry) -> Vec<&'a str> {
    code.provider_code
        .keys()
        .chain(made.providers.keys())
        .map(String::as_str)
        .chain(CallSite::registered().map(|s| -> &'a str { s.provider_name() }))
        .chain(named_site_providers())
        .collect()
}

/// The provider parts of `RESILIENCE_<PROVIDER>_…` variables (`env`, in their environment
/// form) that no `known` provider reads but one nearly does, with the nearest (all of them,
/// if several are as near): a misspelt provider part (`KIMIV2` for `kimi-v2`'s `KIMI_V2`)
/// configures a provider nobody calls.
///
/// Near: within two edits (a swap of neighbours is one) of a name of more than four
/// characters; for a shorter one, a letter added, dropped or swapped, not changed (`ECS` is
/// not a slip of `EC2`, nor `SNS` of `SQS`). Never a version of the same name (`GLM4` beside
/// `glm`, `GPT5` beside `gpt4`): siblings, each a provider of its own. Nearest of all, a
/// known part with a `_` typed twice after it (`KIMI__RETRY_…`) or with a switch's global
/// name kept whole (`KIMI_RESILIENCE_RETRY_ENABLED`).
pub(crate) fn near_misses<'a>(env: &[String], known: &[&'a str]) -> Vec<(String, Vec<&'a str>)> {
    near_misses_of(env, known, true)
}

/// [`near_misses`] of `env`, the environment forms of variables' provider parts
/// (`variables`) or of names given in code: the `RESILIENCE_` of a switch's global name kept
/// after the provider part is a slip of variable names only; in code, a name ending in
/// `-resilience` is a provider of its own.
fn near_misses_of<'a>(
    env: &[String],
    known: &[&'a str],
    variables: bool,
) -> Vec<(String, Vec<&'a str>)> {
    // Without its trailing version: digits, and the `_` before them.
    fn stem(s: &str) -> &str {
        s.trim_end_matches(|c: char| c.is_ascii_digit() || c == '_')
    }
    // The digits `stem` cut: none for a part that only ends in `_` (`KIMI__RETRY_…`, a `_`
    // typed twice, is no version of `KIMI`), the same for `GLM_4` and `GLM4`.
    fn version(s: &str) -> String {
        s[stem(s).len()..]
            .chars()
            .filter(char::is_ascii_digit)
            .collect()
    }
    let mut known: Vec<(String, &str)> = known.iter().map(|&k| (env_provider_name(k), k)).collect();
    known.sort_unstable();
    known.dedup();
    // The part as meant by two slips no name makes: a `_` typed twice before the setting, and
    // (in a variable's name) a switch's global name pasted whole
    // (`RESILIENCE_KIMI_RESILIENCE_RETRY_ENABLED`); not where the part without its extra `_`
    // is a known one (`X_RESILIENCE_` for a known `x-resilience`).
    let mut out = Vec::new();
    for e in env {
        if known.iter().any(|(k, _)| k == e) {
            continue;
        }
        let trimmed = e.trim_end_matches('_');
        let meant = match trimmed.strip_suffix("_RESILIENCE") {
            Some(before) if variables && !known.iter().any(|(k, _)| k == trimmed) => before,
            _ => trimmed,
        };
        let near = known.iter().filter_map(|(k, name)| {
            if meant == k {
                return Some((0, *name));
            }
            if stem(k) == stem(e) && version(k) != version(e) {
                return None;
            }
            let d = strsim::osa_distance(e, k);
            let ok = if k.len() > 4 {
                d <= 2
            } else {
                // Added or dropped, or two neighbours swapped (the same letters).
                let sorted = |s: &str| {
                    let mut b = s.as_bytes().to_vec();
                    b.sort_unstable();
                    b
                };
                d == 1 && (k.len() != e.len() || sorted(k) == sorted(e))
            };
            ok.then_some((d, *name))
        });
        let near: Vec<(usize, &str)> = near.collect();
        let Some(best) = near.iter().map(|&(d, _)| d).min() else {
            continue;
        };
        let names = near.iter().filter(|&&(d, _)| d == best).map(|&(_, n)| n);
        out.push((e.clone(), names.collect()));
    }
    out
}

/// The providers a near-miss provider part was likely meant to be, each with its variable
/// ending in `suffix`, for the warning (`…`) and for strict mode's problem (the variable's
/// own suffix) alike: `` `kimi` (RESILIENCE_KIMI_…) ``.
fn env_names_meant(names: &[impl AsRef<str>], suffix: &str) -> String {
    names
        .iter()
        .map(|n| {
            let n = n.as_ref();
            format!(
                "`{}` (RESILIENCE_{}_{suffix})",
                n.escape_debug(),
                env_provider_name(n)
            )
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

fn warn_near_miss(part: &str, names: &[impl AsRef<str>]) {
    let meant = env_names_meant(names, "…");
    tracing::warn!(
        target: "resilience", provider_part = %part,
        "[CONFIG] RESILIENCE_{part}_… configures a provider that no #[resilient] method, \
         call site, setting or provider made so far names: did you mean provider {meant}? If a provider \
         whose variables these are is made later, by a name the program computes, name it in \
         code before init() (Builder::provider(name, Settings::new())) to silence this"
    );
}

/// The names given settings in `providers` (`kimii`) that no `#[resilient]` method and none
/// of the providers `made` has, but one nearly does (`kimi`): their settings reach no call.
/// Each once, with the nearest. Not one given no setting (`Settings::new()`): that is how a
/// provider made later by a name the program computes is made known.
pub(crate) fn code_near_misses<'a>(
    providers: &[(String, Settings)],
    made: impl Iterator<Item = &'a str>,
) -> Vec<(String, Vec<String>)> {
    let called: Vec<&str> = CallSite::registered()
        .map(|s| -> &str { s.provider_name() })
        .chain(made)
        .collect();
    let mut set_up: Vec<&str> = providers
        .iter()
        .filter(|(n, s)| *s != Settings::new() && !called.contains(&n.as_str()))
        .map(|(n, _)| n.as_str())
        .collect();
    set_up.sort_unstable();
    set_up.dedup();
    set_up
        .into_iter()
        .flat_map(|g| {
            near_misses_of(&[env_provider_name(g)], &called, false)
                .into_iter()
                .map(move |(_, names)| {
                    (g.to_owned(), names.into_iter().map(str::to_owned).collect())
                })
        })
        .collect()
}

/// The providers a name given in code was likely meant to be, for the warning and for strict
/// mode's problem alike: `` `kimi` or `kimi2` ``.
fn code_names_meant(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{}`", n.escape_debug()))
        .collect::<Vec<_>>()
        .join(" or ")
}

pub(crate) fn warn_code_near_miss(given: &str, names: &[String]) {
    let meant = code_names_meant(names);
    tracing::warn!(
        target: "resilience", provider = given,
        "[CONFIG] Builder::provider(\"{}\", …) sets up a provider that no #[resilient] method, \
         call site or provider made so far names: did you mean provider {meant}? Its settings reach a \
         call only under the name it is given",
        given.escape_debug()
    );
}

/// Strict mode's problem for an unknown variable, as [`warn_unknown`] says it: named, with the
/// variable meant when one is near, and without its value (it stands in for it).
fn unknown_problem(name: &str) -> ConfigProblem {
    let hint = match crate::config::meant(name) {
        Some(meant) => format!("did you mean {meant}?"),
        None => "it matches none (a typo?)".to_owned(),
    };
    name_problem(
        name,
        format!(
            "the name of a resilience setting (strict mode refuses unknown names; the value is \
             not shown): {hint}"
        ),
    )
}

/// Strict mode's problems for the provider part `part`, near the known `names`
/// ([`near_misses`]): one for each of `vars` with that part, naming the variable meant.
fn near_miss_problems(part: &str, names: &[String], vars: &[String]) -> Vec<ConfigProblem> {
    let mut vars: Vec<&String> = vars.iter().collect();
    vars.sort_unstable();
    vars.dedup();
    vars.into_iter()
        .filter_map(|var| {
            let (p, suffix) = provider_var_parts(var)?;
            (p == part).then(|| {
                let meant = env_names_meant(names, suffix);
                name_problem(
                    var,
                    format!(
                        "a variable of a provider the program names (no #[resilient] method, \
                         call site, setting or provider made names RESILIENCE_{part}_…; one made later by \
                         a name the program computes is named in code before init(): \
                         Builder::provider(name, Settings::new())): did you mean provider \
                         {meant}?"
                    ),
                )
            })
        })
        .collect()
}

/// Strict mode's problems for names given settings in code near a called provider's
/// ([`code_near_misses`]).
pub(crate) fn code_near_problems(code_near: &[(String, Vec<String>)]) -> Vec<ConfigProblem> {
    code_near
        .iter()
        .map(|(given, names)| {
            let meant = code_names_meant(names);
            name_problem(
                &format!("Builder::provider(\"{}\", …)", given.escape_debug()),
                format!(
                    "the name of a provider that a #[resilient] method, a call site or a provider \
                     made so far has (its settings reach a call only under the name given): did you mean \
                     provider {meant}?"
                ),
            )
        })
        .collect()
}

/// A problem with a name itself: the name stands for the value, which is not kept (see
/// `ConfigProblem`'s `Display`).
fn name_problem(name: &str, expected: String) -> ConfigProblem {
    ConfigProblem {
        settled: None,
        name_only: true,
        variable: name.to_owned(),
        value: name.to_owned(),
        expected,
    }
}

fn warn_unknown(name: &str) {
    // The text names it as messages do (quoted when it would not show plainly); the field
    // holds it as it is, a string, as `provider` does: written by its `Display` (`%`), a line
    // feed in it split the fmt output's line, which escapes a string.
    let shown = crate::error::shown_name(name);
    match crate::config::meant(name) {
        Some(meant) => {
            tracing::warn!(target: "resilience", variable = name, "[CONFIG] {shown} matches no resilience setting; it is ignored: did you mean {meant}?")
        }
        None => {
            tracing::warn!(target: "resilience", variable = name, "[CONFIG] {shown} matches no resilience setting (a typo?); it is ignored")
        }
    }
}

/// A name without our prefix near a global's (`RETRY_MAX_ATEMPTS`): said, never refused, as
/// it may be another program's.
fn warn_near_global(name: &str, var: &str) {
    let shown = crate::error::shown_name(name);
    tracing::warn!(
        target: "resilience", variable = name, meant = var,
        "[CONFIG] {shown} is no resilience setting, but near one: did you mean {var}? It is \
         ignored (if it is another program's variable, nothing is wrong)"
    );
}

/// Without `init()`, the first provider made looks over the environment's `RESILIENCE_*`
/// names once, so a misspelt or wrongly cased one is a warning rather than silence (bad values
/// are reported as each provider is made, a global one once).
///
/// A flag, not a `Once`: the lines are logged with nothing held, so a log layer that itself
/// makes a provider (a log shipper with a resilient client) re-enters without waiting on
/// itself.
fn check_names_once() {
    if NAMES_CHECKED.swap(true, Ordering::Relaxed) {
        return;
    }
    let scan = scan_provider_vars(process_vars().into_iter(), OTHER_VARIABLES);
    scan.unknown.iter().for_each(|name| warn_unknown(name));
    scan.near_globals
        .iter()
        .for_each(|(name, var)| warn_near_global(name, var));
    // What the code names by now, copied out, so that nothing is held while logging.
    let named: Vec<String> = {
        let reg = registry();
        named(&reg, &reg).into_iter().map(str::to_owned).collect()
    };
    let named: Vec<&str> = named.iter().map(String::as_str).collect();
    for (part, names) in near_misses(&scan.providers, &named) {
        if first_near_warning(&part) {
            warn_near_miss(&part, &names);
        }
    }
    for p in scan.misnamed {
        tracing::warn!(
            target: "resilience", variable = p.variable.as_str(), expected = %p.expected,
            "[CONFIG] {} is read by no provider: expected {}; it is ignored. Call \
             resilience::init() at start-up to turn this into an error.",
            crate::error::shown_name(&p.variable), p.expected,
        );
    }
}

/// Cached per call site: the first call resolves the name, later calls do one load.
///
/// Not `get_or_init`: making a provider logs (a bad value, a typo), and a log layer that
/// calls this same site while it handles that line (a log shipper with a resilient client)
/// would wait for ever on the cell its own thread is filling. Two threads that both resolve
/// get the same `&'static` from the registry, so the one that loses the `set` loses nothing.
pub(crate) fn resolve_site(
    cell: &OnceLock<&'static ProviderInner>,
    name: &str,
) -> &'static ProviderInner {
    if let Some(p) = cell.get() {
        return p;
    }
    let p = lookup(name);
    let _ = cell.set(p);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// `init()` against an environment made of `pairs` instead of the process's.
    fn init_with_env(pairs: &[(&str, &str)]) -> Result<(), ConfigError> {
        init_builder_with_env(Builder::new(), pairs, true)
    }

    /// `builder.init_with` against an environment made of `pairs`, with the typos not yet
    /// reported (`warn_typos`) or already reported by a provider made before.
    fn init_builder_with_env(
        builder: Builder,
        pairs: &[(&str, &str)],
        warn_typos: bool,
    ) -> Result<(), ConfigError> {
        let env: HashMap<&str, &str> = pairs.iter().copied().collect();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let vars = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        builder.init_with(&lookup, vars, warn_typos)
    }

    /// The variables (or code calls) the problems name.
    fn named_in(err: &ConfigError) -> Vec<&str> {
        err.problems().iter().map(|p| p.variable.as_str()).collect()
    }

    #[test]
    fn strict_refuses_an_unknown_variable_by_its_name_never_its_value() {
        let secret = "sk-live-0123456789abcdef";
        let env = [
            ("RESILIENCE_REG_STRICT_LEDGER_RETRY_MAX_ATEMPTS", secret),
            ("RESILIENCE_REG_STRICT_LEDGER_TOKEN", secret),
        ];
        let strict = || {
            Builder::new()
                .provider("reg-strict-ledger", Settings::new().max_attempts(6))
                .strict()
        };
        let err = init_builder_with_env(strict(), &env, true).unwrap_err();
        let mut vars = named_in(&err);
        vars.sort_unstable();
        assert_eq!(
            vars,
            [
                "RESILIENCE_REG_STRICT_LEDGER_RETRY_MAX_ATEMPTS",
                "RESILIENCE_REG_STRICT_LEDGER_TOKEN"
            ],
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(
                "- RESILIENCE_REG_STRICT_LEDGER_RETRY_MAX_ATEMPTS: expected the name of a \
                 resilience setting (strict mode refuses unknown names; the value is not \
                 shown): did you mean RESILIENCE_REG_STRICT_LEDGER_RETRY_MAX_ATTEMPTS?"
            ),
            "{text}"
        );
        assert!(
            text.contains("- RESILIENCE_REG_STRICT_LEDGER_TOKEN: expected the name of a"),
            "{text}"
        );
        assert!(text.contains("it matches none (a typo?)"), "{text}");
        for shown in [text, format!("{:?}", err.problems())] {
            assert!(!shown.contains("sk-live"), "{shown}");
        }
        assert!(err.problems().iter().all(|p| p.value != secret), "{err}");
        assert!(
            !registry().provider_code.contains_key("reg-strict-ledger"),
            "nothing is installed in strict mode when a problem is found"
        );
        // As the first provider made would have: strict does not depend on what was logged.
        let err = init_builder_with_env(strict(), &env, false).unwrap_err();
        assert_eq!(err.problems().len(), 2, "{err}");
        // Without strict: a warning, and the settings are installed.
        let builder = Builder::new().provider("reg-strict-ledger", Settings::new().max_attempts(6));
        init_builder_with_env(builder, &env, true).unwrap();
        let (c, _) = registry().resolve("reg-strict-ledger", &|_| None);
        assert_eq!(c.max_attempts, 6);
    }

    /// A prefixed global misspelt whole is refused naming the one meant; a global misspelt
    /// without the prefix, which may be another program's, is a warning in strict mode too.
    #[test]
    fn strict_names_a_misspelt_switch_and_only_warns_of_an_unprefixed_near_miss() {
        let err = init_builder_with_env(
            Builder::new().strict(),
            &[("RESILIENCE_STICT", "1"), ("RETRY_MAX_ATEMPTS", "4")],
            true,
        )
        .unwrap_err();
        assert_eq!(named_in(&err), ["RESILIENCE_STICT"], "{err}");
        assert!(
            err.to_string().contains("did you mean RESILIENCE_STRICT?"),
            "{err}"
        );
        init_builder_with_env(Builder::new().strict(), &[("RETRY_MAX_ATEMPTS", "4")], true)
            .unwrap();
    }

    /// A bad value that happens to be its variable's name (`RETRY_JITTER=RETRY_JITTER`, an
    /// env file's template left unfilled) is a bad value, shown as any is: it was taken for
    /// strict mode's name-only problem, whose value is not shown, and read as a name refused.
    #[test]
    fn a_bad_value_equal_to_its_variable_s_name_is_shown() {
        for builder in [Builder::new(), Builder::new().strict()] {
            let err = init_builder_with_env(builder, &[("RETRY_JITTER", "RETRY_JITTER")], true)
                .unwrap_err();
            assert!(
                err.to_string()
                    .contains("\n  - RETRY_JITTER=RETRY_JITTER: expected one of full"),
                "{err}"
            );
        }
        // Strict mode's own problems still name the variable alone.
        let err = init_builder_with_env(
            Builder::new().strict(),
            &[("RESILIENCE_REG_STRICT_ECHO_TOKEN", "hunter2")],
            true,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("\n  - RESILIENCE_REG_STRICT_ECHO_TOKEN: expected the name of a"),
            "{err}"
        );
    }

    #[test]
    fn strict_refuses_a_provider_part_near_a_known_one() {
        let env = [("RESILIENCE_REG_STRICT_HARBR_RETRY_MAX_ATTEMPTS", "4")];
        let known = || Builder::new().provider("reg-strict-harbor", Settings::new());
        // Warned about already, by a provider made before `init()`.
        assert!(first_near_warning("REG_STRICT_HARBR"));
        let err = init_builder_with_env(known().strict(), &env, false).unwrap_err();
        assert_eq!(
            named_in(&err),
            ["RESILIENCE_REG_STRICT_HARBR_RETRY_MAX_ATTEMPTS"],
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(
                "no #[resilient] method, call site, setting or provider made names \
                 RESILIENCE_REG_STRICT_HARBR_…"
            ) && text.ends_with(
                "did you mean provider `reg-strict-harbor` \
                 (RESILIENCE_REG_STRICT_HARBOR_RETRY_MAX_ATTEMPTS)?"
            ),
            "{text}"
        );
        assert!(!text.contains("=4"), "{text}");
        // Without strict: a warning only.
        init_builder_with_env(known(), &env, true).unwrap();
    }

    #[test]
    fn strict_refuses_a_name_in_code_near_a_called_provider() {
        let _called = provider("reg-strict-quartz");
        let slip =
            || Builder::new().provider("reg-strict-quartzz", Settings::new().max_attempts(5));
        let err = init_builder_with_env(slip().strict(), &[], true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid resilience configuration (1 problem)\n  - \
             Builder::provider(\"reg-strict-quartzz\", …): expected the name of a provider that \
             a #[resilient] method, a call site or a provider made so far has (its settings \
             reach a call only under the name given): did you mean provider `reg-strict-quartz`?"
        );
        assert!(!registry().provider_code.contains_key("reg-strict-quartzz"));
        // Without strict: a warning, and installed.
        init_builder_with_env(slip(), &[], true).unwrap();
        assert!(registry().provider_code.contains_key("reg-strict-quartzz"));
    }

    /// As the strict rustdoc says: a provider of its own near a called one, given its settings
    /// by `configure()` (which makes it), is no slip for a strict `init()`.
    #[test]
    fn strict_accepts_a_near_name_made_by_configure() {
        let _called = provider("reg-strict-harbor2x");
        let settings = || Settings::new().max_attempts(5);
        let near = || {
            Builder::new()
                .provider("reg-strict-harbour2x", settings())
                .strict()
        };
        assert!(init_builder_with_env(near(), &[], true).is_err());
        configure_with("reg-strict-harbour2x", settings(), &|_| None).unwrap();
        init_builder_with_env(near(), &[], true).unwrap();
    }

    #[test]
    fn strict_returns_every_problem_in_one_error() {
        let _called = provider("reg-strict-orchid");
        let env = [
            ("RESILIENCE_REG_STRICT_ORCHID_RETRY_JITER", "full"),
            ("RESILIENCE_REG_STRICT_ORCHD_CIRCUIT_BREAKER_TIMEOUT", "2"),
            ("RESILIENCE_REG_STRICT_ORCHID_RETRY_MAX_ATTEMPTS", "abc"),
        ];
        let builder = Builder::new()
            .provider("reg-strict-orchidd", Settings::new().max_attempts(5))
            .strict();
        let err = init_builder_with_env(builder, &env, true).unwrap_err();
        let mut vars = named_in(&err);
        vars.sort_unstable();
        assert_eq!(
            vars,
            [
                "Builder::provider(\"reg-strict-orchidd\", …)",
                "RESILIENCE_REG_STRICT_ORCHD_CIRCUIT_BREAKER_TIMEOUT",
                "RESILIENCE_REG_STRICT_ORCHID_RETRY_JITER",
                "RESILIENCE_REG_STRICT_ORCHID_RETRY_MAX_ATTEMPTS",
            ],
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("RESILIENCE_REG_STRICT_ORCHID_RETRY_MAX_ATTEMPTS=abc: expected"),
            "bad values are reported as before: {err}"
        );
        assert!(!registry().provider_code.contains_key("reg-strict-orchidd"));
    }

    #[test]
    fn strict_with_a_clean_environment_installs_the_settings() {
        let env = [("RESILIENCE_REG_STRICT_MEADOW_RETRY_BASE_DELAY", "0.5")];
        let builder = Builder::new()
            .provider("reg-strict-meadow", Settings::new().max_attempts(6))
            .strict();
        init_builder_with_env(builder, &env, true).unwrap();
        let (c, _) = registry().resolve("reg-strict-meadow", &|_| None);
        assert_eq!(c.max_attempts, 6);
    }

    /// `RESILIENCE_STRICT`, when set, decides (the environment beats code); a bad value is a
    /// problem naming it, and leaves the code's choice. It is a variable of ours, no typo.
    #[test]
    fn resilience_strict_switches_strict_mode() {
        let typo = ("RESILIENCE_REG_STRICT_CEDAR_RETRY_MAX_ATEMPTS", "4");
        let err =
            init_builder_with_env(Builder::new(), &[typo, ("RESILIENCE_STRICT", " Yes")], true)
                .unwrap_err();
        assert_eq!(named_in(&err), [typo.0], "{err}");
        init_builder_with_env(
            Builder::new().strict(),
            &[typo, ("RESILIENCE_STRICT", "off")],
            true,
        )
        .unwrap();
        init_builder_with_env(Builder::new().strict(), &[("RESILIENCE_STRICT", "1")], true)
            .unwrap();
        let err =
            init_builder_with_env(Builder::new(), &[typo, ("RESILIENCE_STRICT", "sure")], true)
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid resilience configuration (1 problem)\n  - RESILIENCE_STRICT=sure: expected \
             true or false (also 1/0, yes/no, on/off)"
        );
        let err = init_builder_with_env(
            Builder::new().strict(),
            &[typo, ("RESILIENCE_STRICT", "sure")],
            true,
        )
        .unwrap_err();
        assert_eq!(named_in(&err), ["RESILIENCE_STRICT", typo.0], "{err}");
        let scan = scan_provider_vars(
            [("RESILIENCE_STRICT".to_owned(), "true".to_owned())].into_iter(),
            OTHER_VARIABLES,
        );
        assert!(scan.unknown.is_empty() && scan.providers.is_empty());
    }

    /// A `#[resilient]` method's site, as the macro registers it: known to `init()` before
    /// its first call, which makes its provider.
    static REGISTERED: crate::CallSite = crate::CallSite::new("reg-site-v2", "upload");
    inventory::submit! { crate::__private::Registered(&REGISTERED) }

    /// A site made by name (`call_site`) before `init()`, as README's client is: its
    /// provider is known to `init()` as a `#[resilient]` method's is, though not made yet. Its
    /// variables and its settings in code were a slip of a called provider's near it (refused
    /// when strict), and a name clashing with it went unseen.
    #[test]
    fn init_knows_a_named_site_s_provider_before_its_first_call() {
        let _called = provider("reg-nsite-harbor");
        let _site = call_site("reg-nsite-harbar", "upload");
        let env = [("RESILIENCE_REG_NSITE_HARBAR_RETRY_JITTER", "none")];
        let builder = || {
            Builder::new()
                .provider("reg-nsite-harbar", Settings::new().max_attempts(3))
                .strict()
        };
        init_builder_with_env(builder(), &env, true).unwrap();
        assert!(!registry().providers.contains_key("reg-nsite-harbar"));
        // Its variables alone, with no settings in code naming it (`named()`, not the
        // settings given, makes it known): no slip either.
        let _called = provider("reg-nsite-quayside");
        let _site = call_site("reg-nsite-quaysade", "upload");
        let env = [("RESILIENCE_REG_NSITE_QUAYSADE_RETRY_MAX_ATTEMPTS", "4")];
        init_builder_with_env(Builder::new().strict(), &env, true).unwrap();

        let _site = call_site_without_retry("reg-nsite-v2", "create");
        let err = Builder::new()
            .provider("reg-nsite.v2", Settings::new())
            .init_with(&|_: &str| None, vec![], false)
            .unwrap_err();
        let clashes = clashing(&err, "RESILIENCE_REG_NSITE_V2_");
        assert_eq!(clashes, ["reg-nsite-v2", "reg-nsite.v2"], "{err}");
        assert!(!registry().providers.contains_key("reg-nsite-v2"));
    }

    /// The names `err` reports as clashing over the variables that start with `prefix`.
    fn clashing<'a>(err: &'a ConfigError, prefix: &str) -> Vec<&'a str> {
        err.problems()
            .iter()
            .filter(|p| p.expected.contains(prefix))
            .map(|p| p.value.as_str())
            .collect()
    }

    #[test]
    fn init_finds_a_clash_with_a_resilient_methods_provider_before_its_first_call() {
        let err = Builder::new()
            .provider("reg-site.v2", Settings::new())
            .init_with(&|_: &str| None, vec![], false)
            .unwrap_err();
        let clashes = clashing(&err, "RESILIENCE_REG_SITE_V2_");
        assert_eq!(clashes, ["reg-site-v2", "reg-site.v2"], "{err}");
        assert!(
            !registry().providers.contains_key("reg-site-v2"),
            "checking it made the provider"
        );
    }

    /// A doubled `_` between the provider part and the setting
    /// (`RESILIENCE_KIMI__RETRY_MAX_ATTEMPTS`, read as provider part `KIMI_`), and the
    /// `RESILIENCE_` of a switch's global name kept after the provider
    /// (`RESILIENCE_KIMI_RESILIENCE_RETRY_ENABLED`, part `KIMI_RESILIENCE`), configured a
    /// provider nobody calls without a word: the first was taken for a version of `KIMI`
    /// (its `_` stripped as a version's), the second is too far off to be a spelling slip.
    #[test]
    fn a_doubled_underscore_or_a_kept_resilience_prefix_is_a_near_miss() {
        let env = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let known = ["kimi", "kimi-v2", "glm4", "upload-service"];
        assert_eq!(
            near_misses(
                &env(&[
                    "KIMI_",
                    "KIMI_V2__",
                    "KIMI_RESILIENCE",
                    "UPLOAD_SERVICE_RESILIENCE",
                    "GLM_4",
                ]),
                &known
            ),
            [
                ("KIMI_".to_owned(), vec!["kimi"]),
                ("KIMI_V2__".to_owned(), vec!["kimi-v2"]),
                ("KIMI_RESILIENCE".to_owned(), vec!["kimi"]),
                (
                    "UPLOAD_SERVICE_RESILIENCE".to_owned(),
                    vec!["upload-service"]
                ),
                // `glm-4` for `glm4`: the same version, written apart.
                ("GLM_4".to_owned(), vec!["glm4"]),
            ]
        );
        // Still siblings: another version, or a version added.
        assert_eq!(
            near_misses(&env(&["KIMI_V3", "GLM5", "GLM4_5"]), &known),
            []
        );
        // A provider of that very name is no slip.
        assert_eq!(
            near_misses(&env(&["KIMI_RESILIENCE"]), &["kimi", "kimi-resilience"]),
            []
        );
    }

    /// The `_RESILIENCE` rule is a slip of variable names (a switch's global
    /// name pasted after the provider part); a name given in code cannot make it, so a
    /// provider named `search-resilience` set up in code beside a `#[resilient]` `search` was
    /// warned about as a slip of `search` (it is 11 edits away). And in the environment, a
    /// `_` typed twice after `X_RESILIENCE`, a known provider's part, is that provider's slip,
    /// not `x`'s.
    #[test]
    fn a_name_ending_in_resilience_is_no_slip_in_code_nor_when_known() {
        let made = ["search".to_owned()];
        let given = [(
            "search-resilience".to_owned(),
            Settings::new().max_attempts(5),
        )];
        assert_eq!(
            code_near_misses(&given, made.iter().map(String::as_str)),
            Vec::<(String, Vec<String>)>::new()
        );
        // The doubled `_` of a code name is still its slip (`search-` for `search`).
        let given = [("search-".to_owned(), Settings::new().max_attempts(5))];
        assert_eq!(
            code_near_misses(&given, made.iter().map(String::as_str)),
            [("search-".to_owned(), vec!["search".to_owned()])]
        );
        let env = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            near_misses(&env(&["X_RESILIENCE_"]), &["x", "x-resilience"]),
            [("X_RESILIENCE_".to_owned(), vec!["x-resilience"])]
        );
        assert_eq!(
            near_misses(&env(&["X_RESILIENCE"]), &["x"]),
            [("X_RESILIENCE".to_owned(), vec!["x"])]
        );
    }

    #[test]
    fn a_provider_part_near_a_known_one_is_a_near_miss() {
        let env = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let known = ["kimi-v2", "glm", "upload-service", "gpt4", "ec2", "sqs"];
        let found = |e: &[&str]| near_misses(&env(e), &known);
        assert_eq!(
            found(&[
                "KIMIV2",
                "KIMI_V2",
                "UPLOAD_SERVIC",
                "UPLAOD_SERVICE",
                "GML",
                "GLMM",
                "OPENAI"
            ]),
            [
                ("KIMIV2".to_owned(), vec!["kimi-v2"]),
                ("UPLOAD_SERVIC".to_owned(), vec!["upload-service"]),
                // A swap of neighbours is one edit.
                ("UPLAOD_SERVICE".to_owned(), vec!["upload-service"]),
                ("GML".to_owned(), vec!["glm"]),
                ("GLMM".to_owned(), vec!["glm"]),
            ]
        );
        // Versions of a name are siblings; a short name's changed letter is another name;
        // three edits off a long one is another name.
        let others = [
            "GLM4",
            "GLM_4_5",
            "GPT5",
            "GPT",
            "KIMI_V3",
            "ECS",
            "SNS",
            "KIMI_V345",
        ];
        assert_eq!(found(&others), []);
        // As near to two: both named, whatever their order.
        assert_eq!(
            near_misses(&env(&["KIMI_VX"]), &["kimi-v3", "kimi-v1"]),
            [("KIMI_VX".to_owned(), vec!["kimi-v1", "kimi-v3"])]
        );
        assert!(near_misses(&env(&["KIMIV2"]), &[]).is_empty());
    }

    #[test]
    fn init_reports_every_bad_value() {
        let err = init_with_env(&[
            ("RETRY_MAX_ATTEMPTS", "abc"),
            ("CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS", "0"),
            ("RESILIENCE_REG_T1_RETRY_BASE_DELAY", "-2"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = err.problems().iter().map(|p| p.variable.as_str()).collect();
        assert!(vars.contains(&"RETRY_MAX_ATTEMPTS"), "{err}");
        assert!(
            vars.contains(&"CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS"),
            "{err}"
        );
        assert!(
            vars.contains(&"RESILIENCE_REG_T1_RETRY_BASE_DELAY"),
            "{err}"
        );
        assert_eq!(vars.len(), 3, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("RETRY_MAX_ATTEMPTS=abc: expected a whole number"),
            "{text}"
        );
    }

    #[test]
    fn init_checks_the_global_layer_with_the_environment() {
        // Before, only providers `init()` knew were checked, and `#[resilient]` ones are not
        // known until their first call, which then logged what `init()` had accepted.
        let err =
            init_with_env(&[("RETRY_BASE_DELAY", "5"), ("RETRY_MAX_DELAY", "2")]).unwrap_err();
        // (Other tests' providers, sharing this registry, may report it against their own
        // settings too.)
        assert!(
            err.problems()
                .iter()
                .any(|p| p.variable == "RETRY_BASE_DELAY"
                    && p.expected == "at most the maximum delay (RETRY_MAX_DELAY=2)"),
            "{err}"
        );
        let err = Builder::new()
            .defaults(Settings::new().base_delay(Duration::from_secs(5)))
            .init_with(
                &|k: &str| (k == "RETRY_MAX_DELAY").then(|| "2".to_owned()),
                vec![],
                true,
            )
            .unwrap_err();
        assert_eq!(
            err.problems()[0].variable,
            "Builder::defaults: Settings::base_delay",
            "{err}"
        );
    }

    #[test]
    fn a_small_window_takes_the_minimum_calls_down_unless_one_was_set() {
        let rate = ("RESILIENCE_REG_WIN_CIRCUIT_BREAKER_FAILURE_RATE", "0.5");
        let window = ("RESILIENCE_REG_WIN_CIRCUIT_BREAKER_WINDOW_SIZE", "10");
        init_with_env(&[rate, window]).unwrap();
        let err = init_with_env(&[
            rate,
            window,
            ("RESILIENCE_REG_WIN_CIRCUIT_BREAKER_MINIMUM_CALLS", "30"),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string().lines().nth(1).unwrap().trim(),
            "- RESILIENCE_REG_WIN_CIRCUIT_BREAKER_MINIMUM_CALLS=30: expected at most the \
             window size (RESILIENCE_REG_WIN_CIRCUIT_BREAKER_WINDOW_SIZE=10)",
            "{err}"
        );
    }

    #[test]
    fn a_provider_variable_no_provider_reads_is_refused() {
        for var in [
            "RESILIENCE_reg_low_RETRY_MAX_ATTEMPTS",
            "RESILIENCE_REG-LOW_RETRY_MAX_ATTEMPTS",
        ] {
            let err = init_with_env(&[(var, "7")]).unwrap_err();
            assert_eq!(err.problems()[0].variable, var, "{err}");
            assert!(
                err.problems()[0]
                    .expected
                    .contains("(RESILIENCE_REG_LOW_RETRY_MAX_ATTEMPTS)"),
                "{err}"
            );
        }
    }

    #[test]
    fn init_checks_code_settings_and_conflicts() {
        let none = |_: &str| None;
        let err = Builder::new()
            .provider(
                "reg-t2",
                Settings::new()
                    .base_delay(Duration::from_secs(9))
                    .max_delay(Duration::from_secs(3)),
            )
            .init_with(&none, vec![], true)
            .unwrap_err();
        assert_eq!(
            err.problems()[0].variable,
            "Builder::provider(\"reg-t2\"): Settings::base_delay"
        );
        assert!(
            !registry().provider_code.contains_key("reg-t2"),
            "code settings with problems of their own are not installed"
        );
        // The same mistake for two providers is two problems, each saying where it was made
        // (merged into one, fixing the first showed the same line again, now the second's).
        let err = Builder::new()
            .provider("reg-t2a", Settings::new().half_open_max_calls(0))
            .provider("reg-t2b", Settings::new().half_open_max_calls(0))
            .init_with(&none, vec![], true)
            .unwrap_err();
        let vars: Vec<&str> = err.problems().iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            vars,
            [
                "Builder::provider(\"reg-t2a\"): Settings::half_open_max_calls",
                "Builder::provider(\"reg-t2b\"): Settings::half_open_max_calls"
            ],
            "{err}"
        );

        let p = provider("reg-t3");
        assert_eq!(p.config().max_attempts, 3);
        let err = Builder::new()
            .provider("reg-t3", Settings::new().max_attempts(9))
            .init_with(&none, vec![], true)
            .unwrap_err();
        assert_eq!(
            err.problems()[0].variable,
            "provider `reg-t3`: Settings::max_attempts (RESILIENCE_REG_T3_RETRY_MAX_ATTEMPTS)"
        );
        assert_eq!(err.problems()[0].value, "9");
        assert!(
            err.problems()[0]
                .expected
                .starts_with("3, the value it was set up with"),
            "{err}"
        );
        Builder::new()
            .provider("reg-t4", Settings::new().max_attempts(9))
            .init_with(&none, vec![], true)
            .unwrap();
        assert_eq!(provider("reg-t4").config().max_attempts, 9);
    }

    /// From helper-100's review: one bad variable made `init()` drop every code setting, and
    /// a service that logged the error and went on ran with the built-in defaults (worse than
    /// not calling `init()` at all), while the log line said the code settings applied.
    #[test]
    fn code_settings_are_installed_when_only_the_environment_is_wrong() {
        let env = [("RESILIENCE_REG_T20_RETRY_MAX_ATTEMPTS", "abc")];
        let lookup = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let vars = env.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec();
        let err = Builder::new()
            .provider(
                "reg-t20",
                Settings::new()
                    .base_delay(Duration::from_millis(100))
                    .breaker_timeout(Duration::from_secs(2)),
            )
            .init_with(&lookup, vars, true)
            .unwrap_err();
        assert!(
            err.problems()
                .iter()
                .any(|p| p.variable == "RESILIENCE_REG_T20_RETRY_MAX_ATTEMPTS"),
            "{err}"
        );
        let (c, _) = registry().resolve("reg-t20", &|_| None);
        assert_eq!(
            (c.base_delay, c.breaker_timeout, c.max_attempts),
            (Duration::from_millis(100), Duration::from_secs(2), 3)
        );
    }

    #[test]
    fn init_checks_conflicts_of_providers_named_only_in_the_environment() {
        let err = init_with_env(&[
            ("RESILIENCE_REG_T6_RETRY_BASE_DELAY", "2"),
            ("RESILIENCE_REG_T6_RETRY_MAX_DELAY", "0.5"),
        ])
        .unwrap_err();
        assert_eq!(
            err.problems()[0].variable,
            "RESILIENCE_REG_T6_RETRY_BASE_DELAY",
            "{err}"
        );
    }

    #[test]
    fn an_environment_name_is_checked_with_its_providers_code_settings() {
        // reg-t7 resolves to base 2 s, max 10 s: valid. Checked under its environment name
        // alone (REG_T7, without the code's max delay) it would be base 2 > max 1.
        let env: HashMap<&str, &str> = [
            ("RETRY_MAX_DELAY", "1"),
            ("RESILIENCE_REG_T7_RETRY_BASE_DELAY", "2"),
        ]
        .into_iter()
        .collect();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let vars = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let result = Builder::new()
            .provider("reg-t7", Settings::new().max_delay(Duration::from_secs(10)))
            .init_with(&lookup, vars, true);
        // Providers other tests created meanwhile resolve differently under this environment
        // ("already set up"); none of that may be about reg-t7.
        if let Err(e) = result {
            for p in e.problems() {
                assert!(
                    !p.variable.contains("REG_T7") && !p.variable.contains("reg-t7"),
                    "{e}"
                );
                assert!(p.expected.contains("the value it was set up with"), "{e}");
            }
        }
    }

    #[test]
    fn names_whose_variables_clash_are_refused() {
        let none = |_: &str| None;
        let clash = |names: &[&str]| {
            let mut b = Builder::new();
            for n in names {
                b = b.provider(n, Settings::new());
            }
            let err = b.init_with(&none, vec![], true).unwrap_err();
            assert!(
                !registry().provider_code.contains_key(names[0]),
                "nothing installed on error"
            );
            err.to_string()
        };
        let text = clash(&["retry"]);
        assert!(
            text.contains("RESILIENCE_RETRY_ENABLED, its RESILIENCE_ENABLED, is a global"),
            "{text}"
        );
        let text = clash(&["reg-t8-retry", "reg-t8"]);
        assert!(
            text.contains("RESILIENCE_REG_T8_RETRY_ENABLED, its RESILIENCE_ENABLED, is provider `reg-t8`'s RESILIENCE_RETRY_ENABLED"),
            "{text}"
        );
        let text = clash(&["reg.t9", "reg-t9"]);
        assert!(text.contains("provider `reg-t9` reads them too"), "{text}");
        for empty in ["", "--"] {
            let text = clash(&[empty]);
            assert!(
                text.contains("at least one ASCII letter or digit"),
                "{text}"
            );
        }
        // A stray space makes a breaker of its own, under variables no operator sets; a
        // control character would break the one-problem-per-line text, and is escaped.
        for (odd, shown) in [
            (" reg-t11", "` reg-t11`"),
            ("reg-t11 ", "`reg-t11 `"),
            ("reg\nt11", "`reg\\nt11`"),
            ("reg-t11\0", "`reg-t11\\0`"),
        ] {
            let text = clash(&[odd]);
            assert!(
                text.contains(
                    "without leading or trailing spaces, control characters or invisible ones"
                ) && text.contains(shown)
                    && text.lines().count() == 2,
                "{text}"
            );
            assert!(configure(odd, Settings::new()).is_err(), "{odd:?}");
        }
        let err = configure("retry", Settings::new()).unwrap_err();
        assert!(err.to_string().contains("is a global variable"), "{err}");
        // configure() sees names that init() registered, not only providers in use.
        Builder::new()
            .provider("reg-t10", Settings::new())
            .init_with(&none, vec![], true)
            .unwrap();
        let err = configure("reg-t10-retry", Settings::new()).unwrap_err();
        assert!(err.to_string().contains("provider `reg-t10`'s"), "{err}");
        assert!(!registry().provider_code.contains_key("reg-t10-retry"));
        // Realistic names pass, alone and together.
        let names = [
            "openai",
            "glm-4",
            "kimi_v2",
            "enabled",
            "metrics",
            "circuit",
            "anthropic",
        ];
        assert!(crate::config::name_clashes(&names, OTHER_VARIABLES).is_empty());
    }

    /// Checking a name against only the names it may share variables with finds exactly what
    /// checking it against all of them finds.
    #[test]
    fn clashes_found_among_related_names_are_all_the_clashes() {
        use rand::{Rng, SeedableRng};
        const PARTS: &[&str] = &[
            "kimi", "retry", "enabled", "circuit", "breaker", "max", "v2", "-", ".", "_", "glm",
            "timeout", "budget", "metrics",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..200 {
            let names: Vec<String> = (0..rng.random_range(1..12))
                .map(|_| {
                    (0..rng.random_range(1..4))
                        .map(|_| PARTS[rng.random_range(0..PARTS.len())])
                        .collect()
                })
                .collect();
            let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
            all.sort_unstable();
            all.dedup();
            let full = crate::config::name_clashes(&all, OTHER_VARIABLES);
            for &name in &all {
                let env = env_provider_name(name);
                let related: Vec<&str> = all
                    .iter()
                    .copied()
                    .filter(|o| *o == name || may_share_variables(&env, &env_provider_name(o)))
                    .collect();
                let subject = format!("provider `{}`", name.escape_debug());
                let mine = |ps: Vec<ConfigProblem>| -> Vec<String> {
                    ps.into_iter()
                        .filter(|p| p.variable == subject)
                        .map(|p| p.expected)
                        .collect()
                };
                assert_eq!(
                    mine(crate::config::name_clashes(&related, OTHER_VARIABLES)),
                    mine(full.clone()),
                    "{name} among {all:?}"
                );
            }
        }
    }

    /// A provider and a call site each own the 128-byte blocks they are in: nothing else the
    /// heap or the program's statics hold can share a line that every call reads.
    #[test]
    fn providers_and_call_sites_share_no_cache_line() {
        static SITE: CallSite = CallSite::new("reg-lines", "m");
        let p = provider("reg-lines").0;
        for (addr, size) in [
            (
                p as *const ProviderInner as usize,
                size_of::<ProviderInner>(),
            ),
            (&SITE as *const CallSite as usize, size_of::<CallSite>()),
        ] {
            assert_eq!((addr % 128, size % 128), (0, 0));
        }
    }

    /// What a plain call reads of its provider (the `plain` flag, the breaker's state word and
    /// failure count, the budget's balance and refill mark: the hot path's table in `call`)
    /// lies on three 64-byte lines. With `drain`'s `Drain` inline (40 bytes), rustc's
    /// reordering put the budget's two words on lines 6 and 7 and the flag on 13: four lines
    /// read by every call where there had been three.
    #[test]
    fn a_plain_call_reads_three_lines_of_its_provider() {
        use std::mem::offset_of;
        let (breaker, budget) = (
            offset_of!(ProviderInner, breaker),
            offset_of!(ProviderInner, budget),
        );
        let mut lines: Vec<usize> = [offset_of!(ProviderInner, plain)]
            .into_iter()
            .chain(crate::breaker::HOT_FIELDS.map(|o| breaker + o))
            .chain(crate::budget::HOT_FIELDS.map(|o| budget + o))
            .map(|o| o / 64)
            .collect();
        lines.sort_unstable();
        lines.dedup();
        // At most: fewer is better still.
        assert!(lines.len() <= 3, "lines {lines:?}");
    }

    #[test]
    fn bad_code_settings_are_refused_by_configure() {
        let err = configure("reg-t5", Settings::new().half_open_max_calls(0)).unwrap_err();
        assert_eq!(
            err.problems()[0].variable,
            "configure(\"reg-t5\"): Settings::half_open_max_calls"
        );
        assert!(configure("reg-t5", Settings::new().half_open_max_calls(2)).is_ok());
        // Set up now: a change names the setting, the value refused and the one kept, and a
        // bad value given with it is still reported (the change used to hide it).
        let err = configure(
            "reg-t5",
            Settings::new().half_open_max_calls(3).failure_threshold(0),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("configure(\"reg-t5\"): Settings::failure_threshold=0: expected")
                && text.contains(
                    "provider `reg-t5`: Settings::half_open_max_calls \
                     (RESILIENCE_REG_T5_CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS)=3: expected 2, \
                     the value it was set up with"
                ),
            "{text}"
        );
        assert_eq!(provider("reg-t5").config().half_open_max_calls, 2);
    }

    /// As `init()` did before it kept them, `configure()` dropped
    /// sound code settings over one bad variable, a global one included: a service that
    /// logged the error and went on (`provider(name)`, or the `#[resilient]` method's first
    /// call) ran on the built-in defaults, its own retry and breaker settings gone.
    #[test]
    fn configure_keeps_sound_code_settings_when_only_the_environment_is_wrong() {
        let env = |k: &str| (k == "RETRY_JITTER").then(|| "sometimes".to_owned());
        let settings = Settings::new()
            .max_attempts(7)
            .breaker_timeout(Duration::from_secs(2));
        let err = configure_with("reg-cfg-env", settings, &env).unwrap_err();
        assert!(
            err.problems().iter().all(|p| p.variable == "RETRY_JITTER"),
            "only the environment's problem: {err}"
        );
        assert!(
            !registry().providers.contains_key("reg-cfg-env"),
            "made at its first use, as without configure()"
        );
        let (c, _) = registry().resolve("reg-cfg-env", &|_| None);
        assert_eq!(
            (c.max_attempts, c.breaker_timeout),
            (7, Duration::from_secs(2)),
            "the code settings, sound on their own, were dropped"
        );
        // Settings with a problem of their own are still not kept, nor added to earlier ones.
        let err = configure_with(
            "reg-cfg-env",
            Settings::new().max_attempts(9).failure_threshold(0),
            &env,
        )
        .unwrap_err();
        assert!(
            err.problems()
                .iter()
                .any(|p| p.variable == "Settings::failure_threshold"),
            "{err}"
        );
        let (c, _) = registry().resolve("reg-cfg-env", &|_| None);
        assert_eq!(c.max_attempts, 7);
        // Nor those that would change a provider already made.
        let made = configure_with("reg-cfg-env", Settings::new(), &|_| None).unwrap();
        assert_eq!(made.config().max_attempts, 7);
        let err = configure_with("reg-cfg-env", Settings::new().max_attempts(4), &env).unwrap_err();
        assert!(
            err.to_string().contains("the value it was set up with"),
            "{err}"
        );
        let (c, _) = registry().resolve("reg-cfg-env", &|_| None);
        assert_eq!(c.max_attempts, 7);
    }

    /// As `configure()`'s below, for `init()`: "When every problem is a
    /// variable's …, `init()` still installs the code settings" (README). A code setting's
    /// own problem that a variable overrides was not returned, yet kept them all out.
    #[test]
    fn init_names_the_code_problem_that_keeps_its_settings_out() {
        let pairs = [
            ("RETRY_JITTER", "sometimes"),
            (
                "RESILIENCE_REG_INIT_MASKED_CIRCUIT_BREAKER_FAILURE_THRESHOLD",
                "5",
            ),
        ];
        let builder = Builder::new().provider(
            "reg-init-masked",
            Settings::new().max_attempts(7).failure_threshold(0),
        );
        let err = init_builder_with_env(builder, &pairs, false).unwrap_err();
        let (c, _) = registry().resolve("reg-init-masked", &|_| None);
        assert_eq!(c.max_attempts, 3, "not installed: a problem of their own");
        assert!(
            err.problems()
                .iter()
                .any(|p| p.variable.contains("Settings::failure_threshold")),
            "every problem returned is the environment's, yet nothing was installed: {err}"
        );
    }

    /// The same with no other problem: the variable that overrides the bad value is a sound
    /// one, and the environment has nothing else wrong. `init()` returned `Ok` and installed
    /// the settings, their bad value with them (helper-235): the code's own problem hid
    /// behind the variable, and was named only beside another problem.
    #[test]
    fn init_refuses_a_bad_code_value_that_a_sound_variable_overrides() {
        let pairs = [("RESILIENCE_REG_INIT_HIDDEN_RETRY_MAX_ATTEMPTS", "4")];
        let builder = Builder::new().provider(
            "reg-init-hidden",
            Settings::new().max_attempts(0).failure_threshold(9),
        );
        let err = init_builder_with_env(builder, &pairs, false)
            .expect_err("a bad value in code is an error, whatever overrides it");
        let problems = err.problems();
        assert_eq!(problems.len(), 1, "{err}");
        assert!(
            problems[0].variable.contains("Settings::max_attempts") && problems[0].value == "0",
            "{err}"
        );
        let (c, _) = registry().resolve("reg-init-hidden", &|_| None);
        assert_eq!(c.failure_threshold, 5, "not installed: {c:?}");
    }

    /// `configure()`'s side of the same: `Ok` with the variable's value, the bad setting kept.
    #[test]
    fn configure_refuses_a_bad_code_value_that_a_sound_variable_overrides() {
        let env =
            |k: &str| (k == "RESILIENCE_REG_CFG_HIDDEN_RETRY_MAX_ATTEMPTS").then(|| "4".to_owned());
        let settings = Settings::new().max_attempts(0).failure_threshold(9);
        let err = configure_with("reg-cfg-hidden", settings, &env)
            .expect_err("a bad value in code is an error, whatever overrides it");
        assert_eq!(err.problems().len(), 1, "{err}");
        assert!(
            err.to_string().contains("Settings::max_attempts=0"),
            "{err}"
        );
        assert!(!registry().providers.contains_key("reg-cfg-hidden"));
        let (c, _) = registry().resolve("reg-cfg-hidden", &|_| None);
        assert_eq!(c.failure_threshold, 5, "not kept: {c:?}");
    }

    /// "Keeps them when every problem it returns is the environment's"
    /// (README, "Fixed once made"). A code setting with a problem of its own that a
    /// provider's variable overrides (`failure_threshold(0)` under
    /// `RESILIENCE_<P>_CIRCUIT_BREAKER_FAILURE_THRESHOLD=5`) was not among the problems
    /// returned, yet kept the settings out: every problem named was the environment's, and
    /// nothing was kept. The settings' own problem is returned with them.
    #[test]
    fn configure_names_the_code_problem_that_keeps_its_settings_out() {
        let env = |k: &str| match k {
            "RETRY_JITTER" => Some("sometimes".to_owned()),
            "RESILIENCE_REG_CFG_MASKED_CIRCUIT_BREAKER_FAILURE_THRESHOLD" => Some("5".to_owned()),
            _ => None,
        };
        let settings = Settings::new().max_attempts(7).failure_threshold(0);
        let err = configure_with("reg-cfg-masked", settings, &env).unwrap_err();
        let (c, _) = registry().resolve("reg-cfg-masked", &|_| None);
        let kept = c.max_attempts == 7;
        let all_env = err
            .problems()
            .iter()
            .all(|p| !p.variable.contains("Settings::"));
        assert!(
            kept || !all_env,
            "every problem returned is the environment's, yet nothing was kept: {err}"
        );
        assert!(!kept, "settings with a problem of their own are not kept");
    }

    #[test]
    fn a_refused_duration_change_names_its_unit() {
        configure("reg-t6", Settings::new().base_delay(Duration::from_secs(1))).unwrap();
        let err = configure("reg-t6", Settings::new().base_delay(Duration::ZERO)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("=0: expected 1 (seconds), the value it was set up with"),
            "{text}"
        );
    }

    /// Each name is made a provider of its own (`configure`).
    fn accepted(names: &[&str]) {
        for name in names {
            let made = configure_with(name, Settings::new(), &|_: &str| None);
            assert!(made.is_ok(), "{name:?} was refused: {:?}", made.err());
        }
    }

    /// Each name is refused for a character that shows nothing.
    fn refused_as_invisible(names: &[&str]) {
        for name in names {
            let err = configure_with(name, Settings::new(), &|_: &str| None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("invisible"), "{name:?}: {err}");
        }
    }

    /// A joiner between two letters of a script that joins or stacks them (Persian's
    /// zero-width non-joiner in a plural, Sinhala's zero-width joiner in `ශ්‍රී`, an emoji
    /// sequence) is part of how the word is written, and a variation selector after an emoji is
    /// part of how it shows: names with them are accepted. The same characters where they show
    /// nothing (between ASCII letters, at either end, a selector after an ASCII letter) are
    /// refused, as are the other characters that never show (a tag character, the combining
    /// grapheme joiner, a Hangul filler).
    #[test]
    fn a_joiner_is_refused_only_where_it_shows_nothing() {
        accepted(&[
            "reg-inv-fa-کتاب\u{200c}ها",
            "reg-inv-lk-ශ්\u{200d}රී",
            "reg-inv-dev-🧑\u{200d}💻",
            "reg-inv-cloud-☁\u{fe0f}",
        ]);
        // A zero-width space, a byte-order mark or a word joiner, pasted along with a name,
        // would make `RESILIENCE_KIMI__…` a breaker of its own that looks like `kimi`.
        refused_as_invisible(&[
            "reg-inv-kimi\u{200b}",
            "\u{feff}reg-inv-glm",
            "reg-inv\u{2060}-glm",
            "reg-inv-ki\u{200d}mi",
            "reg-inv-kimi\u{200c}",
            "\u{200d}ශ්රී-reg-inv",
            "reg-inv-fa-کتاب\u{200c}",
            "reg-inv-glm\u{fe0f}",
            "reg-inv-glm\u{34f}",
            "reg-inv-glm\u{e0041}",
            "reg-inv-glm\u{3164}",
        ]);
    }

    /// A flag written with tag characters (Scotland's: the black flag, `gbsct` in tags and the
    /// cancel tag) shows as one flag, as an emoji sequence: accepted, as it was before tags
    /// were refused. A tag anywhere else shows nothing and is still refused.
    #[test]
    fn a_flag_s_tag_sequence_is_part_of_the_name() {
        let name = "reg-inv-flag-\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}";
        accepted(&[name]);
        refused_as_invisible(&[
            "reg-inv-tag-glm\u{E0067}\u{E007F}",
            "reg-inv-tag-\u{1F3F4}\u{E0067}\u{E0062}",
            "reg-inv-tag-\u{1F3F4}\u{E007F}",
            "reg-inv-tag-\u{E0067}\u{E007F}",
            "reg-inv-tag-\u{1F3F4}\u{E0067}\u{E007F}\u{E007F}",
        ]);
    }

    /// A selector changes the character before it; a second one after it changes nothing
    /// and shows nothing: `☁\u{fe0f}\u{fe0f}` looks like `☁\u{fe0f}` but is a breaker of its own.
    #[test]
    fn a_selector_after_a_selector_is_refused() {
        refused_as_invisible(&[
            "reg-inv-sel-\u{2601}\u{FE0F}\u{FE0F}",
            "reg-inv-sel-\u{845B}\u{E0100}\u{E0101}",
            "reg-inv-sel-\u{2601}\u{FE0F}\u{34F}",
        ]);
    }

    /// A joiner between two letters of a script that never joins nor stacks them (Chinese,
    /// Cyrillic, Greek, accented Latin) shows nothing: `月之\u{200d}暗面` looks like `月之暗面`
    /// but reads other variables. Refused, as between two ASCII letters.
    #[test]
    fn a_joiner_between_letters_that_never_join_is_refused() {
        refused_as_invisible(&[
            "reg-inv-zh-\u{6708}\u{4E4B}\u{200D}\u{6697}\u{9762}",
            "reg-inv-ru-\u{44F}\u{43D}\u{200C}\u{434}\u{435}\u{43A}\u{441}",
            "reg-inv-el-\u{3B1}\u{200D}\u{3B2}",
            "reg-inv-fr-caf\u{E9}\u{200C}\u{E9}",
            "reg-inv-ko-\u{D0A4}\u{200D}\u{BBF8}",
            "reg-inv-ja-\u{30AD}\u{200C}\u{30DF}",
        ]);
        // Where it is part of the word, still accepted: Devanagari's half form (क्‍ष), an
        // Arabic-script word, an emoji sequence with a selector before its joiner (🏳️‍🌈).
        accepted(&[
            "reg-inv-hi-\u{915}\u{94D}\u{200D}\u{937}",
            "reg-inv-ar-\u{644}\u{200D}\u{627}",
            "reg-inv-rainbow-\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}",
        ]);
    }
}
