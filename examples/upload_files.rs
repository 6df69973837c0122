//! The story this project exists for: a gateway uploads files to two AI providers, `kimi` and
//! `glm`, whose first attempts succeed ~85% of the time, while `glm` goes down mid-run.
//! Through `#[resilient]` the uploads reach 99%+, `glm` is cut off at once and used again
//! within a breaker timeout of coming back, and an upload is recorded in SQLite only after it
//! succeeded, keyed by its file's idempotency key: nothing lost, nothing recorded twice.
//!
//! Exit code: 0 when every file was uploaded and recorded, 1 on a start-up error or when the
//! rows recorded differ from the uploads the servers accepted, 2 when some files were not
//! uploaded, 130 when interrupted (Ctrl-C: the uploads in flight finish and are recorded; 143
//! for SIGTERM, which is handled the same way).
//!
//! ```sh
//! cargo run --example upload_files                         # 1,000 files, 15% faults, glm outage
//! cargo run --example upload_files -- --files 5000 --fault-rate 0.3 --seed 7
//! cargo run --example upload_files -- --keep-serving       # then scrape /metrics
//! ```
//!
//! Everything runs on 127.0.0.1: two fault servers (`resilience-testkit`), the metrics
//! listener, an embedded SQLite file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use resilience::{
    Builder, CircuitState, Classify, ErrorClass, HttpError, ResilienceError, ResponseExt, Settings,
    resilient,
};
use resilience_testkit::{Fault, FaultServer, Faults, Outage};
use tracing_subscriber::layer::SubscriberExt;

#[derive(Parser, Debug)]
#[command(
    name = "upload_files",
    about = "Upload files to two flaky providers through #[resilient]"
)]
struct Args {
    /// Files to upload (made up on the fly).
    #[arg(long, default_value_t = 1000)]
    files: u32,
    /// Share of requests each provider fails transiently (500/502/503/504/dropped connection).
    #[arg(long, default_value_t = 0.15)]
    fault_rate: f64,
    /// Seconds after the start when glm goes down.
    #[arg(long, default_value_t = 3.0)]
    outage_start: f64,
    /// Seconds glm stays down.
    #[arg(long, default_value_t = 3.0)]
    outage_secs: f64,
    /// Uploads started per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Uploads in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// SQLite database (default: a new file in the temporary directory). An existing one is
    /// added to: the check at the end counts this run's rows.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Seed of the fault servers and of the file contents.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Most seconds a file waits, in all, for a breaker's next probe, or for a provider that
    /// answered 409 (processing it) to take it: that wait goes on after Ctrl-C or SIGTERM.
    #[arg(long, default_value_t = 30.0)]
    max_wait: f64,
    /// Keep serving /metrics and /health after the run, until Ctrl-C.
    #[arg(long)]
    keep_serving: bool,
    /// Print every retry and breaker log line (they go to stderr). RUST_LOG, when set, picks
    /// the lines instead (`RUST_LOG=resilience=debug`, `RUST_LOG=info`: targets and levels).
    #[arg(long)]
    verbose: bool,
}

/// The log filter `RUST_LOG` asks for, if set: targets and levels (`resilience=debug,warn`),
/// tracing-subscriber's `Targets` syntax, which needs no regex engine (its `EnvFilter`'s span
/// and field directives are not taken). A value that does not parse is a start-up error
/// naming it, rather than a run that logs nothing it was asked to.
fn rust_log(
    value: Option<std::ffi::OsString>,
) -> Result<Option<tracing_subscriber::filter::Targets>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value.to_str().ok_or_else(|| {
        format!("RUST_LOG={value:?}: expected targets and levels in UTF-8, e.g. resilience=debug")
    })?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| {
        format!(
            "RUST_LOG={text:?}: expected comma-separated levels or target=level pairs (e.g. \
             resilience=debug,warn; no span or field filters): {e}"
        )
    })
}

/// Far more than a loopback run can use, and far below what Tokio's semaphore refuses with a
/// panic (`usize::MAX >> 3` permits).
const MAX_CONCURRENCY: usize = 100_000;

