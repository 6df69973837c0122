//! Our own storage for the per-call metric families, behind the `metrics` facade.
//!
//! [`install_recorder`](super::install_recorder) installs [`Recorder`]: the Prometheus
//! exporter's recorder, except that the families a call updates (calls, attempts, retries and
//! the call and attempt duration histograms) are kept here, in plain atomics, and rendered after the exporter's
//! text. Everything else (the breaker gauges and transitions, the budget counter, the
//! application's own metrics) goes to the exporter unchanged.
//!
//! Why: the exporter reads a clock for every histogram sample and pushes it onto an
//! epoch-pinned queue, and bumps a generation count beside every counter (for idle timeouts,
//! which we do not use). Those three updates alone cost a successful call about 28 times a bare
//! call. Here a counter is one relaxed `fetch_add` and a sample is one `fetch_add` on its bucket
//! and one compare-exchange on the sum, and a first-attempt success's sample (every call's, as
//! a rule) a load and a store of each in a shard of its thread's ([`Sharded`]): the same
//! exposition for a fraction of the cost (but the last digits of a `_sum` that such samples
//! are in: summed in whole nanoseconds and rounded once, where the exporter rounds at every
//! sample).
//!
//! The values still go through the facade's handles (`metrics::Counter`, `metrics::Histogram`),
//! resolved once per call site as before; only the recorder behind them changed. One
//! exception: a call that succeeds at its first attempt has one duration, its attempt's span
//! being its own, and records it once, straight into a cell of its method's
//! ([`first_successes`]) that [`Store::render`] adds into both its call's `success` series and
//! its attempt's (the same buckets, so bucket by bucket, `_sum` and `_count` too), and whose
//! count it adds into both counters' `success` series (`resilience_calls_total` and
//! `resilience_attempts_total`), which such a call does not increment. A call site
//! gets that cell only when this store gave it its handles. An application that installs its
//! own recorder and calls [`use_installed_recorder`](super::use_installed_recorder) gets every
//! family in that recorder, both histograms recorded for every call.

use std::borrow::Cow;
use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Label, Metadata, SharedString, Unit,
};
use metrics_exporter_prometheus::PrometheusRecorder;
use metrics_exporter_prometheus::formatting::{sanitize_label_key, sanitize_metric_name};

use super::{
    ATTEMPT_DURATION_SECONDS, ATTEMPTS_TOTAL, CALL_DURATION_SECONDS, CALLS_TOTAL, CIRCUIT_STATE,
    RETRIES_TOTAL,
};

/// The families kept here, with their type, in the order they are rendered.
const OWN: [(&str, &str); 5] = [
    (CALLS_TOTAL, COUNTER),
    (ATTEMPTS_TOTAL, COUNTER),
    (RETRIES_TOTAL, COUNTER),
    (CALL_DURATION_SECONDS, HISTOGRAM),
    (ATTEMPT_DURATION_SECONDS, HISTOGRAM),
];
const COUNTER: &str = "counter";
const HISTOGRAM: &str = "histogram";

/// The breaker state gauge: rendered from the providers' states (`render_states`), not
/// stored. Its five series a provider, set one by one through the facade, were read halfway
/// through a change: a scrape showed no state at 1, or two (1,517 of 3,000 scrapes of a
/// breaker flipped in a loop). A lock between the sets and the render starved the changes,
/// which wait on a caller's thread with the breaker's lock held, under overlapping renders.
const STATE: (&str, &str) = (CIRCUIT_STATE, "gauge");

/// Our family `name` belongs to, with its type: by the name the exporter would render, so
/// that `resilience-calls_total` (which it writes as `resilience_calls_total`) is ours too and
/// no family is written twice.
fn own(name: &str) -> Option<(&'static str, &'static str)> {
    let find = |name: &str| {
        OWN.iter()
            .chain([&STATE])
            .find(|(n, _)| *n == name)
            .copied()
    };
    // Registration only (once per call site): the allocation is off the call path.
    find(name).or_else(|| find(&sanitize_metric_name(name)))
}

/// A series' labels as the exporter keeps them: in the order first given, a repeated key
/// keeping its last value.
type Labels = Vec<(String, String)>;

/// One type's series, by family and by labels in key order (so that the same labels given in
/// another order are the same series, as `metrics::Key` compares them); each with its labels as
/// written and the cell that every handle to it shares.
type Series<T> = BTreeMap<SeriesKey, (Labels, Arc<T>)>;

/// Upper bounds of the buckets of the `resilience_call_duration_seconds` and
/// `resilience_attempt_duration_seconds` histograms under [`serve`](super::serve), in seconds:
/// from a fast loopback call to a call that waited out the longest default backoff. A sample
/// above the last counts in `+Inf`. With an exporter of your own, give it these for both (most
/// record a histogram as a summary unless told), so the dashboard's quantiles work:
///
/// ```
/// use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
///
/// let mut builder = PrometheusBuilder::new();
/// for name in [
///     "resilience_call_duration_seconds",
///     "resilience_attempt_duration_seconds",
/// ] {
///     builder = builder
///         .set_buckets_for_metric(
///             Matcher::Full(name.into()),
///             resilience::telemetry::DURATION_BUCKETS,
///         )
///         .unwrap();
/// }
/// # drop(builder);
/// ```
///
/// A slice, so that the buckets may change without changing the API's types.
pub const DURATION_BUCKETS: &[f64] = &BUCKETS;

// Up to ten minutes: an upload or an LLM call of minutes, or a call that waited out a
// provider's `Retry-After` of a minute twice (the default allows it), lands in a bucket of its
// own instead of `+Inf`, where the dashboard's quantiles flattened at 120 s.
const BUCKETS: [f64; 17] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0,
];

/// A fixed-bucket histogram's cells: per-bucket counts (not cumulative: one write per sample)
/// and the sum of the samples, in the unit `U` says ([`Buckets`], [`NanoBuckets`]).
struct Counts<U> {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum: AtomicU64,
    unit: std::marker::PhantomData<U>,
}

/// The sum is the `f64` bits of the samples' sum in seconds.
struct Seconds;
/// The sum is the samples' sum in nanoseconds.
struct Nanos;

impl<U> Default for Counts<U> {
    fn default() -> Self {
        Counts {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            // Zero in both units: 0.0's bits are 0.
            sum: AtomicU64::new(0),
            unit: std::marker::PhantomData,
        }
    }
}

impl<U> Counts<U> {
    fn load(&self, i: usize) -> u64 {
        self.counts[i].load(Ordering::Relaxed)
    }

    fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// A histogram series fed through the facade's handles, in seconds.
type Buckets = Counts<Seconds>;

impl Counts<Seconds> {
    /// Its sum.
    fn sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }

