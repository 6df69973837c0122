//! Metrics (through the `metrics` facade) and the `[CIRCUIT]` log lines.
//!
//! The runtime never installs a recorder by itself: the application does, with
//! `serve()` (Prometheus, feature `telemetry`) or with any `metrics`
//! exporter followed by [`use_installed_recorder`]. Until then, a call pays one relaxed load
//! for all of telemetry: no clock read, no label building.
//!
//! Why the explicit switch? The `metrics` facade drops everything recorded before a recorder
//! exists, and its handles cannot tell whether one does. Handles are resolved once per call
//! site (at the switch for a `#[resilient]` site, which registers itself at program load so
//! that its counters exist at 0 before its first call, as a site `call_site` makes has them
//! from the switch or its making; at its first call after the switch for a `CallSite` of the
//! user's own) and reused, so the per-call cost with a recorder
//! is a few counter increments and two histogram records (the call's duration, and each
//! attempt's), never a label lookup. Under the recorder `serve()` installs, those land in
//! plain atomics of ours (`store`), not in the exporter's queues, and a call that succeeds at
//! its first attempt, whose span is its attempt's, makes one record that the store shows in
//! both histograms (`SiteMetrics::first_attempt_succeeded`).

use std::sync::atomic::{AtomicBool, Ordering};

use metrics::{Counter, Histogram, counter, gauge, histogram};

use crate::breaker::CircuitState;

/// Logical calls, by `provider`, `method`, `outcome` (`success`/`failure`/`rejected`).
pub const CALLS_TOTAL: &str = "resilience_calls_total";
/// Attempts that ended, by `provider`, `method`, `result` (an error the body returns before
/// sending anything counts too: the runtime cannot tell it apart).
pub const ATTEMPTS_TOTAL: &str = "resilience_attempts_total";
/// Retries made: attempts after the first (a retry refused after its backoff is not one), by
/// `provider`, `method`.
pub const RETRIES_TOTAL: &str = "resilience_retries_total";
/// Calls that ended with no outcome: cancelled by their caller (the future dropped) or ended
/// by a panic (in the operation, or in the method's own code the call runs: its `Classify`,
/// `From<ResilienceError>`, an argument's `Clone`), by `provider`, `method`. Not in
/// `resilience_calls_total`, whose outcomes are the call's result.
pub const CALLS_ABANDONED_TOTAL: &str = "resilience_calls_abandoned_total";
/// Retries refused because the budget was spent, by `provider`.
pub const RETRY_BUDGET_EXHAUSTED_TOTAL: &str = "resilience_retry_budget_exhausted_total";
/// Logical call duration in seconds, backoff sleeps included, by `provider`, `method`, `outcome`.
pub const CALL_DURATION_SECONDS: &str = "resilience_call_duration_seconds";
/// Duration of each attempt in seconds, from its start to its end (the backoff before it is
/// not in it), by `provider`, `method`, `result` (`success`/`error`/`timeout`: the error
/// classes, which `resilience_attempts_total` counts apart, share one series). An attempt
/// cut off by its caller or by a panic is not recorded, as it is not counted.
pub const ATTEMPT_DURATION_SECONDS: &str = "resilience_attempt_duration_seconds";
/// 1 for the provider's current breaker state, 0 for the others, by `provider`, `state`.
pub const CIRCUIT_STATE: &str = "resilience_circuit_state";
/// Breaker state changes, by `provider`, `from`, `to`.
pub const CIRCUIT_TRANSITIONS_TOTAL: &str = "resilience_circuit_transitions_total";

static RECORDING: AtomicBool = AtomicBool::new(false);

/// Tells the runtime that a `metrics` recorder is installed, so it starts recording. Call it
/// right after installing your own exporter; `serve()` (feature `telemetry`) calls it for
/// you. It also publishes every known provider's breaker state, and makes the counters of every
/// `#[resilient]` method in the program, and of every site `call_site` made, at 0, called or
/// not, with their providers' automatic breaker transitions.
///
/// ```
/// // With any `metrics` exporter:
/// // metrics::set_global_recorder(my_recorder)?;
/// resilience::telemetry::use_installed_recorder();
/// ```
pub fn use_installed_recorder() {
    describe();
    // Calibrates the TSC clock for call durations now, not during the first call.
    crate::tsc::calibrated();
    RECORDING.store(true, Ordering::Release);
    crate::registry::recording_started();
    for p in crate::registry::providers() {
        p.0.breaker.publish_known();
    }
    // Before its first call: an `increase()` over a window that holds a restart then counts
    // that call, which a series born at 1 would hide. The sites made at run time
    // (`call_site`) too: one made after this makes its own (`site_made`).
    for site in crate::CallSite::registered().chain(crate::registry::run_time_sites()) {
        site_at_0(site);
    }
}