impl Args {
    /// Values that would hang the run, panic or be quietly replaced.
    fn check(&self) -> Result<(), String> {
        let share = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("--{name} {v}: expected a share from 0 to 1"))
            }
        };
        let secs = |name: &str, v: f64| {
            if v.is_finite() && (0.0..=86_400.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("--{name} {v}: expected seconds from 0 to 86400"))
            }
        };
        share("fault-rate", self.fault_rate)?;
        secs("outage-start", self.outage_start)?;
        secs("outage-secs", self.outage_secs)?;
        secs("max-wait", self.max_wait)?;
        if !(self.rate.is_finite() && (0.001..=1_000_000.0).contains(&self.rate)) {
            return Err(format!(
                "--rate {}: expected uploads per second from 0.001 to 1000000",
                self.rate
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(format!(
                "--concurrency {}: expected from 1 to {MAX_CONCURRENCY} uploads in flight",
                self.concurrency
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- the providers

/// Each variant's class is its field's own: its `Retry-After` and log text too.
#[derive(Debug, Classify)]
enum UploadError {
    #[classify(transparent)]
    Network(reqwest::Error),
    #[classify(transparent)]
    Http(HttpError),
    #[classify(transparent)]
    Resilience(ResilienceError),
    /// A success status whose JSON answer has no file id: no upload to record.
    #[classify(permanent)]
    NoFileId,
    /// 409 for the file's key: the provider is processing an upload of this file already
    /// (the IETF `Idempotency-Key` draft's answer to a request whose key's first request is in
    /// progress: ours after an attempt cut off by `RETRY_ATTEMPT_TIMEOUT`). It has the file,
    /// or will: throttled, so it is retried, is no breaker failure, and is not failed over.
    #[classify(throttled)]
    InProgress,
}

impl From<ResilienceError> for UploadError {
    fn from(e: ResilienceError) -> Self {
        UploadError::Resilience(e)
    }
}

struct Uploaded {
    file_id: String,
}

/// What every provider offers. Native `async fn` in a trait; `#[resilient]` goes on the impls.
///
/// `key` is the file's idempotency key, sent on every attempt. `current_call()` has one too,
/// the same across a call's retries, which is enough for a caller that calls once; this
/// gateway calls a provider again itself (after waiting for a breaker, or after failing
/// over), each a new call, so it keeps one key per file.
trait FileProvider {
    async fn upload_file(
        &self,
        key: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<Uploaded, UploadError>;
}

/// Counts kept by the provider itself, to show what the user would get without resilience.
#[derive(Default)]
struct AttemptStats {
    first_attempts: AtomicU64,
    first_successes: AtomicU64,
    attempts: AtomicU64,
}

struct HttpProvider {
    client: reqwest::Client,
    url: String,
    stats: AttemptStats,
}

/// What the attempts of one call of [`calling`] noted.
#[derive(Default)]
struct Noted {
    /// It made an attempt: a call that ends with `CircuitOpen` was refused before any (a
    /// rejection), or on a retry (it reached the provider and failed, as
    /// `resilience_calls_total` counts it).
    reached: std::cell::Cell<bool>,
    /// An attempt was answered 409 for the file's key: the provider is processing the file,
    /// whatever a later attempt of the call got.
    in_progress: std::cell::Cell<bool>,
}

tokio::task_local! {
    static NOTED: Noted;
}

/// Called by every attempt.
fn note_reached() {
    let _ = NOTED.try_with(|n| n.reached.set(true));
}

/// Called by an attempt answered 409 for the file's key (see `InProgress`).
fn note_in_progress() {
    let _ = NOTED.try_with(|n| n.in_progress.set(true));
}

/// `call`'s result, and whether it made an attempt.
async fn reaching<T>(call: impl std::future::Future<Output = T>) -> (T, bool) {
    calling(call).await.0
}

/// `call`'s result, whether it made an attempt (see [`reaching`]), and whether one of its
/// attempts was answered 409 for the file's key: the provider has the file, or will, even when
/// a later attempt failed otherwise (a 503 by chance, a rejection by its breaker).
async fn calling<T>(call: impl std::future::Future<Output = T>) -> ((T, bool), bool) {
    NOTED
        .scope(Noted::default(), async {
            let out = call.await;
            NOTED.with(|n| ((out, n.reached.get()), n.in_progress.get()))
        })
        .await
}

impl HttpProvider {
    async fn post(&self, key: &str, name: &str, bytes: &[u8]) -> Result<Uploaded, UploadError> {
        let call = resilience::current_call().expect("inside a resilient call");
        note_reached();
        self.stats.attempts.fetch_add(1, Ordering::Relaxed);
        // Counted before the request: an attempt cut off by RETRY_ATTEMPT_TIMEOUT is dropped
        // at its `.await` and never gets past it, yet it reached the provider (counted after,
        // "final success of calls that reached it" went past 100%).
        if call.attempt == 1 {
            self.stats.first_attempts.fetch_add(1, Ordering::Relaxed);
        }
        let result = async {
            let resp = self
                .client
                .post(&self.url)
                .header("Idempotency-Key", key)
                .header("X-File-Name", name)
                .body(bytes.to_vec())
                .send()
                .await
                .map_err(UploadError::Network)?
                .check_status()
                // The key is this file's own, so a 409 is about it: the provider is
                // processing it already (see `InProgress`).
                .map_err(|e| match e.status() {
                    409 => {
                        note_in_progress();
                        UploadError::InProgress
                    }
                    _ => UploadError::Http(e),
                })?;
            // `check_status()` passes 304 and an upgrade's 101 on: for an upload, only a 2xx
            // is one.
            if !resp.status().is_success() {
                return Err(UploadError::Http(HttpError::new(
                    resp.status().as_u16(),
                    None,
                )));
            }
            // The provider's file id, from its JSON answer: `text()` took a body cut off where
            // no length was sent, an empty one or an error message for the id, and the upload
            // was recorded as done. As JSON, a body cut short (or empty) is transient and
            // retried under the same key; one that is no JSON, or has no id, is permanent.
            let answer: serde_json::Value = resp.json().await.map_err(UploadError::Network)?;
            match answer.get("id").and_then(serde_json::Value::as_str) {
                Some(id) => Ok(Uploaded {
                    file_id: id.to_owned(),
                }),
                None => Err(UploadError::NoFileId),
            }
        }
        .await;
        if call.attempt == 1 && result.is_ok() {
            self.stats.first_successes.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

struct Kimi(HttpProvider);
struct Glm(HttpProvider);

impl FileProvider for Kimi {
    #[resilient(provider = "kimi")]
    async fn upload_file(
        &self,
        key: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<Uploaded, UploadError> {
        self.0.post(key, name, bytes).await
    }
}

impl FileProvider for Glm {
    #[resilient(provider = "glm")]
    async fn upload_file(
        &self,
        key: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<Uploaded, UploadError> {
        self.0.post(key, name, bytes).await
    }
}

// ---------------------------------------------------------------- breaker transitions, from the logs

#[derive(Clone, Debug)]
struct Transition {
    at: Duration,
    provider: String,
    from: String,
    to: String,
    /// The breaker's generation after the move: orders a provider's moves (see
    /// [`in_move_order`]).
    generation: u64,
}

/// `seen` with each provider's moves in the order they were made, each keeping a place its
/// provider had: the library logs a move after releasing the breaker's lock, so two moves a
/// few microseconds apart on two threads can log out of order (a run printed `half_open →
/// open` before the `open → half_open` it followed, at the same millisecond); each line's
/// `generation` gives the order.
fn in_move_order(mut seen: Vec<Transition>) -> Vec<Transition> {
    let providers: BTreeSet<String> = seen.iter().map(|t| t.provider.clone()).collect();
    for p in providers {
        let places: Vec<usize> = (0..seen.len()).filter(|&i| seen[i].provider == p).collect();
        let mut moves: Vec<Transition> = places.iter().map(|&i| seen[i].clone()).collect();
        moves.sort_by_key(|t| t.generation);
        for (i, t) in places.into_iter().zip(moves) {
            seen[i] = t;
        }
    }
    seen
}

/// Records every `[CIRCUIT]` event's structured fields with its time since the start.
struct TransitionLog {
    start: Instant,
    seen: Arc<Mutex<Vec<Transition>>>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for TransitionLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields(BTreeMap<&'static str, String>);
        impl tracing::field::Visit for Fields {
            fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
                self.0.insert(f.name(), v.to_owned());
            }
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0.insert(f.name(), format!("{v:?}"));
            }
        }
        if event.metadata().target() != "resilience" {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        if let (Some(provider), Some(from), Some(to)) =
            (f.0.get("provider"), f.0.get("from"), f.0.get("to"))
        {
            let t = Transition {
                at: self.start.elapsed(),
                provider: provider.clone(),
                from: from.clone(),
                to: to.clone(),
                generation: f
                    .0
                    .get("generation")
                    .and_then(|g| g.parse().ok())
                    .unwrap_or(0),
            };
            self.seen.lock().unwrap().push(t);
        }
    }
}

// ---------------------------------------------------------------- the file manager

#[derive(Default)]
struct Outcomes {
    ok: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    failed_over: AtomicU64,
    waited: AtomicU64,
    /// Uploads the database refused to record (a provider has them; the check at the end
    /// reports them).
    unrecorded: AtomicU64,
    /// Files whose provider was still processing them (it answered 409) when their wait ended:
    /// it may take them after the run, unrecorded here.
    left_in_progress: AtomicU64,
    first_ok_after_outage_ms: AtomicU64,
}

/// Where an upload's calls are counted: per provider for each call, per file at the end; and
/// how long a file may wait, which Ctrl-C cuts short (but for an upload in progress).
struct Tally<'a> {
    per_provider: &'a BTreeMap<&'static str, Outcomes>,
    outcomes: &'a Outcomes,
    max_wait: Duration,
    /// The exit code of the stop request (Ctrl-C, SIGTERM), once one came.
    stop: &'a tokio::sync::watch::Receiver<Option<u8>>,
}

/// Why a provider did not take a file, when another one might.
#[derive(Clone, Copy)]
enum Missed {
    /// Its breaker rejected the call; its next probe in this long, when known.
    Rejected(Option<Duration>),
    /// Its breaker was forced open by hand: no probe comes until it is reset, so it is not
    /// waited for.
    Forced,
    /// Every attempt failed transiently.
    Failed,
    /// It is processing an upload of the file already (409 for the file's key).
    InProgress,
}

/// `None` for a result to keep: a success, or an error that another provider would not fix
/// either (a permanent one). A call that ran out of time (`RETRY_TOTAL_TIMEOUT`) is not
/// retried, but the other provider may well take the file.
fn missed(result: &Result<Uploaded, UploadError>) -> Option<Missed> {
    match result {
        Err(UploadError::Resilience(ResilienceError::CircuitOpen {
            provider,
            retry_in: None,
        })) if forced_open(provider) => Some(Missed::Forced),
        Err(UploadError::Resilience(ResilienceError::CircuitOpen { retry_in, .. })) => {
            Some(Missed::Rejected(*retry_in))
        }
        Err(UploadError::Resilience(ResilienceError::DeadlineExceeded { .. })) => {
            Some(Missed::Failed)
        }
        Err(UploadError::InProgress) => Some(Missed::InProgress),
        Err(e) if e.classify() != ErrorClass::Permanent => Some(Missed::Failed),
        _ => None,
    }
}

/// A breaker a person forced open, asked of the provider: a rejection without a time comes
/// from a half-open breaker too, which decides within a probe's time.
fn forced_open(provider: &str) -> bool {
    resilience::provider(provider).state() == CircuitState::ForcedOpen
}

/// Before asking again a provider that is processing an upload of the file already.
const IN_PROGRESS_PAUSE: Duration = Duration::from_secs(1);

/// Before calling a provider again whose attempts all failed though its breaker is closed (by
/// chance, at a 15% fault rate), while the other provider's breaker rejects the file: once per
/// file, so that retries are not piled on retries where the provider is really failing.
const FAILED_PAUSE: Duration = Duration::from_secs(1);

/// Counts a call's result for its provider, and hands it on.
fn count(
    tally: &Tally<'_>,
    provider: &str,
    (result, reached): (Result<Uploaded, UploadError>, bool),
) -> Result<Uploaded, UploadError> {
    let o = &tally.per_provider[provider];
    match &result {
        Ok(_) => &o.ok,
        Err(UploadError::Resilience(ResilienceError::CircuitOpen { .. })) if !reached => {
            &o.rejected
        }
        Err(_) => &o.failed,
    }
    .fetch_add(1, Ordering::Relaxed);
    result
}

/// A provider that answered 409 for the file's key (on any attempt of a call: a later one may
/// have met a 503 by chance) is processing an upload of it already: it has the file, or will,
/// and the other one must not get a copy. It alone is asked again, after a pause (or, when
/// its breaker rejected the call, at its next probe), until it takes the file, answers with a
/// permanent error, its breaker is forced open (nothing gets through until a reset), or the
/// file's wait is over. The result, and whether the file waited.
///
/// Not cut short by Ctrl-C or SIGTERM, which let the uploads in flight finish and be
/// recorded: this one is in flight at the provider, which will have it whatever the gateway
/// does (cut short, it was counted failed and never recorded, though the provider accepted
/// it a moment later). A second Ctrl-C still exits at once.
async fn wait_in_progress<P: FileProvider>(
    (provider, p): (&'static str, &P),
    key: &str,
    name: &str,
    bytes: &[u8],
    tally: &Tally<'_>,
    give_up_at: tokio::time::Instant,
    mut result: Result<Uploaded, UploadError>,
) -> (Result<Uploaded, UploadError>, bool) {
    let mut waited = false;
    while let Some(m) = missed(&result) {
        let now = tokio::time::Instant::now();
        // A breaker forced open lets nothing through until a person resets it: asked every
        // second, it answered the same until the file's wait ran out (helper-247).
        if now >= give_up_at || matches!(m, Missed::Forced) {
            break;
        }
        waited = true;
        let pause = match m {
            // Never less than a millisecond, so a probe due now is not spun on.
            Missed::Rejected(Some(retry_in)) => retry_in.max(Duration::from_millis(1)),
            _ => IN_PROGRESS_PAUSE,
        };
        tokio::time::sleep(pause.min(give_up_at - now)).await;
        result = count(
            tally,
            provider,
            reaching(p.upload_file(key, name, bytes)).await,
        );
    }
    (result, waited)
}

/// Counts a file whose wait for a provider processing it (`wait_in_progress`) ended without
/// the upload: whatever the last answer, that provider was processing it and may accept it
/// after the run, where no row records it and the end-of-run check no longer looks.
fn left_in_progress(tally: &Tally<'_>, result: &Result<Uploaded, UploadError>) {
    if result.is_err() {
        tally
            .outcomes
            .left_in_progress
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// Uploads a file through `first`, and through `second` when `first` could not take it. While
/// at least one of the two rejected it (a breaker is open) and neither took it, the file waits
/// and tries again, for at most `max_wait` in all (or until Ctrl-C): for that breaker's next
/// probe, or, once, `FAILED_PAUSE` when the other provider failed by chance. A gateway delays a
/// file while its providers are cut off instead of dropping it. When both failed every
/// attempt, it stops there, so retries are not piled on retries.
///
/// Every call sends the file's one idempotency key, so a provider called again after a wait
/// deduplicates an upload it accepted but whose answer was lost. Failing over cannot: the
/// other provider's keys are its own. The fault servers answer a fault instead of accepting,
/// so it is safe here; with a real provider that can accept an upload and then lose the
/// answer, failing over can leave a copy behind at the first one (recorded once, here, under
/// the second one's id). A provider that answers 409 for the key is processing the file
/// already (on any attempt of the call): the file waits for it (`wait_in_progress`) instead of
/// failing over.
async fn upload_with_failover<A: FileProvider, B: FileProvider>(
    first: (&'static str, &A),
    second: (&'static str, &B),
    key: &str,
    name: &str,
    bytes: &[u8],
    tally: &Tally<'_>,
) -> (&'static str, Result<Uploaded, UploadError>) {
    // A call refused on a retry (another call opened the breaker during its backoff) returns
    // `CircuitOpen` too, but it reached the provider: it is a failure, not a rejection.
    let count = |provider: &str, called| count(tally, provider, called);
    let give_up_at = tokio::time::Instant::now() + tally.max_wait;
    let (mut failed_over, mut waited, mut paused_for_failed) = (false, false, false);
    let mut stop = tally.stop.clone();
    let last = loop {
        let (called, said_409) = calling(first.1.upload_file(key, name, bytes)).await;
        let result = count(first.0, called);
        let Some(first_missed) = missed(&result) else {
            break (first.0, result);
        };
        if said_409 || matches!(first_missed, Missed::InProgress) {
            let (result, w) =
                wait_in_progress(first, key, name, bytes, tally, give_up_at, result).await;
            waited |= w;
            left_in_progress(tally, &result);
            break (first.0, result);
        }
        failed_over = true;
        let (called, said_409) = calling(second.1.upload_file(key, name, bytes)).await;
        let result = count(second.0, called);
        let Some(second_missed) = missed(&result) else {
            break (second.0, result);
        };
        if said_409 || matches!(second_missed, Missed::InProgress) {
            let (result, w) =
                wait_in_progress(second, key, name, bytes, tally, give_up_at, result).await;
            waited |= w;
            left_in_progress(tally, &result);
            break (second.0, result);
        }
        if let (Missed::Failed, Missed::Failed) = (first_missed, second_missed) {
            break (second.0, result);
        }
        // When each may take it again: a breaker's next probe (a half-open one does not
        // know, so look again shortly; one forced open has none until a reset), or, once, a
        // pause for a provider that failed by chance.
        let ready_in = |m| match m {
            Missed::Rejected(retry_in) => Some(retry_in.unwrap_or(Duration::from_millis(100))),
            Missed::Failed if !paused_for_failed => Some(FAILED_PAUSE),
            Missed::Failed | Missed::InProgress | Missed::Forced => None,
        };
        let (a, b) = (ready_in(first_missed), ready_in(second_missed));
        let Some(wait) = a.into_iter().chain(b).min() else {
            break (second.0, result);
        };
        paused_for_failed |=
            matches!(first_missed, Missed::Failed) || matches!(second_missed, Missed::Failed);
        let now = tokio::time::Instant::now();
        if now >= give_up_at || stop.borrow().is_some() {
            break (second.0, result);
        }
        waited = true;
        // Never less than a millisecond, so a probe due now is not spun on.
        let sleep = tokio::time::sleep(wait.max(Duration::from_millis(1)).min(give_up_at - now));
        tokio::select! {
            _ = sleep => {}
            // Ctrl-C: the file ends with the error it has.
            _ = stop.changed() => break (second.0, result),
        }
    };
    if failed_over {
        tally.outcomes.failed_over.fetch_add(1, Ordering::Relaxed);
    }
    if waited {
        tally.outcomes.waited.fetch_add(1, Ordering::Relaxed);
    }
    last
}

/// The next stop request, and the exit code it stands for: Ctrl-C (130) or, on Unix, SIGTERM
/// (143), which is what systemd, Docker and Kubernetes send a service to stop it. Listening to
/// Ctrl-C alone, a gateway stopped by its supervisor died at once, mid-upload, without its
/// report, its check of the rows against the uploads, or the rows of the uploads in flight.
async fn shutdown_signal() -> std::io::Result<u8> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| 130),
            _ = term.recv() => Ok(143),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map(|()| 130)
    }
}

/// The stop requests of `signal` (see [`shutdown_signal`]), watched: `None` until the first,
/// then its exit code; the second exits the process at once. Listened to by a task of its own.
///
/// A listener that cannot listen (no handler could be installed) keeps the channel open all
/// the same: its sender dropped, every receiver's `changed()` ended at once, which the run
/// read as a stop request before its first upload.
fn stop_requests<F, Fut>(signal: F) -> tokio::sync::watch::Receiver<Option<u8>>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<u8>> + Send,
{
    let (stopping, stop) = tokio::sync::watch::channel(None::<u8>);
    tokio::spawn(async move {
        match signal().await {
            Ok(code) => {
                let by = if code == 143 { "SIGTERM" } else { "Ctrl-C" };
                eprintln!(
                    "\ninterrupted ({by}): no new uploads; finishing those in flight (Ctrl-C or \
                     SIGTERM again to quit now)"
                );
                let _ = stopping.send(Some(code));
                match signal().await {
                    Ok(code) => std::process::exit(i32::from(code)),
                    Err(e) => eprintln!("note: a second stop request cannot be heard: {e}"),
                }
            }
            Err(e) => eprintln!("note: stop requests (Ctrl-C, SIGTERM) cannot be heard: {e}"),
        }
        // Held for the run's life: see above.
        std::future::pending::<()>().await;
        drop(stopping);
    });
    stop
}

/// Files whose upload ended, whatever its outcome: after an interruption, the files started.
fn files_ended(o: &Outcomes) -> u64 {
    o.ok.load(Ordering::Relaxed)
        + o.failed.load(Ordering::Relaxed)
        + o.rejected.load(Ordering::Relaxed)
}

/// The two fault servers' seeds: any `--seed` is valid, so the second wraps.
fn server_seeds(seed: u64) -> [u64; 2] {
    [seed, seed.wrapping_add(1)]
}

/// This run's name, for its rows and its default database: a process id alone repeats (in
/// containers, often), so it also carries the time.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos:x}", std::process::id())
}

/// A database file no earlier run wrote, created here (failing if it exists).
fn new_db_path(run: &str) -> std::io::Result<PathBuf> {
    for n in 0..100 {
        let path = std::env::temp_dir().join(format!("resilience-uploads-{run}-{n}.db"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "100 database names in the temporary directory were taken: give one with --db",
    ))
}

/// An upload: the provider that has it, and its idempotency key.
type Upload = (String, String);

/// The uploads `run` recorded: a database given with `--db` may hold other runs' rows, and
/// another run may write to it at the same time.
fn run_keys(
    db: &rusqlite::Connection,
    run: &str,
) -> rusqlite::Result<std::collections::BTreeSet<Upload>> {
    let mut stmt = db.prepare("SELECT provider, idempotency_key FROM uploads WHERE run = ?1")?;
    stmt.query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// `part` of `whole` as a percentage with `decimals` places, rounded down: a run with one
/// failure in 2,000 shows 99.9%, never 100.0%.
fn percent(part: u64, whole: u64, decimals: u32) -> String {
    let scale = 10u128.pow(decimals);
    let scaled = u128::from(part) * 100 * scale / u128::from(whole.max(1));
    let (whole_part, fraction) = (scaled / scale, scaled % scale);
    if decimals == 0 {
        return whole_part.to_string();
    }
    format!("{whole_part}.{fraction:0width$}", width = decimals as usize)
}

/// Records an upload, off Tokio's workers: SQLite may wait for another writer (up to its busy
/// timeout, 5 s), which must not stall other uploads. An error is returned, not a panic: the
/// provider has the file, and the check at the end must still run and report it.
async fn record(
    db: &Arc<Mutex<rusqlite::Connection>>,
    row: (String, &'static str, String, String, i64, Arc<String>),
) -> rusqlite::Result<()> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        let (key, provider, name, file_id, bytes, run) = row;
        // The idempotency key is the primary key, so a row can never be written twice.
        db.lock().unwrap_or_else(|e| e.into_inner()).execute(
            INSERT_UPLOAD,
            (&key, provider, &name, &file_id, bytes, run.as_str()),
        )
    })
    .await
    .expect("the insert does not panic")
    .map(|_| ())
}

/// The row of an upload; [`open_db`] tries it once, rolled back, before any upload.
const INSERT_UPLOAD: &str = "INSERT INTO uploads (idempotency_key, provider, file_name, file_id, bytes, run) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// The database, ready to take this run's rows: one it can open but not write (SQLite opens a
/// file it may not write read-only, without an error, as it does a `file:…?mode=ro` URI), or
/// whose table refuses the row (an older table of another shape), is refused here, before
/// any upload, not found out one refused row per accepted upload.
fn open_db(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    // Runs started at once on one new file each set it up, and one's switch to WAL or its
    // `CREATE TABLE` meets the other's: SQLite answers "database is locked" at once there,
    // without waiting its busy timeout (the two would deadlock upgrading their read locks),
    // so the set-up is tried again, for as long as that timeout (5 s, rusqlite's default).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match set_up_db(path) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            done => return done,
        }
    }
}

/// [`open_db`]'s one try.
fn set_up_db(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    let db = rusqlite::Connection::open(path)?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS uploads (
             idempotency_key TEXT PRIMARY KEY,
             provider TEXT NOT NULL,
             file_name TEXT NOT NULL,
             file_id TEXT NOT NULL,
             bytes INTEGER NOT NULL,
             run TEXT
         );",
    )?;
    // A database from before runs were recorded gets the column (naming it fails there).
    if db.prepare("SELECT run FROM uploads LIMIT 0").is_err() {
        db.execute_batch("ALTER TABLE uploads ADD COLUMN run TEXT;")?;
    }
    // A row as `record` writes it, in a transaction that is rolled back: it takes SQLite's
    // write lock (waiting for another writer up to the busy timeout, as `record` does) and
    // checks the table's constraints, and leaves nothing.
    db.execute_batch("BEGIN IMMEDIATE")?;
    let tried = db.execute(
        INSERT_UPLOAD,
        (
            "\u{0}start-up check",
            "",
            "",
            "",
            0_i64,
            "\u{0}start-up check",
        ),
    );
    // The insert's own error first: one that ended the transaction already (SQLite rolls one
    // back on some errors, a disk full, and a trigger's `RAISE(ROLLBACK, …)` does) made the
    // `ROLLBACK` fail with "cannot rollback - no transaction is active", which was reported
    // instead of it.
    let rolled_back = if db.is_autocommit() {
        Ok(())
    } else {
        db.execute_batch("ROLLBACK")
    };
    tried?;
    rolled_back?;
    Ok(db)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Errors by their message (which names the variable, the value and what was expected),
    // not by `Debug`, which is what returning them from `main` would print.
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The run's own database file (with SQLite's `-wal` and `-shm`), removed when dropped still
/// holding it: start-up failed after making it.
struct RemoveOnError(Option<PathBuf>);

impl Drop for RemoveOnError {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

async fn run() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    // A bad option exits with 1, as every start-up error does (clap's own exit is 2, which
    // this program gives to files not uploaded); `--help` with 0.
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return Ok(std::process::ExitCode::from(u8::from(e.use_stderr())));
        }
    };
    if let Err(msg) = args.check() {
        use clap::CommandFactory;
        let _ = Args::command()
            .error(clap::error::ErrorKind::ValueValidation, msg)
            .print();
        return Ok(std::process::ExitCode::FAILURE);
    }
    let filter = match rust_log(std::env::var_os("RUST_LOG")) {
        Ok(filter) => filter,
        Err(msg) => {
            eprintln!("error: {msg}");
            return Ok(std::process::ExitCode::FAILURE);
        }
    };
    let start = Instant::now();
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let log = TransitionLog {
        start,
        seen: transitions.clone(),
    };
    // RUST_LOG, when set, decides what is printed, as in any tracing program.
    use tracing_subscriber::Layer;
    let chosen = filter.clone().map(|filter| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
    });
    // Our own lines only: hyper's and reqwest's debug lines would bury them.
    let verbose = (args.verbose && filter.is_none()).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                m.target() == "resilience"
            }))
    });
    // Without --verbose, the warnings of start-up still show (a misspelt RESILIENCE_*
    // variable), but not the retries' and breakers' of the run, which would bury the progress.
    static STARTING: AtomicBool = AtomicBool::new(true);
    let startup = (!args.verbose && filter.is_none()).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                m.target() == "resilience"
                    && *m.level() <= tracing::Level::WARN
                    && STARTING.load(Ordering::Relaxed)
            }))
    });
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(log)
            .with(chosen)
            .with(verbose)
            .with(startup),
    )?;

    // Short delays and breaker timeouts so the story fits in seconds. As defaults for every
    // provider, so that every RESILIENCE_* variable, global or per provider, overrides them
    // (see the README's precedence).
    let fast = Settings::new()
        .base_delay(Duration::from_millis(50))
        .max_delay(Duration::from_secs(1))
        .breaker_timeout(Duration::from_secs(2));
    Builder::new().defaults(fast).init()?;
    STARTING.store(false, Ordering::Relaxed);

    // Before any server: a database that cannot be opened ends the run before it starts.
    let run = Arc::new(run_id());
    let db_path = match &args.db {
        Some(path) => path.clone(),
        None => new_db_path(&run)?,
    };
    println!("database: {}", db_path.display());
    // The run's own database goes again if start-up fails after this (a busy metrics port):
    // no empty file is left behind. One given with --db is the user's, and stays.
    let mut made = RemoveOnError(args.db.is_none().then(|| db_path.clone()));
    let db = Arc::new(Mutex::new(open_db(&db_path)?));

    let metrics = match resilience::telemetry::serve_from_env().await {
        Ok(s) => s,
        Err(e) if std::env::var_os("RESILIENCE_METRICS_ADDR").is_none() => {
            eprintln!("note: {e}; using a free port instead");
            resilience::telemetry::serve("127.0.0.1:0".parse()?).await?
        }
        Err(e) => return Err(e.into()),
    };
    println!(
        "metrics: {}   health: {}",
        metrics.metrics_url(),
        metrics.health_url()
    );

    let [kimi_seed, glm_seed] = server_seeds(args.seed);
    let kimi_server =
        Arc::new(FaultServer::start(Faults::transient(args.fault_rate, kimi_seed)).await?);
    let glm_server =
        Arc::new(FaultServer::start(Faults::transient(args.fault_rate, glm_seed)).await?);
    let outage_start = Duration::from_secs_f64(args.outage_start);
    let outage_len = Duration::from_secs_f64(args.outage_secs);
    // On the run's clock, which the breaker transitions and the recovery figures are read on:
    // start-up took some of it (about 20 ms), and scheduled from now the outage came that much
    // later than printed.
    glm_server.schedule_outage(
        outage_start.saturating_sub(start.elapsed()),
        outage_len,
        Outage::Every(Fault::Status(503)),
    );
    let outage_end = outage_start + outage_len;
    made.0 = None;

    // The fault servers are on loopback: no proxy from the environment (reqwest would send
    // 127.0.0.1's requests to an `HTTP_PROXY` too).
    let client = reqwest::Client::builder().no_proxy().build()?;
    let provider = |url: String| HttpProvider {
        client: client.clone(),
        url,
        stats: AttemptStats::default(),
    };
    let kimi = Arc::new(Kimi(provider(kimi_server.upload_url())));
    let glm = Arc::new(Glm(provider(glm_server.upload_url())));
    let outcomes = Arc::new(Outcomes {
        first_ok_after_outage_ms: AtomicU64::new(u64::MAX),
        ..Outcomes::default()
    });
    let per_provider: Arc<BTreeMap<&str, Outcomes>> =
        Arc::new([("kimi", Outcomes::default()), ("glm", Outcomes::default())].into());

    let bar = ProgressBar::new(u64::from(args.files));
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg}")?
            .progress_chars("=> "),
    );
    // Checked: at most a day, so that adding it to an instant cannot overflow.
    let max_wait = Duration::from_secs_f64(args.max_wait);
    let limit = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut tasks = tokio::task::JoinSet::new();
    // The first Ctrl-C stops new uploads and ends the breaker waits of those in flight, which
    // finish and are recorded; a second one exits at once. The exit code of the stop request,
    // once one came.
    let stop = stop_requests(shutdown_signal);
    let mut stopped = stop.clone();
    for i in 0..args.files {
        let permit = tokio::select! {
            _ = stopped.changed() => break,
            permit = async {
                ticker.tick().await;
                limit.clone().acquire_owned().await
            } => permit?,
        };
        // Finished uploads are reaped as the run goes, so memory follows those in flight.
        while let Some(r) = tasks.try_join_next() {
            r?;
        }
        let name = format!("file-{i:05}.txt");
        // One key per file, for every call of it (see `FileProvider`).
        let key = format!("{run}-{i:05}");
        let bytes: Vec<u8> = (0..rng.random_range(256..4096))
            .map(|_| rng.random())
            .collect();
        let (kimi, glm, db, run, outcomes, per_provider, task_bar, stop) = (
            kimi.clone(),
            glm.clone(),
            db.clone(),
            run.clone(),
            outcomes.clone(),
            per_provider.clone(),
            bar.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            let _permit = permit;
            let (kimi, glm) = (("kimi", &*kimi), ("glm", &*glm));
            let ctx = Tally {
                per_provider: &per_provider,
                outcomes: &outcomes,
                max_wait,
                stop: &stop,
            };
            let (provider, result) = if i % 2 == 1 {
                upload_with_failover(glm, kimi, &key, &name, &bytes, &ctx).await
            } else {
                upload_with_failover(kimi, glm, &key, &name, &bytes, &ctx).await
            };
            match result {
                Ok(up) => {
                    // When the upload ended, not when its row was written.
                    let now = start.elapsed();
                    // Recorded only now that the provider has the file.
                    let row = (key, provider, name, up.file_id, bytes.len() as i64, run);
                    if let Err(e) = record(&db, row).await {
                        outcomes.unrecorded.fetch_add(1, Ordering::Relaxed);
                        // Printed around the bar: its own `println` prints nothing when it is
                        // hidden (stderr not a terminal).
                        task_bar
                            .suspend(|| eprintln!("uploaded to {provider} but not recorded: {e}"));
                    }
                    outcomes.ok.fetch_add(1, Ordering::Relaxed);
                    if provider == "glm" && now > outage_end {
                        outcomes
                            .first_ok_after_outage_ms
                            .fetch_min((now - outage_end).as_millis() as u64, Ordering::Relaxed);
                    }
                }
                Err(UploadError::Resilience(ResilienceError::CircuitOpen { .. })) => {
                    outcomes.rejected.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    outcomes.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            task_bar.inc(1);
        });
        let glm_state = resilience::provider("glm").state();
        bar.set_message(format!("glm breaker: {glm_state}"));
    }
    while let Some(r) = tasks.join_next().await {
        r?;
    }
    bar.finish_with_message("done");
    let elapsed = start.elapsed();
    let interrupted = stop.borrow().is_some();
    let started = if interrupted {
        files_ended(&outcomes)
    } else {
        u64::from(args.files)
    };

    // ---------------------------------------------------------------- the report
    // Compared upload by upload, not counted: a row for an upload no server accepted and an
    // accepted upload with no row would cancel out in counts. By provider and key: a file that
    // both providers accepted (a failover after an upload whose answer was lost) is a copy
    // the rows do not show, and fails the check.
    let rows = run_keys(&db.lock().unwrap_or_else(|e| e.into_inner()), &run)?;
    let tagged = |provider: &str, server: &FaultServer| {
        server
            .accepted_keys()
            .into_iter()
            .map(|k| (provider.to_owned(), k))
            .collect::<Vec<Upload>>()
    };
    let accepted: std::collections::BTreeSet<Upload> = tagged("kimi", &kimi_server)
        .into_iter()
        .chain(tagged("glm", &glm_server))
        .collect();
    let at_glm: std::collections::BTreeSet<String> =
        glm_server.accepted_keys().into_iter().collect();
    let at_both = kimi_server
        .accepted_keys()
        .iter()
        .filter(|k| at_glm.contains(*k))
        .count();
    let transitions = in_move_order(transitions.lock().unwrap().clone());
    println!();
    println!(
        "{} files in {:.1}s: {} uploaded ({}%), {} failed, {} rejected ({} failed over to the other provider, {} waited for a breaker)",
        started,
        elapsed.as_secs_f64(),
        outcomes.ok.load(Ordering::Relaxed),
        percent(outcomes.ok.load(Ordering::Relaxed), started, 1),
        outcomes.failed.load(Ordering::Relaxed),
        outcomes.rejected.load(Ordering::Relaxed),
        outcomes.failed_over.load(Ordering::Relaxed),
        outcomes.waited.load(Ordering::Relaxed)
    );
    println!();
    println!(
        "| provider | first-attempt success | final success (of calls that reached it) | attempts | retries | rejected (failed over or waited) | server requests | accepted |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, p, server) in [
        ("kimi", &kimi.0, &kimi_server),
        ("glm", &glm.0, &glm_server),
    ] {
        let o = &per_provider[name];
        let (ok, rejected) = (
            o.ok.load(Ordering::Relaxed),
            o.rejected.load(Ordering::Relaxed),
        );
        // Every call that reached the provider made a first attempt; one whose retry the
        // breaker refused reached it, and failed (as `resilience_calls_total` counts it).
        let reached = p.stats.first_attempts.load(Ordering::Relaxed);
        let first_ok = p.stats.first_successes.load(Ordering::Relaxed);
        let attempts = p.stats.attempts.load(Ordering::Relaxed);
        let s = server.stats();
        println!(
            "| {name} | {}% ({first_ok}/{reached}) | {}% ({ok}/{reached}) | {attempts} | {} | {rejected} | {} | {} |",
            percent(first_ok, reached, 1),
            percent(ok, reached, 2),
            attempts.saturating_sub(reached),
            s.requests,
            s.uploads_accepted,
        );
    }
    println!();
    let outage_seen = elapsed > outage_start;
    if outage_seen {
        println!(
            "glm outage: {:.1}s → {:.1}s",
            outage_start.as_secs_f64(),
            outage_end.as_secs_f64()
        );
    } else {
        println!(
            "glm outage: none during the run (scheduled at {:.1}s; the run took {:.1}s)",
            outage_start.as_secs_f64(),
            elapsed.as_secs_f64()
        );
    }
    println!("breaker transitions:");
    for t in &transitions {
        println!(
            "  {:>7.3}s  {:<5} {} → {}",
            t.at.as_secs_f64(),
            t.provider,
            t.from,
            t.to
        );
    }
    let closed_after = transitions
        .iter()
        .find(|t| t.provider == "glm" && t.to == "closed" && t.at >= outage_end)
        .map(|t| t.at - outage_end);
    let glm_opened = transitions
        .iter()
        .any(|t| t.provider == "glm" && t.to == "open");
    match closed_after {
        _ if !outage_seen => {}
        Some(d) => println!(
            "glm recovered (breaker closed) {:.2}s after the outage ended",
            d.as_secs_f64()
        ),
        None if !resilience::provider("glm").config().enabled => {
            println!("resilience is off for glm (RESILIENCE_ENABLED=false): no breaker")
        }
        None if !resilience::provider("glm").config().breaker_enabled => {
            println!("glm's breaker is switched off")
        }
        // Before "never opened": a run that ends just after the outage began has not yet
        // failed enough calls to open the breaker.
        None if elapsed < outage_end => println!("the run ended during glm's outage"),
        None if !glm_opened => println!("glm's breaker never opened"),
        None => println!("glm had not recovered by the end of the run"),
    }
    let first_ok = outcomes.first_ok_after_outage_ms.load(Ordering::Relaxed);
    if first_ok != u64::MAX {
        println!(
            "first glm upload after the outage: {:.2}s after it ended",
            first_ok as f64 / 1000.0
        );
    }
    println!(
        "rows recorded: {}; uploads the servers accepted: {}; duplicates the servers saw: {}; files both accepted: {at_both}; uploads not recorded: {}",
        rows.len(),
        accepted.len(),
        kimi_server.stats().duplicates + glm_server.stats().duplicates,
        outcomes.unrecorded.load(Ordering::Relaxed),
    );
    println!(
        "database (kept for inspection; delete it when done): {}",
        db_path.display()
    );
    if rows != accepted {
        eprintln!(
            "MISMATCH: {} rows recorded for uploads no server accepted, {} accepted uploads not recorded",
            rows.difference(&accepted).count(),
            accepted.difference(&rows).count()
        );
        return Ok(std::process::ExitCode::FAILURE);
    }
    // The connection closed: SQLite folds its write-ahead log into the file.
    drop(db);
    let uploaded = outcomes.ok.load(Ordering::Relaxed);

    if uploaded < started {
        eprintln!(
            "{} of {started} files were not uploaded",
            started - uploaded
        );
    }
    let left = outcomes.left_in_progress.load(Ordering::Relaxed);
    if left > 0 {
        eprintln!(
            "{left} of them were still being processed by their provider (it answered 409) \
             when their wait (--max-wait) ended: it may accept them after this run, where no \
             row records them and the check above did not look"
        );
    }
    // Read again: a Ctrl-C during the report counts too.
    let interrupted = *stop.borrow();
    if args.keep_serving && interrupted.is_none() {
        println!("serving {} until Ctrl-C", metrics.metrics_url());
        let _ = stopped.changed().await;
    }
    Ok(std::process::ExitCode::from(match interrupted {
        Some(code) => code,
        None if uploaded < started => 2,
        None => 0,
    }))
}