    /// The bucket `value` counts in.
    #[inline]
    fn bucket(value: f64) -> usize {
        // Most calls fall in the first buckets, so a forward scan ends in a compare or two.
        // A NaN compares false everywhere and lands in +Inf, as it would in Prometheus' client.
        DURATION_BUCKETS
            .iter()
            .position(|le| value <= *le)
            .unwrap_or(DURATION_BUCKETS.len())
    }
}

impl HistogramFn for Counts<Seconds> {
    fn record(&self, value: f64) {
        // Relaxed: a counter only needs its own increments not to be lost; a scrape that reads
        // a bucket before the sum it goes with is off by a sample for one scrape, as with the
        // exporter's own histograms.
        self.counts[Self::bucket(value)].fetch_add(1, Ordering::Relaxed);
        // A compare-exchange loop: there is no atomic float add. Uncontended it succeeds at once.
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }
}

/// [`BUCKETS`] in nanoseconds, for a first-attempt success's sample, which comes in
/// nanoseconds (see [`Sharded`]).
const BUCKET_NANOS: [u64; BUCKETS.len()] = [
    1_000_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
    120_000_000_000,
    300_000_000_000,
    600_000_000_000,
];

/// A method's first-attempt successes (see [`first_successes`]), in whole nanoseconds: a
/// [`NanoBuckets`] per thread index, which only the thread holding that index writes, so that
/// a sample is two loads and two stores and no atomic read-modify-write; a thread without an
/// index of its own (more threads than shards, or one whose thread-locals are gone) records
/// into `rest`, atomically. A render adds them all up.
///
/// Why not one [`Buckets`]: its two read-modify-writes took about 10 of a call's 45 ns under
/// the recorder on the host of runs AZ–BA (locked instructions on x86, about 5 ns each there,
/// where the bare call takes 2), and its float sum a conversion and a chain of float
/// operations more. Sharded by thread rather than by CPU: a thread may move between CPUs
/// between a load and its store, and two writers would lose counts.
pub(crate) struct Sharded {
    shards: Box<[Shard]>,
    rest: NanoBuckets,
    /// The total [`sum`](Self::sum) last read (modulo 2^64), and how many times it has
    /// wrapped past 2^64 ns: read and written by renders only, one at a time (under the
    /// store's locks).
    rendered: (AtomicU64, AtomicU64),
}

/// Fixed-bucket counts of samples in nanoseconds, and their sum in nanoseconds: exact, where a
/// float sum rounds every sample. The sum wraps at 2^64 ns (584 years of call time), which
/// the render counts past ([`Sharded::sum`]).
type NanoBuckets = Counts<Nanos>;

impl Counts<Nanos> {
    /// The bucket a sample of `nanos` counts in: integer compares, most calls ending at the
    /// first or second.
    #[inline]
    fn bucket(nanos: u64) -> usize {
        BUCKET_NANOS
            .iter()
            .position(|le| nanos <= *le)
            .unwrap_or(BUCKET_NANOS.len())
    }

    /// A sample, from a writer that is, for now, the only one (see [`Sharded`]): a load and a
    /// store for each of the two words. Atomics still, so that a render on another thread
    /// reads whole values.
    #[inline]
    fn record_alone(&self, nanos: u64) {
        let c = &self.counts[Self::bucket(nanos)];
        c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        let sum = self.sum.load(Ordering::Relaxed).wrapping_add(nanos);
        self.sum.store(sum, Ordering::Relaxed);
    }

    /// A sample, from any thread: two relaxed `fetch_add`s (relaxed: a count orders nothing
    /// else, as in [`Buckets`]).
    fn record_shared(&self, nanos: u64) {
        self.counts[Self::bucket(nanos)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// A thread's [`NanoBuckets`], on cache lines of its own: two threads writing neighbouring
/// shards would otherwise pass a line between their cores at every sample (128: what an
/// adjacent-line prefetcher fetches together).
#[derive(Default)]
#[repr(align(128))]
struct Shard(NanoBuckets);

impl Default for Sharded {
    fn default() -> Self {
        Sharded {
            shards: (0..shard_count()).map(|_| Shard::default()).collect(),
            rest: NanoBuckets::default(),
            rendered: (AtomicU64::new(0), AtomicU64::new(0)),
        }
    }
}

impl Sharded {
    /// One sample of `nanos`. The hot path of a call under the recorder: a read of this
    /// thread's index (a thread-local with no destructor, so no state check) and a bounds
    /// check, then two loads and two stores.
    #[inline]
    fn record(&self, nanos: u64) {
        let mut index = THREAD_SHARD.try_with(Cell::get).unwrap_or(NO_SHARD);
        if index == UNASSIGNED {
            index = take_shard();
        }
        match self.shards.get(index as usize) {
            Some(shard) => shard.0.record_alone(nanos),
            None => self.rest.record_shared(nanos),
        }
    }

    fn all(&self) -> impl Iterator<Item = &NanoBuckets> {
        self.shards.iter().map(|s| &s.0).chain([&self.rest])
    }

    fn bucket_count(&self, i: usize) -> u64 {
        self.all().map(|b| b.load(i)).sum()
    }

    /// The sum in seconds: rounded once, here. The cells' sums wrap at 2^64 ns, so their
    /// total is exact modulo 2^64; a total below the last render's has wrapped (less than
    /// 2^64 ns, 584 years of call time, pass between two renders), and counts on from there:
    /// `_sum` never goes down, where 1,000 concurrent ten-minute calls of one method reach
    /// 2^64 ns in 213 days (helper-226's review).
    fn sum(&self) -> f64 {
        let nanos = self.all().fold(0u64, |sum, b| {
            sum.wrapping_add(b.sum.load(Ordering::Relaxed))
        });
        let (last, wraps) = &self.rendered;
        let mut high = wraps.load(Ordering::Relaxed);
        if nanos < last.swap(nanos, Ordering::Relaxed) {
            high += 1;
            wraps.store(high, Ordering::Relaxed);
        }
        ((u128::from(high) << 64) | u128::from(nanos)) as f64 / 1e9
    }

    fn count(&self) -> u64 {
        self.all().map(|b| b.count()).sum()
    }
}

/// A thread that has not asked for an index yet.
const UNASSIGNED: u32 = u32::MAX;
/// A thread that has none and will not ask again: its thread-locals are being destroyed, or
/// every index is taken.
const NO_SHARD: u32 = u32::MAX - 1;

thread_local! {
    /// This thread's index into every [`Sharded`]'s shards: its own until the thread exits
    /// ([`ReleaseShard`]), so that no two threads write a shard at once.
    static THREAD_SHARD: Cell<u32> = const { Cell::new(UNASSIGNED) };
    /// Gives the index back when the thread exits, for the next thread to take: threads come
    /// and go (a runtime's blocking pool), and the shards are few.
    static RELEASE_SHARD: ReleaseShard = const { ReleaseShard };
}

/// The threads' shard indexes.
static SHARD_INDEXES: Mutex<ShardIndexes> = Mutex::new(ShardIndexes::new());

/// The indexes given back by exited threads, and the next never given. The lowest free index
/// goes first, a shard's before one past them: given back last in, first out, a thread
/// starting after a burst of threads could take one past the shards while a shard was free,
/// and record atomically for its life (helper-226's review).
struct ShardIndexes {
    free: BinaryHeap<Reverse<u32>>,
    next: u32,
}

impl ShardIndexes {
    const fn new() -> Self {
        ShardIndexes {
            free: BinaryHeap::new(),
            next: 0,
        }
    }

    /// The lowest index no thread holds; `NO_SHARD` once every other is held.
    fn take(&mut self) -> u32 {
        self.free.pop().map_or_else(
            || {
                let index = self.next;
                self.next = self.next.saturating_add(1).min(NO_SHARD);
                index
            },
            |Reverse(i)| i,
        )
    }

    fn give_back(&mut self, index: u32) {
        self.free.push(Reverse(index));
    }
}

/// How many shards a [`Sharded`] has: enough for a runtime's workers (one a CPU by default)
/// and a few threads more; a thread whose index is past them records atomically.
fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        cpus.saturating_mul(2).saturating_add(4).min(64)
    })
}