/// A call site made at run time (`call_site`), after its map's lock is let go: its series at
/// 0 if the recorder is on, as the switch makes those of the sites made before it. (A site
/// made while the switch runs is made at 0 by one of the two, or both, which is the same.)
pub(crate) fn site_made(site: &crate::CallSite) {
    if synced() {
        site_at_0(site);
    }
}

/// A site's counters, and its provider's automatic transitions, at 0, made by name: its
/// provider may not be made yet (its configuration may not be given), and is not made here.
/// The transitions too, as a provider made by a call that fails at once would have its
/// first opening counted before any scrape saw the series at 0: a gateway restarted into an
/// outage would show no opening to `increase()`. (The state gauge waits for the provider:
/// its state depends on its configuration.)
fn site_at_0(site: &crate::CallSite) {
    let provider = site.provider_name();
    let _ = Counters::new(provider, site.method());
    transitions_at_0(provider);
}

/// Whether metrics are being recorded. One relaxed load: this is on every call. Code that
/// then reaches the recorder for the first time (a site's handles) calls [`synced`] first.
#[inline]
pub(crate) fn recording() -> bool {
    RECORDING.load(Ordering::Relaxed)
}

/// [`recording`] with acquire ordering, for the cold paths that go on to ask the `metrics`
/// crate for handles: a relaxed `true` does not order this thread after the installer's
/// `set_global_recorder`, so on a weakly ordered CPU (ARM) the handles could come from the
/// no-op recorder the facade gives before one is installed, and a site caches its handles
/// for good.
#[inline]
fn synced() -> bool {
    RECORDING.load(Ordering::Acquire)
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    for name in [
        CALLS_TOTAL,
        ATTEMPTS_TOTAL,
        RETRIES_TOTAL,
        CALLS_ABANDONED_TOTAL,
        RETRY_BUDGET_EXHAUSTED_TOTAL,
        CIRCUIT_TRANSITIONS_TOTAL,
    ] {
        describe_counter!(name, help(name));
    }
    for name in [CALL_DURATION_SECONDS, ATTEMPT_DURATION_SECONDS] {
        describe_histogram!(name, Unit::Seconds, help(name));
    }
    describe_gauge!(CIRCUIT_STATE, help(CIRCUIT_STATE));
}