// The runner's RESILIENCE_*, RETRY_* and CIRCUIT_BREAKER_* variables are removed before the
// tests' `main`: the tests assert on the example's own settings, which a variable would beat.
#[cfg(test)]
#[path = "../tests/hermetic/mod.rs"]
mod hermetic;

#[cfg(test)]
mod tests {
    use super::*;

    /// Two moves logged out of order (as a run printed them) come out in the order they were
    /// made, each provider's moves keeping the places its provider had.
    #[test]
    fn transitions_logged_out_of_order_print_in_move_order() {
        let t = |ms, provider: &str, from: &str, to: &str, generation| Transition {
            at: Duration::from_millis(ms),
            provider: provider.into(),
            from: from.into(),
            to: to.into(),
            generation,
        };
        let seen = vec![
            t(3067, "glm", "closed", "open", 1),
            t(5067, "glm", "open", "half_open", 2),
            t(5070, "kimi", "closed", "open", 1),
            t(7080, "glm", "half_open", "open", 5),
            t(7080, "glm", "open", "half_open", 4),
            t(7081, "kimi", "open", "half_open", 2),
        ];
        let order: Vec<(String, u64)> = in_move_order(seen)
            .into_iter()
            .map(|t| (t.provider, t.generation))
            .collect();
        let want = [
            ("glm", 1),
            ("glm", 2),
            ("kimi", 1),
            ("glm", 4),
            ("glm", 5),
            ("kimi", 2),
        ];
        assert_eq!(order, want.map(|(p, g)| (p.to_owned(), g)));
    }