/// This thread's first sample under the recorder: an index for it, given back at its exit.
/// The index's last holder wrote its shard before giving it back under the lock this takes,
/// so this thread's loads see every count it wrote.
#[cold]
#[inline(never)]
fn take_shard() -> u32 {
    // First the destructor: a thread whose thread-locals are being destroyed can no longer
    // register one, and without it the index would never come back.
    let index = match RELEASE_SHARD.try_with(|_| ()) {
        Ok(()) => lock(&SHARD_INDEXES).take(),
        Err(_) => NO_SHARD,
    };
    let _ = THREAD_SHARD.try_with(|s| s.set(index));
    index
}

struct ReleaseShard;

impl Drop for ReleaseShard {
    fn drop(&mut self) {
        // `NO_SHARD` first: a destructor running after this one that records takes the
        // atomic path, never the shard another thread may hold by then.
        if let Ok(index) = THREAD_SHARD.try_with(|s| s.replace(NO_SHARD))
            && index < NO_SHARD
        {
            lock(&SHARD_INDEXES).give_back(index);
        }
    }
}

/// Every series of our families, by type. Locked only to register a series (once per call
/// site) and to render.
#[derive(Default)]
struct Store {
    counters: Mutex<Series<AtomicU64>>,
    histograms: Mutex<Series<Buckets>>,
    /// The first-attempt successes of a provider's method (see [`first_successes`]), by the
    /// key of each histogram series they are rendered into: its call's
    /// `outcome="success"` and its attempt's `result="success"`, both keys to one cell.
    shared: Mutex<BTreeMap<SeriesKey, Arc<Sharded>>>,
}

/// A series' key in a [`Series`] map: its family, and its labels in key order.
type SeriesKey = (&'static str, Labels);

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(Store::default)
}

fn lock<T>(map: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding it left the map whole: every write is one insert.
    map.lock().unwrap_or_else(|e| e.into_inner())
}

/// `key`'s labels as written (see [`Labels`]), and sorted by key: its [`SeriesKey`]'s.
fn labels(key: &Key) -> (Labels, Labels) {
    let mut labels: Labels = Vec::new();
    for l in key.labels() {
        match labels.iter_mut().find(|(k, _)| k == l.key()) {
            Some(pair) => l.value().clone_into(&mut pair.1),
            None => labels.push((l.key().to_owned(), l.value().to_owned())),
        }
    }
    let mut sorted = labels.clone();
    sorted.sort();
    (labels, sorted)
}

/// The series `key` names in `family`, made if new: two call sites with the same labels add
/// to one series, as they would in the exporter.
fn series<T: Default>(map: &Mutex<Series<T>>, family: &'static str, key: &Key) -> Arc<T> {
    let (labels, sorted) = labels(key);
    let mut map = lock(map);
    let (_, cell) = map
        .entry((family, sorted))
        .or_insert_with(|| (labels, Arc::default()));
    Arc::clone(cell)
}

thread_local! {
    /// Histogram series the process's store has handed out on this thread: how a call site
    /// knows that its handles came from it (see [`first_successes`]).
    static HANDED_OUT: Cell<u64> = const { Cell::new(0) };
}

/// How many histogram series the process's store has handed out on this thread so far.
/// Counted only where the facade asked the store, so a recorder of the application's own
/// (global, or set for a thread by `metrics::with_local_recorder`) leaves it where it was.
pub(crate) fn handed_out() -> u64 {
    HANDED_OUT.try_with(Cell::get).unwrap_or(0)
}

/// The one cell a first-attempt success of a method records its duration in, rendered
/// into both `calls` (its `resilience_call_duration_seconds{outcome="success"}` key) and
/// `attempts` (its `resilience_attempt_duration_seconds{result="success"}` key), added to
/// each series' own cell as it renders. For such a call the attempt's span is the call's
/// (the same two TSC readings), so one sample (into this thread's shard of the cell, see
/// [`Sharded`]) stands for both: the second record cost every call about 60 instructions. Two sites of one method share it, as they share their series.
///
/// Only for a call site whose handles the process's store gave (see [`handed_out`]): under
/// another recorder nothing may go anywhere but into it. `None` for a key not of our
/// histograms, which the caller never gives.
pub(crate) fn first_successes(calls: &Key, attempts: &Key) -> Option<FirstSuccesses> {
    store().first_successes(calls, attempts)
}

/// A method's first-attempt successes, as [`first_successes`] gives them: the cell
/// itself, not a `metrics::Histogram` (a dynamic call, behind a test for a no-op handle), as
/// this is every call's one sample.
pub(crate) struct FirstSuccesses(Arc<Sharded>);

impl FirstSuccesses {
    /// A first-attempt success that took `nanos`.
    #[inline]
    pub(crate) fn record(&self, nanos: u64) {
        self.0.record(nanos);
    }
}

/// `family`'s HELP and TYPE lines and its series, each written by `write`; nothing for a
/// family with no series.
fn write_family<T>(
    out: &mut String,
    (family, kind): (&'static str, &'static str),
    map: &Series<T>,
    write: impl Fn(&mut String, &SeriesKey, &Labels, &T),
) {
    let mut series = map.iter().filter(|((n, _), _)| *n == family).peekable();
    if series.peek().is_none() {
        return;
    }
    let _ = writeln!(out, "# HELP {family} {}", super::help(family));
    let _ = writeln!(out, "# TYPE {family} {kind}");
    for (key, (labels, cell)) in series {
        write(out, key, labels, cell);
    }
    out.push('\n');
}