/// The HELP text of each of our metrics.
pub(crate) fn help(name: &str) -> &'static str {
    match name {
        CALLS_TOTAL => {
            "Logical calls through the resilience runtime (retries included in one call), by outcome."
        }
        ATTEMPTS_TOTAL => {
            "Attempts that ended, by result class (an error the body returns before sending anything counts too)."
        }
        RETRIES_TOTAL => "Retries made (attempts after the first) through the resilience runtime.",
        CALLS_ABANDONED_TOTAL => {
            "Calls that ended with no outcome: cancelled by their caller, or ended by a panic."
        }
        RETRY_BUDGET_EXHAUSTED_TOTAL => {
            "Retries refused because the provider's retry budget was spent."
        }
        CALL_DURATION_SECONDS => "Logical call duration, backoff sleeps included.",
        ATTEMPT_DURATION_SECONDS => {
            "Duration of each attempt, backoff sleeps not included, by result (error: transient, throttled or permanent)."
        }
        CIRCUIT_STATE => "1 for the provider's current circuit breaker state, 0 for the others.",
        CIRCUIT_TRANSITIONS_TOTAL => "Circuit breaker state changes.",
        _ => "",
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum CallOutcome {
    Success = 0,
    Failure = 1,
    Rejected = 2,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum AttemptResult {
    Success = 0,
    Transient = 1,
    Throttled = 2,
    Permanent = 3,
    Timeout = 4,
}

impl AttemptResult {
    /// Its `result` label, and the log lines' `result` field.
    pub(crate) fn as_str(self) -> &'static str {
        RESULTS[self as usize]
    }
}

const OUTCOMES: [&str; 3] = ["success", "failure", "rejected"];
const RESULTS: [&str; 5] = ["success", "transient", "throttled", "permanent", "timeout"];
/// The `result` label of `resilience_attempt_duration_seconds`: the error classes share one
/// series. Each is a histogram of 20 lines a method, where a counter is one: the classes'
/// latencies say little apart (a 429 and a 400 are both quick refusals), and their counts are
/// in `resilience_attempts_total`. A timeout stays apart, as its duration is the limit's.
const DURATION_RESULTS: [&str; 3] = ["success", "error", "timeout"];

impl AttemptResult {
    /// Its series in [`DURATION_RESULTS`].
    fn duration_index(self) -> usize {
        match self {
            AttemptResult::Success => 0,
            AttemptResult::Transient | AttemptResult::Throttled | AttemptResult::Permanent => 1,
            AttemptResult::Timeout => 2,
        }
    }
}

/// A method's counters: those an `increase()` reads (ten series: calls by outcome, attempts
/// by result, retries, abandoned calls). The switch makes them for every `#[resilient]` site
/// before its first call, and keeps no handles: the first call makes the same keys again and
/// gets the same series. Not the duration histograms, 20 lines each, which come with the
/// first call: a library with a hundred annotated endpoints, of which a service calls three,
/// adds counters, not thousands of histogram lines.
struct Counters {
    calls: [Counter; 3],
    attempts: [Counter; 5],
    retries: Counter,
    abandoned: Counter,
}

impl Counters {
    pub(crate) fn new(provider: &'static str, method: &'static str) -> Self {
        // Shown at 0 with the site's series, so that an alert on its rate has a series
        // before the first exhaustion.
        let _ = counter!(RETRY_BUDGET_EXHAUSTED_TOTAL, "provider" => provider);
        Counters {
            calls: OUTCOMES.map(|o| counter!(CALLS_TOTAL, "provider" => provider, "method" => method, "outcome" => o)),
            attempts: RESULTS.map(|r| counter!(ATTEMPTS_TOTAL, "provider" => provider, "method" => method, "result" => r)),
            retries: counter!(RETRIES_TOTAL, "provider" => provider, "method" => method),
            abandoned: counter!(CALLS_ABANDONED_TOTAL, "provider" => provider, "method" => method),
        }
    }
}

/// Nanoseconds as the seconds a duration metric takes. A division, not a multiplication by
/// `1e-9` (which is not exact): correctly rounded, so that a sample on a bucket's bound (30 s:
/// `30e9 * 1e-9` is 30.000000000000004) lands in that bound's bucket, as it does in the
/// store's nanosecond buckets (`store::BUCKET_NANOS`; helper-226's review).
#[inline]
pub(crate) fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// One call site's metric handles, resolved once.
pub(crate) struct SiteMetrics {
    counters: Counters,
    duration: [Histogram; 3],
    attempt_duration: [Histogram; 3],
    /// Under the recorder `serve()` installs, the one histogram of the method's
    /// first-attempt successes (every one, not only those `Call::clean` ends: a half-open
    /// probe's too), which the store renders into both its `duration` and
    /// `attempt_duration` success series (`store::first_successes`); `None` under any other
    /// recorder, which gets both records.
    first_successes: Option<FirstSuccesses>,
}

#[cfg(feature = "telemetry")]
use store::FirstSuccesses;

/// Without the `telemetry` feature there is no store of ours, and so never a shared cell.
#[cfg(not(feature = "telemetry"))]
enum FirstSuccesses {}

#[cfg(not(feature = "telemetry"))]
impl FirstSuccesses {
    fn record(&self, _: u64) {
        match *self {}
    }
}

impl SiteMetrics {
    pub(crate) fn new(provider: &'static str, method: &'static str) -> Self {
        // Built after a relaxed `recording()` read `true`: see `synced`.
        std::sync::atomic::fence(Ordering::Acquire);
        #[cfg(feature = "telemetry")]
        let before = store::handed_out();
        let duration = OUTCOMES.map(|o| histogram!(CALL_DURATION_SECONDS, "provider" => provider, "method" => method, "outcome" => o));
        let attempt_duration = DURATION_RESULTS.map(|r| histogram!(ATTEMPT_DURATION_SECONDS, "provider" => provider, "method" => method, "result" => r));
        // Shared only when our store gave this site every one of its histograms just now (on
        // this thread): not when the application installed its own recorder, nor within a
        // `metrics::with_local_recorder` of its own, whose series must get every sample.
        #[cfg(feature = "telemetry")]
        let first_successes = if store::handed_out().wrapping_sub(before)
            == (OUTCOMES.len() + DURATION_RESULTS.len()) as u64
        {
            let key = |name, (k, v)| {
                let labels = [("provider", provider), ("method", method), (k, v)];
                metrics::Key::from_parts(
                    name,
                    labels.map(|(k, v)| metrics::Label::new(k, v)).to_vec(),
                )
            };
            store::first_successes(
                &key(
                    CALL_DURATION_SECONDS,
                    ("outcome", OUTCOMES[CallOutcome::Success as usize]),
                ),
                &key(
                    ATTEMPT_DURATION_SECONDS,
                    (
                        "result",
                        DURATION_RESULTS[AttemptResult::Success.duration_index()],
                    ),
                ),
            )
        } else {
            None
        };
        #[cfg(not(feature = "telemetry"))]
        let first_successes = None;
        SiteMetrics {
            counters: Counters::new(provider, method),
            duration,
            attempt_duration,
            first_successes,
        }
    }

    /// An attempt that ended with `r` after `seconds`.
    pub(crate) fn attempt(&self, r: AttemptResult, seconds: f64) {
        self.counters.attempts[r as usize].increment(1);
        // A sample of its own, not derived from the call's: a retried call's duration holds
        // its backoff and every attempt. Under `serve()`'s recorder, one more relaxed
        // `fetch_add` (the bucket) and compare-exchange (the sum) per attempt, atomic so
        // that concurrent attempts lose no sample (see `store::Buckets::record`). A
        // first-attempt success does not come here (`first_attempt_succeeded`).
        self.attempt_duration[r.duration_index()].record(seconds);
    }

    /// A call that succeeded at its first attempt, after `nanos` nanoseconds: its attempt and
    /// its outcome, whose spans are one (the same two TSC readings). Under the recorder
    /// `serve()` installs, one sample into the cell the store renders into both histograms,
    /// and whose count it adds into both counters' `success` series as well: the sample is
    /// the count, so the two counters' own `fetch_add`s (and their two calls through the
    /// facade's handles) are not made, where they took about a third of the call's recording
    /// on a host with slow atomics (run AZ). The sample goes into the calling thread's shard
    /// of the cell, which no other thread writes, in whole nanoseconds: a load and a store of
    /// its bucket and of its sum, so that concurrent calls lose none without an atomic
    /// read-modify-write, and no float arithmetic (`store::Sharded`). Under another recorder,
    /// two counts and two records in seconds, which that recorder's series need. One
    /// predictable branch between them: a site keeps the same recorder for good.
    #[inline]
    pub(crate) fn first_attempt_succeeded(&self, nanos: u64) {
        match &self.first_successes {
            Some(both) => both.record(nanos),
            None => {
                let seconds = seconds(nanos);
                self.counters.attempts[AttemptResult::Success as usize].increment(1);
                self.counters.calls[CallOutcome::Success as usize].increment(1);
                self.attempt_duration[AttemptResult::Success.duration_index()].record(seconds);
                self.duration[CallOutcome::Success as usize].record(seconds);
            }
        }
    }

    pub(crate) fn retry(&self) {
        self.counters.retries.increment(1);
    }

    pub(crate) fn abandoned(&self) {
        self.counters.abandoned.increment(1);
    }

    pub(crate) fn call(&self, o: CallOutcome, seconds: f64) {
        self.counters.calls[o as usize].increment(1);
        self.duration[o as usize].record(seconds);
    }
}

pub(crate) fn budget_exhausted(provider: &'static str) {
    if synced() {
        counter!(RETRY_BUDGET_EXHAUSTED_TOTAL, "provider" => provider).increment(1);
    }
}

/// `d` in whole milliseconds, for a log line's `…_ms` field (saturating: a `u128` cut to a
/// `u64` would wrap).
pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The state changes a breaker makes by itself; the others are an operator's (`force_open`,
/// `reset`, switching the breaker off).
const AUTOMATIC: [(CircuitState, CircuitState); 4] = [
    (CircuitState::Closed, CircuitState::Open),
    (CircuitState::Open, CircuitState::HalfOpen),
    (CircuitState::HalfOpen, CircuitState::Closed),
    (CircuitState::HalfOpen, CircuitState::Open),
];

/// A provider is made, or the recorder switched on with the provider already there: its state
/// gauge, and its automatic transitions at 0, so that `rate()` and `increase()` (an alert on
/// openings) see the first opening after a restart, which a series born at 1 would hide.
pub(crate) fn provider_known(provider: &'static str, state: CircuitState) {
    if synced() {
        transitions_at_0(provider);
        publish_state(provider, state);
    }
}

/// The provider's automatic transitions, made at 0 (made again, they are the same series).
fn transitions_at_0(provider: &'static str) {
    for (from, to) in AUTOMATIC {
        let _ = counter!(CIRCUIT_TRANSITIONS_TOTAL, "provider" => provider, "from" => from.as_str(), "to" => to.as_str());
    }
}

/// Sets the one-hot state gauge, for a recorder of the application's own: ours renders the
/// family from each breaker's state as it renders (`store::render_states`), one read a
/// provider, so a scrape never sees a change halfway. Here the five series are set one by
/// one, the new state first, then the others to 0: such a recorder's scrape may see the old
/// and the new state at 1 for a moment, never no state at all.
pub(crate) fn publish_state(provider: &'static str, state: CircuitState) {
    if synced() {
        gauge!(CIRCUIT_STATE, "provider" => provider, "state" => state.as_str()).set(1.0);
        for &s in CircuitState::ALL.iter().filter(|&&s| s != state) {
            gauge!(CIRCUIT_STATE, "provider" => provider, "state" => s.as_str()).set(0.0);
        }
    }
}

/// A breaker changed state: its metrics. Called with the breaker's transitions lock held, so
/// that the state gauge ends on the last state, whatever the threads' order.
pub(crate) fn transition_counted(provider: &'static str, from: CircuitState, to: CircuitState) {
    if synced() {
        counter!(CIRCUIT_TRANSITIONS_TOTAL, "provider" => provider, "from" => from.as_str(), "to" => to.as_str())
            .increment(1);
        publish_state(provider, to);
    }
}

/// A breaker changed state: the `[CIRCUIT]` log line. Called with no lock held: a log layer
/// may call the same provider (a log shipper with a resilient client).
/// An opening says how long the breaker stays open before it lets a probe through
/// (`open_for_ms`), so that an operator reading it knows when to look again. Every line has
/// the breaker's `generation` after the move: two moves a few microseconds apart on two
/// threads may log out of order (see `breaker::Held`), and it orders them.
pub(crate) fn transition_logged(
    provider: &'static str,
    from: CircuitState,
    to: CircuitState,
    failures: u32,
    generation: u64,
    timeout: std::time::Duration,
) {
    let (f, t) = (from.as_str(), to.as_str());
    match to {
        CircuitState::Open => tracing::warn!(
            target: "resilience", provider, from = f, to = t, failures, open_for_ms = millis(timeout), generation,
            "[CIRCUIT] State transition: {f} → {t} for {}", provider.escape_debug()
        ),
        CircuitState::ForcedOpen => tracing::warn!(
            target: "resilience", provider, from = f, to = t, failures, generation,
            "[CIRCUIT] State transition: {f} → {t} for {}", provider.escape_debug()
        ),
        _ => tracing::info!(
            target: "resilience", provider, from = f, to = t, generation,
            "[CIRCUIT] State transition: {f} → {t} for {}", provider.escape_debug()
        ),
    }
}

#[cfg(feature = "telemetry")]
mod exporter;
#[cfg(feature = "telemetry")]
mod store;
#[cfg(feature = "telemetry")]
pub use exporter::{
    DEFAULT_ADDR, Health, MetricsHandle, MetricsServer, TelemetryError, health, install_recorder,
    serve, serve_from_env,
};
#[cfg(feature = "telemetry")]
pub use store::DURATION_BUCKETS;