    #[test]
    fn rust_log_picks_the_lines_and_a_bad_value_is_named() {
        assert!(rust_log(None).unwrap().is_none());
        assert!(rust_log(Some(" ".into())).unwrap().is_none());
        let targets = rust_log(Some("resilience=debug,warn".into()))
            .unwrap()
            .unwrap();
        assert!(targets.would_enable("resilience", &tracing::Level::DEBUG));
        assert!(!targets.would_enable("hyper", &tracing::Level::INFO));
        assert!(targets.would_enable("hyper", &tracing::Level::WARN));
        let err = rust_log(Some("resilience=loud".into())).unwrap_err();
        assert!(
            err.starts_with("RUST_LOG=\"resilience=loud\": expected comma-separated levels"),
            "{err}"
        );
    }

    /// SIGTERM, what a supervisor sends a service to stop it, is a stop request (143), as
    /// Ctrl-C is (130): without a handler the signal ends the process, this test binary with
    /// it. The handlers are in place once `shutdown_signal` has been polled, so each signal
    /// is sent after the waiting task's first poll. In a process of its own (this binary,
    /// run again for this test alone): once installed, Tokio's handlers stay for the
    /// process's life, and a test binary that had run this test ignored SIGTERM and Ctrl-C
    /// from then on (a CI timeout's SIGTERM, a developer's Ctrl-C), as the main job does.
    #[cfg(unix)]
    #[test]
    fn sigterm_and_ctrl_c_are_stop_requests() {
        const CHILD: &str = "UPLOAD_FILES_SIGNAL_TEST_CHILD";
        let name = "tests::sigterm_and_ctrl_c_are_stop_requests";
        if std::env::var_os(CHILD).is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([name, "--exact", "--test-threads=1"])
                .env(CHILD, "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            // With its stderr: where the child says that no stop request came.
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{:?}\n{text}\n{err}", out.status);
            assert!(text.contains("1 passed"), "{text}");
            return;
        }
        // A signal that never arrives must fail the test, not hang the parent waiting for it.
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(60));
            // Not `eprintln!`: a thread spawned in a test writes into the test's captured
            // output (the harness hands its capture on), which the exit throws away.
            use std::io::Write;
            let _ = std::io::stderr().write_all(b"no stop request within 60 s\n");
            // Not `abort()`, which may leave a core file on the CI machine.
            std::process::exit(1);
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for (signal, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
                let waiting = tokio::spawn(shutdown_signal());
                // The spawned task runs before this one resumes (one thread, first in line).
                tokio::task::yield_now().await;
                // To the whole process, as a supervisor sends it; no `kill` program needed.
                // SAFETY: kill(2) with this process's own id and a valid signal number reads
                // and writes no memory of ours.
                let sent = unsafe { libc::kill(libc::getpid(), signal) };
                assert_eq!(sent, 0, "{}", std::io::Error::last_os_error());
                assert_eq!(waiting.await.unwrap().unwrap(), code, "{signal}");
            }
        });
    }

    /// A `FileProvider` named `$name` that posts through an [`HttpProvider`], its calls made
    /// through `#[resilient(provider = $provider)]`, as `Kimi` and `Glm` are.
    /// Where a test's uploads through providers `a` and `b` are counted, and its stop
    /// requests (none unless it sends one).
    struct Counts {
        per_provider: BTreeMap<&'static str, Outcomes>,
        outcomes: Outcomes,
        stop: tokio::sync::watch::Sender<Option<u8>>,
        stopped: tokio::sync::watch::Receiver<Option<u8>>,
    }

    impl Counts {
        fn new() -> Self {
            let (stop, stopped) = tokio::sync::watch::channel(None);
            Counts {
                per_provider: [("a", Outcomes::default()), ("b", Outcomes::default())].into(),
                outcomes: Outcomes::default(),
                stop,
                stopped,
            }
        }

        fn tally(&self, max_wait: Duration) -> Tally<'_> {
            Tally {
                per_provider: &self.per_provider,
                outcomes: &self.outcomes,
                max_wait,
                stop: &self.stopped,
            }
        }
    }

    macro_rules! through {
        ($name:ident, $provider:tt) => {
            struct $name(HttpProvider);
            impl FileProvider for $name {
                #[resilient(provider = $provider)]
                async fn upload_file(
                    &self,
                    key: &str,
                    name: &str,
                    bytes: &[u8],
                ) -> Result<Uploaded, UploadError> {
                    self.0.post(key, name, bytes).await
                }
            }
        };
    }

    /// An [`HttpProvider`] posting to `url` with a client that ignores proxies (the tests'
    /// servers are on loopback).
    fn http(url: String) -> HttpProvider {
        HttpProvider {
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            url,
            stats: AttemptStats::default(),
        }
    }

    fn args(given: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("upload_files").chain(given.iter().copied())).unwrap()
    }

    #[test]
    fn options_are_checked_against_their_ranges() {
        assert_eq!(args(&[]).check(), Ok(()));
        assert_eq!(args(&["--concurrency", "100000"]).check(), Ok(()));
        for bad in ["0", "100001", "4611686018427387904"] {
            let why = args(&["--concurrency", bad]).check().unwrap_err();
            assert_eq!(
                why,
                format!("--concurrency {bad}: expected from 1 to 100000 uploads in flight")
            );
        }
        assert!(args(&["--fault-rate", "2"]).check().is_err());
        assert!(args(&["--rate", "inf"]).check().is_err());
        // The largest seed is valid: the second server's wraps instead of overflowing.
        assert_eq!(args(&["--seed", "18446744073709551615"]).check(), Ok(()));
        assert_eq!(server_seeds(u64::MAX), [u64::MAX, 0]);
    }

    /// A first attempt cut off by its time limit reached the provider: counted as such, so
    /// "final success of calls that reached it" cannot pass 100% (it printed 101.51% with
    /// RETRY_ATTEMPT_TIMEOUT=0.002). Real time: an attempt timeout of 500 ms against a 2 s
    /// answer (a paused clock would also run out during the loopback I/O), with room for the
    /// second attempt's quick answer on a loaded machine.
    #[tokio::test]
    async fn a_first_attempt_cut_off_by_its_time_limit_reached_the_provider() {
        resilience::configure(
            "kimi",
            Settings::new()
                .attempt_timeout(Some(Duration::from_millis(500)))
                .base_delay(Duration::ZERO),
        )
        .unwrap();
        let server = FaultServer::start(Faults::none()).await.unwrap();
        server.script([Fault::Slow(Duration::from_secs(2))]);
        let kimi = Kimi(http(server.upload_url()));
        assert!(kimi.upload_file("k", "f", b"x").await.is_ok());
        let stats = &kimi.0.stats;
        let counts = [
            &stats.first_attempts,
            &stats.first_successes,
            &stats.attempts,
        ]
        .map(|c| c.load(Ordering::Relaxed));
        assert_eq!(
            counts,
            [1, 0, 2],
            "one call reached kimi; its first attempt failed"
        );
    }

    /// A call whose retry the breaker refused (another call opened it during the backoff)
    /// returns `CircuitOpen`, but it reached the provider: the table counts it as failed, as
    /// `resilience_calls_total` does, and only a call refused before any attempt as rejected
    /// (from helper-98's review: it was counted as both reached and rejected).
    #[tokio::test(start_paused = true)]
    async fn a_retry_refused_by_the_breaker_is_a_failure_not_a_rejection() {
        struct Flaky;
        impl FileProvider for Flaky {
            #[resilient(provider = "count-flaky")]
            async fn upload_file(
                &self,
                _: &str,
                _: &str,
                _: &[u8],
            ) -> Result<Uploaded, UploadError> {
                note_reached();
                Err(UploadError::Http(resilience::HttpError::new(503, None)))
            }
        }
        struct Fine;
        impl FileProvider for Fine {
            #[resilient(provider = "count-fine")]
            async fn upload_file(
                &self,
                _: &str,
                _: &str,
                _: &[u8],
            ) -> Result<Uploaded, UploadError> {
                note_reached();
                Ok(Uploaded {
                    file_id: "id".into(),
                })
            }
        }
        resilience::configure(
            "count-flaky",
            Settings::new()
                .failure_threshold(2)
                .base_delay(Duration::from_millis(300))
                .jitter(resilience::Jitter::None),
        )
        .unwrap();
        let counts = Counts::new();
        let tally = counts.tally(Duration::ZERO);
        // The first call fails once and backs off for 300 ms; the second's failure opens the
        // breaker meanwhile, so the first's retry is refused.
        let first = upload_with_failover(("a", &Flaky), ("b", &Fine), "k1", "f1", b"x", &tally);
        let second = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            reaching(Flaky.upload_file("k2", "f2", b"x")).await
        };
        let ((provider, result), (second, reached)) = tokio::join!(first, second);
        assert!(reached && second.is_err(), "the second call failed at kimi");
        assert_eq!((provider, result.is_ok()), ("b", true), "failed over");
        // Refused before any attempt: a rejection.
        let (provider, _) =
            upload_with_failover(("a", &Flaky), ("b", &Fine), "k3", "f3", b"x", &tally).await;
        assert_eq!(provider, "b");
        let a = &counts.per_provider["a"];
        let counts = [&a.ok, &a.failed, &a.rejected].map(|c| c.load(Ordering::Relaxed));
        assert_eq!(counts, [0, 1, 1], "ok, failed, rejected");
    }

    /// A call that ran out of time at one provider fails over to the other (from helper-98's
    /// review: `DeadlineExceeded` is permanent, and the file failed where the other provider
    /// would have taken it).
    #[test]
    fn a_call_out_of_time_fails_over() {
        let out_of_time = Err(UploadError::Resilience(ResilienceError::DeadlineExceeded {
            provider: "kimi",
            deadline: Duration::from_millis(100),
        }));
        assert!(matches!(missed(&out_of_time), Some(Missed::Failed)));
        let permanent = Err(UploadError::Http(resilience::HttpError::new(400, None)));
        assert!(missed(&permanent).is_none());
    }

    /// A loopback server that answers every request with `raw` (written as is, then the
    /// connection closed), counting the requests.
    async fn raw_server(raw: &'static str) -> (String, Arc<AtomicU64>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/upload", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicU64::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let _ = s.read(&mut [0u8; 8192]).await;
                    let _ = s.write_all(raw.as_bytes()).await;
                });
            }
        });
        (url, hits)
    }

    /// "Never record a failed upload as done": an answer that carries no file id is no
    /// upload, whatever its status line says. Each of these came back `Ok` from
    /// `HttpProvider::post`, and the file manager recorded it as uploaded, with the body's
    /// text as the file id: a body cut off where no length was sent (`text()` cannot tell),
    /// an empty 200, a 3xx (`check_status()` passed 1xx–3xx on, as `error_for_status()`
    /// does), and a 200 whose body is an error message (the fault server's scripted 200, which
    /// it counts as a fault and never as an upload).
    #[tokio::test(start_paused = true)]
    async fn an_answer_without_a_file_id_is_not_an_upload() {
        through!(Checked, "answer-check");
        resilience::configure(
            "answer-check",
            Settings::new()
                .base_delay(Duration::ZERO)
                .failure_threshold(1000),
        )
        .unwrap();
        let provider = |url: String| Checked(http(url));
        let mut taken = Vec::new();
        for (raw, what) in [
            (
                "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"id\":\"fi",
                "a body cut off where no length was sent",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                "an empty 200",
            ),
            (
                "HTTP/1.1 300 Multiple Choices\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
                "a 300",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 32\r\nConnection: close\r\n\r\n{\"error\":\"quota exceeded\",\"x\":1}",
                "a 200 with an error and no id",
            ),
        ] {
            let (url, _) = raw_server(raw).await;
            if let Ok(up) = provider(url).upload_file("k", "f", b"x").await {
                taken.push(format!("{what}: file id {:?}", up.file_id));
            }
        }
        // The fault server's scripted 200: a fault, not an upload.
        let server = FaultServer::start(Faults::none()).await.unwrap();
        server.script([Fault::Status(200)]);
        if let Ok(up) = provider(server.upload_url())
            .upload_file("k", "f", b"x")
            .await
        {
            taken.push(format!("the fault server's 200: file id {:?}", up.file_id));
        }
        assert_eq!(server.stats().uploads_accepted, 0);
        assert!(taken.is_empty(), "taken for uploads: {taken:#?}");
        // A real answer still is an upload, its id the server's.
        let r = provider(server.upload_url())
            .upload_file("k2", "f", b"x")
            .await;
        assert_eq!(r.unwrap().file_id, "file-1");
    }

    /// Two servers: `a`, whose provider `a_provider` cuts an attempt off at 1 s and retries
    /// 50 ms later, processes the first upload for 3 s and answers 409 for its key
    /// meanwhile; `b` answers every upload.
    async fn processing_for_3s(a_provider: &str) -> (FaultServer, FaultServer) {
        resilience::configure(
            a_provider,
            Settings::new()
                .base_delay(Duration::from_millis(50))
                .max_delay(Duration::from_secs(1))
                .attempt_timeout(Some(Duration::from_secs(1))),
        )
        .unwrap();
        let (a_server, b_server) = (
            FaultServer::start(Faults::none()).await.unwrap(),
            FaultServer::start(Faults::none()).await.unwrap(),
        );
        a_server.conflict_while_in_progress(true);
        a_server.script([Fault::AcceptedSlow(Duration::from_secs(3))]);
        (a_server, b_server)
    }

    /// A provider still processing a file's upload when the retry comes (the first attempt
    /// cut off by `RETRY_ATTEMPT_TIMEOUT`, the upload going on without the client) answers
    /// the file's key with 409, as the IETF `Idempotency-Key` draft has it: it has the file,
    /// or will. The file must end as uploaded there, once, neither failed (a 409 is permanent
    /// by the status table: it was, and the upload the provider then accepted was never
    /// recorded) nor failed over (a copy at the other provider).
    #[tokio::test(start_paused = true)]
    async fn an_upload_in_progress_is_waited_for_not_failed() {
        through!(A, "in-progress-a");
        through!(B, "in-progress-b");
        let (a_server, b_server) = processing_for_3s("in-progress-a").await;
        let (a, b) = (
            A(http(a_server.upload_url())),
            B(http(b_server.upload_url())),
        );
        let counts = Counts::new();
        let tally = counts.tally(Duration::from_secs(30));
        let (provider, result) =
            upload_with_failover(("a", &a), ("b", &b), "file-key", "f", b"x", &tally).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (at_a, at_b) = (a_server.accepted_keys(), b_server.accepted_keys());
        assert!(
            provider == "a" && result.is_ok(),
            "ended at {provider} with {:?}; accepted at a: {at_a:?}, at b: {at_b:?}",
            result.err()
        );
        assert_eq!((at_a.len(), at_b.len()), (1, 0));
    }

    /// A provider processing the file (409 for its key) whose breaker a person then forces
    /// open is not asked again every second until the file's wait runs out: nothing gets
    /// through it until a reset, so the wait ends with the rejection (the file is left in
    /// progress, not failed over).
    #[tokio::test(start_paused = true)]
    async fn a_wait_for_an_upload_in_progress_ends_when_its_breaker_is_forced_open() {
        through!(A, "in-progress-forced-a");
        through!(B, "in-progress-forced-b");
        let (a_server, b_server) = processing_for_3s("in-progress-forced-a").await;
        let (a, b) = (
            A(http(a_server.upload_url())),
            B(http(b_server.upload_url())),
        );
        let counts = Counts::new();
        let tally = counts.tally(Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        let upload = upload_with_failover(("a", &a), ("b", &b), "forced-key", "f", b"x", &tally);
        // Forced open once `a` has answered the retry with 409 (the first attempt is cut off
        // at 1 s, the retry comes ~50 ms later).
        let force = async {
            a_server.requests_seen(2).await;
            resilience::provider("in-progress-forced-a").force_open();
        };
        let ((provider, result), ()) = tokio::join!(upload, force);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited {:?} for a breaker forced open",
            started.elapsed()
        );
        assert_eq!(provider, "a");
        assert!(
            matches!(
                result,
                Err(UploadError::Resilience(ResilienceError::CircuitOpen {
                    retry_in: None,
                    ..
                }))
            ),
            "{:?}",
            result.err()
        );
        assert_eq!(b_server.stats().requests, 0, "failed over");
    }

    /// Ctrl-C (or SIGTERM) lets the uploads in flight finish and be recorded. A file whose
    /// provider answered 409 for its key is one of them: the provider is processing it and
    /// will have it whatever the gateway does. The stop request ended its wait at once, the
    /// file was counted failed, and the upload the provider accepted a moment later was never
    /// recorded (the check at the end then failed the run with 1 instead of 130).
    #[tokio::test(start_paused = true)]
    async fn a_stop_request_still_waits_for_an_upload_in_progress() {
        through!(A, "in-progress-stop-a");
        through!(B, "in-progress-stop-b");
        let (a_server, b_server) = processing_for_3s("in-progress-stop-a").await;
        let (a, b) = (
            A(http(a_server.upload_url())),
            B(http(b_server.upload_url())),
        );
        let counts = Counts::new();
        let tally = counts.tally(Duration::from_secs(30));
        let upload = upload_with_failover(("a", &a), ("b", &b), "stop-key", "f", b"x", &tally);
        // Ctrl-C while `a` is still processing the file (its upload ends at 3 s), after it
        // answered 409 (the first attempt is cut off at 1 s, the retry comes ~50 ms later).
        // At a set time on the paused clock: a loop polling for the 409 spun for ever, the
        // test hanging instead of failing, had the upload ended without a second request.
        let ctrl_c = async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert!(
                a_server.requests_for("stop-key").len() >= 2,
                "no 409 before the stop request"
            );
            counts.stop.send(Some(130)).unwrap();
        };
        let ((provider, result), ()) = tokio::join!(upload, ctrl_c);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (at_a, at_b) = (a_server.accepted_keys(), b_server.accepted_keys());
        assert_eq!((at_a.len(), at_b.len()), (1, 0), "accepted at a, at b");
        assert!(
            provider == "a" && result.is_ok(),
            "accepted at a, but the file ended at {provider} with {:?}: not recorded",
            result.err()
        );
    }

    /// Providers whose breakers a person forced open give no probe until a reset: the file
    /// ends at once with the rejection, where it was tried again every 100 ms until its wait
    /// (a minute here) ran out.
    #[tokio::test(start_paused = true)]
    async fn a_forced_open_provider_is_not_waited_for() {
        through!(A, "forced-a");
        through!(B, "forced-b");
        let server = FaultServer::start(Faults::none()).await.unwrap();
        let (a, b) = (A(http(server.upload_url())), B(http(server.upload_url())));
        resilience::provider("forced-a").force_open();
        resilience::provider("forced-b").force_open();
        let counts = Counts::new();
        let tally = counts.tally(Duration::from_secs(60));
        let started = tokio::time::Instant::now();
        let (provider, result) =
            upload_with_failover(("a", &a), ("b", &b), "forced-key", "f", b"x", &tally).await;
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "waited for a forced-open breaker"
        );
        assert_eq!(provider, "b");
        assert!(
            matches!(
                result,
                Err(UploadError::Resilience(ResilienceError::CircuitOpen {
                    retry_in: None,
                    ..
                }))
            ),
            "{:?}",
            result.err()
        );
        assert_eq!(server.stats().requests, 0);
    }

    /// A provider that answered 409 for the file's key on one attempt has the file, or will,
    /// whatever a later attempt of the same call gets (a 503 by chance, a rejection by its
    /// breaker): the file must not be failed over. Only the call's last error was looked at,
    /// so a call whose 409 was followed by 503s was failed over, and both providers ended
    /// with the file (a copy, and one of the two uploads not recorded).
    #[tokio::test(start_paused = true)]
    async fn a_409_on_any_attempt_keeps_the_file_at_that_provider() {
        struct Processing(AtomicU64);
        impl FileProvider for Processing {
            #[resilient(provider = "said-409")]
            async fn upload_file(
                &self,
                _: &str,
                _: &str,
                _: &[u8],
            ) -> Result<Uploaded, UploadError> {
                note_reached();
                // Processing it (409), then 503s by chance; done by the next call.
                match self.0.fetch_add(1, Ordering::SeqCst) {
                    0 => {
                        note_in_progress();
                        Err(UploadError::InProgress)
                    }
                    1 | 2 => Err(UploadError::Http(resilience::HttpError::new(503, None))),
                    _ => Ok(Uploaded {
                        file_id: "at-a".into(),
                    }),
                }
            }
        }
        struct Other(AtomicU64);
        impl FileProvider for Other {
            #[resilient(provider = "said-409-other")]
            async fn upload_file(
                &self,
                _: &str,
                _: &str,
                _: &[u8],
            ) -> Result<Uploaded, UploadError> {
                note_reached();
                self.0.fetch_add(1, Ordering::SeqCst);
                Ok(Uploaded {
                    file_id: "copy-at-b".into(),
                })
            }
        }
        resilience::configure(
            "said-409",
            Settings::new()
                .base_delay(Duration::from_millis(50))
                .failure_threshold(1000),
        )
        .unwrap();
        let counts = Counts::new();
        let tally = counts.tally(Duration::from_secs(30));
        let (a, b) = (Processing(AtomicU64::new(0)), Other(AtomicU64::new(0)));
        let (provider, result) =
            upload_with_failover(("a", &a), ("b", &b), "k", "f", b"x", &tally).await;
        assert_eq!(b.0.load(Ordering::SeqCst), 0, "failed over: a copy at b");
        assert_eq!(
            (provider, result.ok().map(|u| u.file_id)),
            ("a", Some("at-a".to_owned()))
        );
        assert_eq!(counts.outcomes.left_in_progress.load(Ordering::Relaxed), 0);
    }

    /// A file whose provider is still processing it (409) when its wait ends is counted as
    /// such, not only as not uploaded: the provider may accept it after the run, where the
    /// end-of-run check, which compares rows with what the servers accepted, no longer looks.
    #[tokio::test(start_paused = true)]
    async fn a_file_left_in_progress_at_its_wait_s_end_is_counted() {
        struct Processing;
        impl FileProvider for Processing {
            #[resilient(provider = "left-409")]
            async fn upload_file(
                &self,
                _: &str,
                _: &str,
                _: &[u8],
            ) -> Result<Uploaded, UploadError> {
                note_reached();
                note_in_progress();
                Err(UploadError::InProgress)
            }
        }
        struct Unused;
        impl FileProvider for Unused {
            #[resilient(provider = "left-409-other")]
            async fn upload_file(
                &self,
                _: &str,
                _: &str,
                _: &[u8],
            ) -> Result<Uploaded, UploadError> {
                unreachable!("failed over from a provider processing the file")
            }
        }
        let counts = Counts::new();
        let tally = counts.tally(Duration::from_secs(3));
        let started = tokio::time::Instant::now();
        let (provider, result) =
            upload_with_failover(("a", &Processing), ("b", &Unused), "k", "f", b"x", &tally).await;
        assert_eq!(provider, "a");
        assert!(matches!(result, Err(UploadError::InProgress)));
        // The last call, started within the wait, makes its own retries (a 409 is throttled).
        assert!(started.elapsed() >= Duration::from_secs(3), "gave up early");
        assert_eq!(counts.outcomes.left_in_progress.load(Ordering::Relaxed), 1);
    }

    /// A stop listener that cannot listen (no signal handler could be installed) stops
    /// nothing: its task ended and dropped the channel's sender, every receiver's `changed()`
    /// then ended at once, and the main loop, which stops at the first `changed()`, started
    /// no upload (exit 2, every file "not uploaded"); the waits of the files ended at once too.
    #[tokio::test(start_paused = true)]
    async fn a_stop_listener_that_cannot_listen_stops_nothing() {
        let mut stop = stop_requests(|| async { Err(std::io::Error::other("no signals here")) });
        let changed = tokio::time::timeout(Duration::from_secs(3600), stop.changed()).await;
        assert!(changed.is_err(), "read as a stop request: {changed:?}");
        assert_eq!(*stop.borrow(), None);
        // A stop request still reads as one, with its code.
        let calls = Arc::new(AtomicU64::new(0));
        let mut stop = stop_requests(move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n > 0 {
                    // The second request would exit the process: none comes here.
                    std::future::pending::<()>().await;
                }
                Ok(143)
            }
        });
        stop.changed().await.unwrap();
        assert_eq!(*stop.borrow(), Some(143));
    }

    #[test]
    fn percentages_round_down() {
        assert_eq!(percent(1999, 2000, 1), "99.9");
        assert_eq!(percent(2000, 2000, 1), "100.0");
        assert_eq!(percent(704, 707, 2), "99.57");
        assert_eq!(percent(0, 0, 1), "0.0");
        assert_eq!(percent(1, 3, 0), "33");
    }

    /// Removes a database file and SQLite's files beside it, however the test ends.
    struct RemoveDb(PathBuf);
    impl Drop for RemoveDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut p = self.0.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// Runs started at once on one new `--db` each set it up: one's switch to WAL or its
    /// `CREATE TABLE` met the other's, and SQLite answered "database is locked" at once, not
    /// after its busy timeout, so one run of two failed at start-up (three of three pairs,
    /// helper-239). Four at once, ten times.
    #[test]
    fn runs_started_at_once_on_a_new_database_all_open_it() {
        for round in 0..10 {
            let path = new_db_path(&format!("at-once-{round}")).unwrap();
            let _remove = RemoveDb(path.clone());
            // Not there yet, as a `--db` of a first run.
            std::fs::remove_file(&path).unwrap();
            let start = std::sync::Barrier::new(4);
            std::thread::scope(|s| {
                let opens: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            open_db(&path).map(drop)
                        })
                    })
                    .collect();
                for open in opens {
                    let opened = open.join().unwrap();
                    assert!(opened.is_ok(), "round {round}: {opened:?}");
                }
            });
        }
    }

    /// A database that opens but cannot take a row is a start-up error (exit 1 before any
    /// upload), as one that cannot be opened is: it was opened, every file was uploaded, and
    /// then every row was refused ("uploaded to kimi but not recorded" a thousand times, and
    /// the check at the end failed), so each upload was accepted and never recorded. SQLite
    /// opens a file it may not write read-only, without an error (a `--db` owned by another
    /// user, or given as `file:…?mode=ro`), and an older table of another shape (a column
    /// the insert does not fill) opens as well.
    #[test]
    fn a_database_that_cannot_take_rows_is_refused_at_start_up() {
        let run = "dbcheck";
        // Read-only: as SQLite opens a file this process may not write, or a URI asking so.
        let ro = new_db_path(run).unwrap();
        let _remove_ro = RemoveDb(ro.clone());
        drop(open_db(&ro).unwrap());
        let uri = PathBuf::from(format!("file:{}?mode=ro", ro.display()));
        assert!(
            open_db(&uri).is_err(),
            "a read-only database was opened for recording"
        );
        // A table of another shape: a column the insert does not fill.
        let other = new_db_path(run).unwrap();
        let _remove_other = RemoveDb(other.clone());
        rusqlite::Connection::open(&other)
            .unwrap()
            .execute_batch(
                "CREATE TABLE uploads (idempotency_key TEXT PRIMARY KEY, provider TEXT NOT NULL, file_name TEXT NOT NULL, file_id TEXT NOT NULL, bytes INTEGER NOT NULL, run TEXT, owner TEXT NOT NULL);",
            )
            .unwrap();
        assert!(
            open_db(&other).is_err(),
            "a table that refuses every row was opened for recording"
        );
        // The probe leaves nothing behind in a database that can record.
        let good = open_db(&other.with_extension("good.db")).unwrap();
        let _remove_good = RemoveDb(other.with_extension("good.db"));
        let rows: i64 = good
            .query_row("SELECT count(*) FROM uploads", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
    }

    /// The trial row's refusal is reported by its own error. One that ended the transaction
    /// (SQLite rolls back on some errors, a disk full; here a trigger's `RAISE(ROLLBACK, …)`)
    /// made the `ROLLBACK` after it fail, and the start-up error read "cannot rollback - no
    /// transaction is active", which names neither the database's problem nor its fix.
    #[test]
    fn a_refused_trial_row_is_reported_by_its_own_error() {
        let path = new_db_path("dbcheck-trigger").unwrap();
        let _remove = RemoveDb(path.clone());
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE uploads (idempotency_key TEXT PRIMARY KEY, provider TEXT NOT NULL, file_name TEXT NOT NULL, file_id TEXT NOT NULL, bytes INTEGER NOT NULL, run TEXT);
                 CREATE TRIGGER no_rows BEFORE INSERT ON uploads
                 BEGIN SELECT RAISE(ROLLBACK, 'uploads are archived here'); END;",
            )
            .unwrap();
        let Err(e) = open_db(&path) else {
            panic!("a table that refuses every row was opened for recording");
        };
        assert!(
            e.to_string().contains("uploads are archived here"),
            "reported as: {e}"
        );
    }

    /// The 409 that keeps a file at its provider is noted by the provider's own attempt
    /// (`HttpProvider::post`), in the call's task-local: the other tests' providers note it
    /// themselves, or end their call with `InProgress` anyway.
    #[tokio::test(start_paused = true)]
    async fn a_409_is_noted_by_the_http_provider() {
        through!(A, "noted-409");
        resilience::configure(
            "noted-409",
            Settings::new()
                .max_attempts(2)
                .base_delay(Duration::from_millis(50))
                .attempt_timeout(Some(Duration::from_secs(1))),
        )
        .unwrap();
        let server = FaultServer::start(Faults::none()).await.unwrap();
        server.conflict_while_in_progress(true);
        // Cut off by the attempt timeout, and processed for long after: the retry gets 409.
        server.script([Fault::AcceptedSlow(Duration::from_secs(60))]);
        let a = A(http(server.upload_url()));
        let ((result, reached), said_409) = calling(a.upload_file("noted", "f", b"x")).await;
        assert!(matches!(result, Err(UploadError::InProgress)) && reached);
        assert_eq!(server.requests_for("noted").len(), 2);
        assert!(said_409, "the 409 went unnoted");
    }

    #[test]
    fn a_run_counts_its_own_rows_in_a_database_of_its_own() {
        let (run_a, run_b) = ("1-a", "1-b");
        /// Removes the files, and SQLite's beside them, however the test ends.
        struct Remove(Vec<PathBuf>);
        impl Drop for Remove {
            fn drop(&mut self) {
                for path in &self.0 {
                    for suffix in ["", "-wal", "-shm"] {
                        let mut p = path.clone().into_os_string();
                        p.push(suffix);
                        let _ = std::fs::remove_file(p);
                    }
                }
            }
        }
        let (a, b) = (new_db_path(run_a).unwrap(), new_db_path(run_a).unwrap());
        let _remove = Remove(vec![a.clone(), b.clone()]);
        assert_ne!(a, b, "a taken name is never reused");
        let insert = |db: &rusqlite::Connection, key: &str, run: &str| {
            db.execute(
                "INSERT INTO uploads (idempotency_key, provider, file_name, file_id, bytes, run) VALUES (?1, 'kimi', 'f', 'id', 1, ?2)",
                [key, run],
            )
            .unwrap();
        };
        // A database from before runs were recorded: opened, it gets the column.
        let old = rusqlite::Connection::open(&a).unwrap();
        old.execute_batch(
            "CREATE TABLE uploads (idempotency_key TEXT PRIMARY KEY, provider TEXT NOT NULL, file_name TEXT NOT NULL, file_id TEXT NOT NULL, bytes INTEGER NOT NULL);
             INSERT INTO uploads VALUES ('k0', 'kimi', 'f', 'id', 1);",
        )
        .unwrap();
        drop(old);
        let kimi = |key: &str| ("kimi".to_owned(), key.to_owned());
        // Two runs on one database, at once: each counts its own rows.
        let (db_a, db_b) = (open_db(&a).unwrap(), open_db(&a).unwrap());
        insert(&db_a, "k1", run_a);
        insert(&db_b, "k2", run_b);
        insert(&db_a, "k3", run_a);
        assert_eq!(
            (
                run_keys(&db_a, run_a).unwrap(),
                run_keys(&db_b, run_b).unwrap()
            ),
            ([kimi("k1"), kimi("k3")].into(), [kimi("k2")].into())
        );
        drop((db_a, db_b));
    }
}