impl Store {
    /// The handle's increment is metrics' `CounterFn for AtomicU64`: one relaxed `fetch_add`,
    /// atomic so that concurrent calls lose no count, relaxed because a count orders nothing
    /// else.
    fn counter(&self, family: &'static str, key: &Key) -> Counter {
        Counter::from_arc(series(&self.counters, family, key))
    }

    fn histogram(&self, family: &'static str, key: &Key) -> Histogram {
        if std::ptr::eq(self, store()) {
            // `try_with`: never a panic, even at a thread's exit (a `Cell<u64>` has no
            // destructor, so it does not fail; if it did, the site only loses the shared cell).
            let _ = HANDED_OUT.try_with(|n| n.set(n.get().wrapping_add(1)));
        }
        Histogram::from_arc(series(&self.histograms, family, key))
    }

    /// See [`first_successes`](fn@first_successes).
    fn first_successes(&self, calls: &Key, attempts: &Key) -> Option<FirstSuccesses> {
        let key = |k: &Key| match own(k.name()) {
            Some((family, HISTOGRAM)) => Some((family, labels(k).1)),
            _ => None,
        };
        let (calls, attempts) = (key(calls)?, key(attempts)?);
        let mut shared = lock(&self.shared);
        // Found under either key: both are always given together (`SiteMetrics::new`).
        let cell = match shared.get(&calls).or_else(|| shared.get(&attempts)) {
            Some(cell) => Arc::clone(cell),
            None => Arc::default(),
        };
        shared.insert(calls, Arc::clone(&cell));
        shared.insert(attempts, Arc::clone(&cell));
        Some(FirstSuccesses(cell))
    }

    /// Our families in the Prometheus text format, as the exporter writes its own.
    fn render(&self, out: &mut String) {
        let (counters, histograms) = (lock(&self.counters), lock(&self.histograms));
        let shared = lock(&self.shared);
        for own in OWN {
            if own.1 == COUNTER {
                // A call's and an attempt's `success` count the first-attempt successes by
                // their one sample each, in the cell they share with the duration family of
                // the same labels (`SiteMetrics::first_attempt_succeeded`).
                let counted_in = match own.0 {
                    CALLS_TOTAL => Some(CALL_DURATION_SECONDS),
                    ATTEMPTS_TOTAL => Some(ATTEMPT_DURATION_SECONDS),
                    _ => None,
                };
                write_family(out, own, &counters, |out, key, labels, c| {
                    let also = counted_in
                        .and_then(|h| shared.get(&(h, key.1.clone())))
                        .map_or(0, |b| b.count());
                    line(out, own.0, "", labels, None);
                    // Wrapping, as the counter's own increments do: a counter the application
                    // set near the top with `absolute` made the render panic in a debug
                    // build (helper-226's review).
                    let _ = writeln!(out, " {}", c.load(Ordering::Relaxed).wrapping_add(also));
                });
                continue;
            }
            write_family(out, own, &histograms, |out, key, labels, h| {
                // The series' own samples, plus those of the first-attempt successes it shares
                // with the other family, if any: the same buckets, so bucket by bucket.
                let also = shared.get(key);
                let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
                let mut count = 0u64;
                for (i, c) in h.counts.iter().enumerate() {
                    count += load(c) + also.map_or(0, |a| a.bucket_count(i));
                    let le = DURATION_BUCKETS
                        .get(i)
                        .map_or("+Inf".to_owned(), f64::to_string);
                    line(out, own.0, "_bucket", labels, Some(&le));
                    let _ = writeln!(out, " {count}");
                }
                line(out, own.0, "_sum", labels, None);
                let sum = h.sum() + also.map_or(0.0, |a| a.sum());
                let _ = writeln!(out, " {sum}");
                line(out, own.0, "_count", labels, None);
                let _ = writeln!(out, " {count}");
            });
        }
    }
}

/// `name_suffix{labels,le="…"}`, without the value.
fn line(out: &mut String, name: &str, suffix: &str, labels: &[(String, String)], le: Option<&str>) {
    out.push_str(name);
    out.push_str(suffix);
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let pairs = labels
        .iter()
        .map(|(k, v)| (sanitize_label_key(k), v.as_str()));
    let le = le.map(|v| ("le".to_owned(), v));
    for (i, (k, v)) in pairs.chain(le).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    out.push('}');
}

/// A label value as the exposition format writes it: a backslash, a double quote and a line
/// feed escaped, each one, so every value reads back as itself. (The exporter's
/// `sanitize_label_value` takes a backslash before a backslash or a quote for an escape made
/// already: a provider named `a\\b` came out as `a\\b`, which reads `a\b`, the series of a
/// provider named `a\b`.)
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `key` as the exporter must be given it to write its label values exactly: its escaping
/// writes a run of backslashes as half as many escaped ones (and drops an odd one before a
/// quote), so every backslash is doubled first and comes out as the one escaped backslash it
/// is. Borrowed when no value has one, the rule; made at registration, not per update.
fn for_exporter(key: &Key) -> Cow<'_, Key> {
    if key.labels().all(|l| !l.value().contains('\\')) {
        return Cow::Borrowed(key);
    }
    let labels: Vec<Label> = key
        .labels()
        .map(|l| Label::new(l.key().to_owned(), l.value().replace('\\', "\\\\")))
        .collect();
    Cow::Owned(Key::from_parts(key.name().to_owned(), labels))
}

/// The exporter's recorder, with our families kept in a [`Store`]. A metric of another type
/// under one of our families' names gets a handle that records nothing: the exposition would
/// otherwise give one name two types, which Prometheus rejects.
pub(crate) struct Recorder {
    prometheus: PrometheusRecorder,
    store: &'static Store,
}

impl Recorder {
    pub(crate) fn new(prometheus: PrometheusRecorder) -> Self {
        Recorder {
            prometheus,
            store: store(),
        }
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        // Ours are described by `render`; the exporter would print nothing for them anyway,
        // having no series of those names.
        if own(key.as_str()).is_none() {
            self.prometheus.describe_counter(key, unit, description);
        }
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if own(key.as_str()).is_none() {
            self.prometheus.describe_gauge(key, unit, description);
        }
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if own(key.as_str()).is_none() {
            self.prometheus.describe_histogram(key, unit, description);
        }
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        match own(key.name()) {
            None => self
                .prometheus
                .register_counter(&for_exporter(key), metadata),
            Some((family, COUNTER)) => self.store.counter(family, key),
            Some(_) => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        match own(key.name()) {
            None => self.prometheus.register_gauge(&for_exporter(key), metadata),
            Some(_) => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        match own(key.name()) {
            None => self
                .prometheus
                .register_histogram(&for_exporter(key), metadata),
            Some((family, HISTOGRAM)) => self.store.histogram(family, key),
            Some(_) => Histogram::noop(),
        }
    }
}

/// Appends our families to `out` (the exporter's text), the state gauge of `providers`
/// included.
pub(crate) fn render(out: &mut String, providers: &[crate::Provider]) {
    store().render(out);
    render_states(out, providers);
}

/// The state gauge of `providers`, one state read each: 1 for it, 0 for the others.
fn render_states(out: &mut String, providers: &[crate::Provider]) {
    if providers.is_empty() {
        return;
    }
    let (family, kind) = STATE;
    let _ = writeln!(out, "# HELP {family} {}", super::help(family));
    let _ = writeln!(out, "# TYPE {family} {kind}");
    for p in providers {
        let now = p.state();
        for &s in crate::CircuitState::ALL {
            let labels = [
                ("provider".to_owned(), p.name().to_owned()),
                ("state".to_owned(), s.as_str().to_owned()),
            ];
            line(out, family, "", &labels, None);
            let _ = writeln!(out, " {}", u8::from(s == now));
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use metrics::{Level, Recorder as _};
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

    use super::*;

    fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
        let labels: Vec<metrics::Label> = labels
            .iter()
            .map(|(k, v)| metrics::Label::new(*k, *v))
            .collect();
        Key::from_parts(name, labels)
    }

    /// Taken by the tests whose threads hold many shard indexes at once, so that they do not
    /// run beside each other: one's threads would take the indexes the other counts on.
    static SHARD_TESTS: Mutex<()> = Mutex::new(());

    /// Whole `seconds` in nanoseconds, as a first-attempt success records them.
    fn nanos(seconds: f64) -> u64 {
        (seconds * 1e9) as u64
    }

    /// The lines of an exposition, blank lines dropped, sorted: the exporter orders families
    /// and series by hash.
    fn lines(text: &str) -> Vec<String> {
        let mut v: Vec<String> = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    }

    /// Ours, with a store of its own (the process's is shared by every test), and what it
    /// renders: the exporter's text, then the store's.
    fn ours() -> (Recorder, impl Fn() -> String) {
        let prometheus = PrometheusBuilder::new().build_recorder();
        let handle = prometheus.handle();
        let store: &'static Store = Box::leak(Box::default());
        let render = move || {
            let mut text = handle.render();
            store.render(&mut text);
            text
        };
        (Recorder { prometheus, store }, render)
    }

    /// A first-attempt success's buckets, in nanoseconds, are the others', and a sample on a
    /// bound counts in that bound's bucket by either path: in nanoseconds, and in the seconds
    /// that a retried call or another recorder records (`seconds`, which took 30 s for
    /// 30.000000000000004 s and the next bucket, helper-226 found), one series rendering both.
    #[test]
    fn nanosecond_buckets_are_the_seconds_buckets() {
        for (i, (n, s)) in BUCKET_NANOS.iter().zip(BUCKETS).enumerate() {
            assert_eq!(super::super::seconds(*n), s);
            assert_eq!(NanoBuckets::bucket(*n), i);
            assert_eq!(NanoBuckets::bucket(*n + 1), i + 1);
            assert_eq!(Buckets::bucket(s), i);
            assert_eq!(Buckets::bucket(super::super::seconds(*n + 1)), i + 1);
        }
        assert_eq!(NanoBuckets::bucket(0), 0);
        assert_eq!(NanoBuckets::bucket(u64::MAX), BUCKETS.len());
        let meta = Metadata::new(module_path!(), Level::INFO, None);
        let (ours, render) = ours();
        let both = success_cell(&ours, &[("provider", "p")]);
        let call = key(
            CALL_DURATION_SECONDS,
            &[("provider", "p"), ("outcome", "success")],
        );
        // A first-attempt success of 30 s, and a retried call of 30 s as `record_call`
        // records it.
        both.record(30_000_000_000);
        ours.register_histogram(&call, &meta)
            .record(super::super::seconds(30_000_000_000));
        let text = render();
        let line = "resilience_call_duration_seconds_bucket{provider=\"p\",outcome=\"success\",le=\"30\"} 2";
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }

    /// The first-attempt successes' `_sum` never goes down: its nanoseconds wrap at 2^64
    /// (584 years of call time, which 1,000 concurrent ten-minute calls of one method add up in
    /// 213 days), and the render counts on past the wrap, where it showed a drop of 1.8e10 s,
    /// a counter reset to Prometheus (helper-226's review). A counter of ours that the
    /// application set near the top renders, wrapping as its increments do, where the render
    /// panicked in a debug build.
    #[test]
    fn sums_and_counters_near_the_top_render_without_going_down_or_panicking() {
        let meta = Metadata::new(module_path!(), Level::INFO, None);
        let (ours, render) = ours();
        let pm = [("provider", "p"), ("method", "m")];
        let calls = key(CALLS_TOTAL, &[pm[0], pm[1], ("outcome", "success")]);
        ours.register_counter(&calls, &meta).absolute(u64::MAX);
        let both = success_cell(&ours, &pm);
        let sum = |text: &str| -> f64 {
            let prefix = "resilience_call_duration_seconds_sum{";
            let line = text.lines().find(|l| l.starts_with(prefix)).unwrap();
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        // Just under 2^64 ns, as four samples: a sample's size does not matter to the sum.
        let ten_minutes = 600_000_000_000u64;
        let total = u64::MAX / ten_minutes * ten_minutes;
        for _ in 0..4 {
            both.record(total / 4);
        }
        let before = sum(&render());
        both.record(ten_minutes);
        let text = std::panic::catch_unwind(&render).expect("the render panicked");
        let after = sum(&text);
        assert!(after > before, "_sum went from {before} to {after}");
        // The counter's own value plus the cell's five samples, wrapping.
        let line = "resilience_calls_total{provider=\"p\",method=\"m\",outcome=\"success\"} 4";
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }

    /// A thread takes the lowest free shard index: after more threads than shards held
    /// indexes, and the one with the lowest gave it back, then one past the shards, the next
    /// thread takes the shard, where it took the index past them (given back last) and
    /// recorded atomically for its life (helper-226's review). The handout alone, without the
    /// process's threads, which other tests' make take indexes of their own.
    #[test]
    fn a_new_thread_takes_a_free_shard_before_an_index_past_them() {
        let mut indexes = ShardIndexes::new();
        let held: Vec<u32> = (0..10).map(|_| indexes.take()).collect();
        assert_eq!(held, (0..10).collect::<Vec<_>>());
        indexes.give_back(2);
        indexes.give_back(9);
        assert_eq!(indexes.take(), 2);
        assert_eq!(indexes.take(), 9);
        assert_eq!(indexes.take(), 10);
        // Every index taken: none is made past `NO_SHARD`.
        indexes.next = NO_SHARD - 1;
        assert_eq!(indexes.take(), NO_SHARD - 1);
        assert_eq!(indexes.take(), NO_SHARD);
        assert_eq!(indexes.take(), NO_SHARD);
    }

    /// The cell of a method's first-attempt successes, `labels` its own, with its two success
    /// histograms registered as a call site's are (the series it is rendered into).
    fn success_cell(ours: &Recorder, labels: &[(&'static str, &'static str)]) -> FirstSuccesses {
        let meta = Metadata::new(module_path!(), Level::INFO, None);
        let with = |name, k, v| key(name, &[labels, &[(k, v)]].concat());
        let (call, attempt) = (
            with(CALL_DURATION_SECONDS, "outcome", "success"),
            with(ATTEMPT_DURATION_SECONDS, "result", "success"),
        );
        // The series stay registered when the handles go, as a site's do.
        let _ = ours.register_histogram(&call, &meta);
        let _ = ours.register_histogram(&attempt, &meta);
        ours.store.first_successes(&call, &attempt).unwrap()
    }

    /// A call of minutes has a bucket: the dashboard's quantiles flattened at the last bound
    /// below it (120 s) when it went to `+Inf`.
    #[test]
    fn calls_of_minutes_land_below_inf() {
        let h = Buckets::default();
        for v in [250.0, 600.0, 601.0] {
            h.record(v);
        }
        let at = |le: f64| DURATION_BUCKETS.iter().position(|b| *b == le).unwrap();
        let n = |i: usize| h.counts[i].load(Ordering::Relaxed);
        assert_eq!((n(at(300.0)), n(at(600.0))), (1, 1));
        assert_eq!(n(DURATION_BUCKETS.len()), 1, "only the 601 s call in +Inf");
    }

    /// Every label value reads back as itself, in our families and in the exporter's: no
    /// two providers share a series (`a\b` and `a\\b` were one, and `c\"d` read `c"d`).
    #[test]
    fn label_values_with_backslashes_read_back_as_themselves() {
        let meta = Metadata::new(module_path!(), Level::INFO, None);
        let (ours, render) = ours();
        let names = [r"a\b", r"a\\b", r#"c\"d"#, "e\\\nf", r"g\"];
        for (i, name) in (1..).zip(names) {
            let labels = [("provider", name)];
            ours.register_counter(&key(CALLS_TOTAL, &labels), &meta)
                .increment(i);
            ours.register_gauge(&key("app_state", &labels), &meta)
                .set(i as f64);
        }
        let text = render();
        let written = [r"a\\b", r"a\\\\b", r#"c\\\"d"#, r"e\\\nf", r"g\\"];
        for (i, w) in (1..).zip(written) {
            for family in [CALLS_TOTAL, "app_state"] {
                let line = format!("{family}{{provider=\"{w}\"}} {i}");
                assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
            }
        }
    }

    /// The exporter alone, with our duration buckets and our families' HELP lines: what our
    /// store's text is compared against.
    fn exporter_like_ours() -> PrometheusRecorder {
        let exporter = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(CALL_DURATION_SECONDS.into()),
                DURATION_BUCKETS,
            )
            .unwrap()
            .set_buckets_for_metric(
                Matcher::Full(ATTEMPT_DURATION_SECONDS.into()),
                DURATION_BUCKETS,
            )
            .unwrap()
            .build_recorder();
        for (name, _) in OWN {
            exporter.describe_counter(name.into(), None, super::super::help(name).into());
        }
        exporter
    }

    /// The same updates through our recorder and through the exporter alone give the same
    /// text: HELP lines, label escaping, cumulative buckets, a series shared by two handles,
    /// labels given in another order or with a key repeated, a name the exporter rewrites, and
    /// the application's own metrics beside ours.
    #[test]
    fn renders_what_the_exporter_renders() {
        let meta = Metadata::new(module_path!(), Level::INFO, None);
        let exporter = exporter_like_ours();
        let (ours, render) = ours();
        let calls = key(
            CALLS_TOTAL,
            &[
                ("provider", "kimi"),
                ("method", "up\"load"),
                ("outcome", "success"),
            ],
        );
        let reordered = key(
            CALLS_TOTAL,
            &[
                ("outcome", "success"),
                ("provider", "kimi"),
                ("method", "up\"load"),
            ],
        );
        let repeated = key(
            RETRIES_TOTAL,
            &[("provider", "a"), ("method", "m"), ("provider", "b")],
        );
        let dashed = key("resilience-attempts_total", &[("provider", "glm")]);
        let app = key("app_uploads_total", &[("tenant", "t")]);
        let duration = key(
            CALL_DURATION_SECONDS,
            &[("provider", "kimi"), ("outcome", "success")],
        );
        let attempt = key(
            ATTEMPT_DURATION_SECONDS,
            &[("provider", "kimi"), ("result", "error")],
        );
        let samples = [
            0.0, 0.0004, 0.001, 0.0011, 0.3, 7.0, 120.0, 121.0, 250.0, 600.0, 1e9,
        ];
        let rec: [&dyn metrics::Recorder; 2] = [&ours, &exporter];
        for r in rec {
            let c = r.register_counter(&calls, &meta);
            c.increment(2);
            c.increment(3);
            // A second handle to a series adds to it, as two call sites with the same labels do.
            r.register_counter(&calls, &meta).increment(1);
            r.register_counter(&reordered, &meta).increment(10);
            r.register_counter(&repeated, &meta).increment(1);
            r.register_counter(&dashed, &meta).increment(4);
            r.register_counter(&key(ATTEMPTS_TOTAL, &[("provider", "kimi")]), &meta)
                .increment(1);
            r.register_counter(&app, &meta).increment(7);
            let h = r.register_histogram(&duration, &meta);
            for s in samples {
                h.record(s);
            }
            // The attempts' family, after the call's in the text: a sample of each kind but
            // the largest.
            let h = r.register_histogram(&attempt, &meta);
            for s in &samples[..samples.len() - 1] {
                h.record(*s);
            }
        }
        let text = render();
        assert_eq!(
            lines(&text),
            lines(&exporter.handle().render()),
            "ours:\n{text}"
        );
        assert!(
            text.contains("method=\"up\\\"load\",outcome=\"success\"} 16"),
            "{text}"
        );
        assert!(
            text.contains("resilience_retries_total{provider=\"b\",method=\"m\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("resilience_attempts_total{provider=\"glm\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("resilience_call_duration_seconds_bucket{provider=\"kimi\",outcome=\"success\",le=\"0.001\"} 3"),
            "{text}"
        );
        assert!(text.contains("app_uploads_total{tenant=\"t\"} 7"), "{text}");
        assert!(
            text.contains(
                "resilience_attempt_duration_seconds_count{provider=\"kimi\",result=\"error\"} 10"
            ),
            "{text}"
        );
    }

    /// A method's first-attempt successes, kept once, render into its call's success series
    /// and its attempt's, each added to the series' own samples: the text is the exporter's
    /// given every sample in both. Before any sample, both series are at 0, bucket by bucket;
    /// another site of the same method gets the same cell; and only those two series get it.
    #[test]
    fn first_successes_render_in_both_families() {
        let meta = Metadata::new(module_path!(), Level::INFO, None);
        let exporter = exporter_like_ours();
        let (ours, render) = ours();
        let pm = [("provider", "kimi"), ("method", "upload")];
        let with = |name, k, v| key(name, &[pm[0], pm[1], (k, v)]);
        let call = with(CALL_DURATION_SECONDS, "outcome", "success");
        let attempt = with(ATTEMPT_DURATION_SECONDS, "result", "success");
        let failure = with(CALL_DURATION_SECONDS, "outcome", "failure");
        let (call_h, attempt_h, failure_h) = (
            ours.register_histogram(&call, &meta),
            ours.register_histogram(&attempt, &meta),
            ours.register_histogram(&failure, &meta),
        );
        let both = ours.store.first_successes(&call, &attempt).unwrap();
        // Not one of our histograms: no cell.
        assert!(
            ours.store
                .first_successes(&key(CALLS_TOTAL, &pm), &attempt)
                .is_none()
        );
        let zero = render();
        for family in [CALL_DURATION_SECONDS, ATTEMPT_DURATION_SECONDS] {
            let result = if family == CALL_DURATION_SECONDS {
                "outcome"
            } else {
                "result"
            };
            let labels = format!("provider=\"kimi\",method=\"upload\",{result}=\"success\"");
            for le in DURATION_BUCKETS
                .iter()
                .map(f64::to_string)
                .chain(["+Inf".to_owned()])
            {
                let line = format!("{family}_bucket{{{labels},le=\"{le}\"}} 0");
                assert!(zero.lines().any(|l| l == line), "{line} in\n{zero}");
            }
            for suffix in ["_sum", "_count"] {
                let line = format!("{family}{suffix}{{{labels}}} 0");
                assert!(zero.lines().any(|l| l == line), "{line} in\n{zero}");
            }
        }
        // Samples exact in binary as seconds, so that the sums add up to the bit in any order:
        // one in the first bucket, one in a middle one, one in `+Inf`. The cell takes
        // nanoseconds, the facade's handles seconds.
        let shared = [0.001_953_125, 0.25, 1024.0];
        for s in shared {
            both.record(nanos(s));
        }
        // Another site of the method: the same cell.
        ours.store
            .first_successes(&attempt, &call)
            .unwrap()
            .record(nanos(8.0));
        // A retried call's own samples: its call, and its successful last attempt.
        call_h.record(0.5);
        attempt_h.record(0.125);
        failure_h.record(2.0);
        for (h, own) in [(&call, 0.5), (&attempt, 0.125)] {
            let h = exporter.register_histogram(h, &meta);
            for s in shared.iter().chain([&8.0, &own]) {
                h.record(*s);
            }
        }
        exporter.register_histogram(&failure, &meta).record(2.0);
        let text = render();
        assert_eq!(
            lines(&text),
            lines(&exporter.handle().render()),
            "ours:\n{text}"
        );
        for line in [
            "resilience_call_duration_seconds_count{provider=\"kimi\",method=\"upload\",outcome=\"success\"} 5",
            "resilience_call_duration_seconds_sum{provider=\"kimi\",method=\"upload\",outcome=\"success\"} 1032.751953125",
            "resilience_call_duration_seconds_bucket{provider=\"kimi\",method=\"upload\",outcome=\"success\",le=\"0.25\"} 2",
            "resilience_attempt_duration_seconds_count{provider=\"kimi\",method=\"upload\",result=\"success\"} 5",
            "resilience_attempt_duration_seconds_bucket{provider=\"kimi\",method=\"upload\",result=\"success\",le=\"0.25\"} 3",
            "resilience_call_duration_seconds_count{provider=\"kimi\",method=\"upload\",outcome=\"failure\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    /// A first-attempt success is counted by its one sample: the call's and the attempt's
    /// `success` counters render their own increments (a retried call's) plus the shared
    /// cell's count, and no other series takes it.
    #[test]
    fn first_successes_count_in_both_counters() {
        let meta = Metadata::new(module_path!(), Level::INFO, None);
        let (ours, render) = ours();
        let pm = [("provider", "kimi"), ("method", "upload")];
        let with = |name, k, v| key(name, &[pm[0], pm[1], (k, v)]);
        let calls = ours.register_counter(&with(CALLS_TOTAL, "outcome", "success"), &meta);
        let attempts = ours.register_counter(&with(ATTEMPTS_TOTAL, "result", "success"), &meta);
        let failures = ours.register_counter(&with(CALLS_TOTAL, "outcome", "failure"), &meta);
        let both = success_cell(&ours, &pm);
        for s in [0.001, 0.5, 30.0] {
            both.record(nanos(s));
        }
        // A retried call's success: one call, and its last attempt.
        calls.increment(1);
        attempts.increment(1);
        failures.increment(1);
        let text = render();
        for line in [
            "resilience_calls_total{provider=\"kimi\",method=\"upload\",outcome=\"success\"} 4",
            "resilience_attempts_total{provider=\"kimi\",method=\"upload\",result=\"success\"} 4",
            "resilience_calls_total{provider=\"kimi\",method=\"upload\",outcome=\"failure\"} 1",
            "resilience_call_duration_seconds_count{provider=\"kimi\",method=\"upload\",outcome=\"success\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    /// A cell of first-attempt successes recorded from more threads at once than it has
    /// shards: each thread with an index writes its own shard, the others the atomic rest,
    /// and the render has every sample, bucket, sum and count, in both families and both
    /// counters.
    #[test]
    fn first_successes_from_more_threads_than_shards_lose_nothing() {
        let _alone = lock(&SHARD_TESTS);
        let (ours, render) = ours();
        let both = success_cell(&ours, &[("provider", "p")]);
        let threads = shard_count() + 3;
        const EACH: usize = 5_000;
        // Every thread holds its index until all have recorded: no index is given back and
        // taken again in between, so at least three threads find none.
        let all_recorded = std::sync::Barrier::new(threads);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (both, all_recorded) = (&both, &all_recorded);
                s.spawn(move || {
                    for i in 0..EACH {
                        // Exact in binary, so the sum adds up to the bit in any order.
                        both.record(nanos(if (i + t) % 2 == 0 { 0.25 } else { 1024.0 }));
                    }
                    all_recorded.wait();
                });
            }
        });
        let cell = &both.0;
        let in_shards: u64 = cell.shards.iter().map(|s| s.0.count()).sum();
        assert!(in_shards >= EACH as u64, "{in_shards} in the shards");
        assert!(
            cell.rest.count() >= 3 * EACH as u64,
            "{} in the rest",
            cell.rest.count()
        );
        let n = threads * EACH;
        let text = render();
        for family in [CALL_DURATION_SECONDS, ATTEMPT_DURATION_SECONDS] {
            let result = if family == CALL_DURATION_SECONDS {
                "outcome"
            } else {
                "result"
            };
            let labels = format!("provider=\"p\",{result}=\"success\"");
            for line in [
                format!("{family}_bucket{{{labels},le=\"0.25\"}} {}", n / 2),
                format!("{family}_bucket{{{labels},le=\"600\"}} {}", n / 2),
                format!("{family}_bucket{{{labels},le=\"+Inf\"}} {n}"),
                format!("{family}_count{{{labels}}} {n}"),
                format!(
                    "{family}_sum{{{labels}}} {}",
                    (n / 2) as f64 * (0.25 + 1024.0)
                ),
            ] {
                assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
            }
        }
    }

    /// A thread gives its shard index back when it exits, for the next thread to take: 200
    /// threads one after another take a few indexes, not 200 (only as many as threads that
    /// record at once, those of other tests included), and the shard a thread takes over keeps
    /// its predecessors' counts. A thread whose first sample comes from a thread-local's
    /// destructor, and one whose last does, lose none either.
    #[test]
    fn an_exited_thread_s_shard_goes_to_the_next_and_keeps_its_counts() {
        struct RecordAtExit(Arc<Sharded>);
        impl Drop for RecordAtExit {
            fn drop(&mut self) {
                self.0.record(nanos(0.5));
            }
        }
        thread_local! {
            static AT_EXIT: std::cell::RefCell<Option<RecordAtExit>> =
                const { std::cell::RefCell::new(None) };
        }
        let cell = Arc::new(Sharded::default());
        let _alone = lock(&SHARD_TESTS);
        let made_before = lock(&SHARD_INDEXES).next;
        for t in 0..200 {
            let cell = Arc::clone(&cell);
            std::thread::spawn(move || {
                // Every fourth thread records only from a destructor at its exit; every fourth
                // other records both now and then.
                if t % 4 != 0 {
                    cell.record(nanos(0.5));
                }
                if t % 2 == 0 {
                    AT_EXIT.with(|a| *a.borrow_mut() = Some(RecordAtExit(cell)));
                }
            })
            .join()
            .unwrap();
        }
        let made = lock(&SHARD_INDEXES).next - made_before;
        // Threads of other tests running beside this one may make some too.
        assert!(
            made < 100,
            "{made} indexes made for 200 threads one after another"
        );
        assert_eq!(cell.count(), 150 + 100);
        assert_eq!(cell.sum(), 250.0 * 0.5);
        assert_eq!(cell.bucket_count(NanoBuckets::bucket(nanos(0.5))), 250);
    }

    /// A metric of another type under one of our names records nothing, so the exposition
    /// never gives one name two types.
    #[test]
    fn a_type_clash_records_nothing() {
        let meta = Metadata::new(module_path!(), Level::INFO, None);
        let (ours, render) = ours();
        ours.register_histogram(&key(CALLS_TOTAL, &[]), &meta)
            .record(1.0);
        ours.register_counter(&key(CALL_DURATION_SECONDS, &[]), &meta)
            .increment(1);
        ours.register_gauge(&key(ATTEMPTS_TOTAL, &[]), &meta)
            .set(1.0);
        ours.register_gauge(&key("resilience-retries_total", &[]), &meta)
            .set(1.0);
        assert_eq!(render(), "");
        ours.register_counter(&key(ATTEMPTS_TOTAL, &[]), &meta)
            .increment(1);
        // The exporter renders this name as ours: one series (where the exporter alone would
        // keep one of the two counts and drop the other).
        ours.register_counter(&key("resilience-attempts_total", &[]), &meta)
            .increment(2);
        let text = render();
        assert_eq!(text.matches("# TYPE").count(), 1, "{text}");
        assert!(text.contains("\nresilience_attempts_total 3\n"), "{text}");
    }

    /// Scrapes taken while threads record: every scrape's buckets are cumulative and its
    /// `+Inf` is its `_count`; counts and sums never go down from one scrape to the next; and
    /// the last scrape, after the threads, has every sample. (A scrape may pair a bucket with
    /// a sum from before or after a sample: Prometheus' own clients allow that.)
    #[test]
    fn scrapes_during_records_are_consistent_and_lose_nothing() {
        let meta = Metadata::new(module_path!(), Level::INFO, None);
        let (ours, render) = ours();
        let h = ours.register_histogram(&key(CALL_DURATION_SECONDS, &[("provider", "p")]), &meta);
        let c = ours.register_counter(&key(CALLS_TOTAL, &[("provider", "p")]), &meta);
        let value = |text: &str, prefix: &str| -> Vec<f64> {
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
                .collect()
        };
        const THREADS: usize = 2;
        const EACH: usize = 20_000;
        let mut last = (0.0, 0.0, 0.0);
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (h, c) = (h.clone(), c.clone());
                    s.spawn(move || {
                        for i in 0..EACH {
                            // 0.25 s, or a sample in the `+Inf` bucket: exact in binary.
                            h.record(if (i + t) % 2 == 0 { 0.25 } else { 1024.0 });
                            c.increment(1);
                        }
                    })
                })
                .collect();
            loop {
                let done = workers.iter().all(|w| w.is_finished());
                let text = render();
                let buckets = value(&text, "resilience_call_duration_seconds_bucket");
                let count = value(&text, "resilience_call_duration_seconds_count");
                let sum = value(&text, "resilience_call_duration_seconds_sum");
                let calls = value(&text, "resilience_calls_total");
                assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{text}");
                assert_eq!(buckets.last(), count.first(), "{text}");
                let now = (count[0], sum[0], calls[0]);
                assert!(
                    now.0 >= last.0 && now.1 >= last.1 && now.2 >= last.2,
                    "{now:?} {last:?}"
                );
                last = now;
                if done {
                    break;
                }
            }
        });
        let n = (THREADS * EACH) as f64;
        assert_eq!(last, (n, n / 2.0 * (0.25 + 1024.0), n));
    }
}
