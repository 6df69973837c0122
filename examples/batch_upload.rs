//! A cron batch job: upload every file of a directory to provider `kimi`, failing over to
//! `glm`, then exit 0 when all went up, 2 when some did not (each named, with why), 1 on a
//! start-up error (a bad option or `RESILIENCE_*` / `RETRY_*` / `CIRCUIT_BREAKER_*` variable).
//!
//! A short-lived command-line tool, not a server: a `current_thread` runtime, no metrics
//! server, options from `BATCH_*` variables (clap's `env`), a manifest of what went up
//! (`.uploaded` in the directory: a file listed there is skipped by the next run, and a file
//! is listed only once a provider answered with its id).
//!
//! Without `BATCH_DIR` and the URLs it runs a demo against two fault servers of
//! `resilience-testkit` on 127.0.0.1, on 200 made-up files in a temporary directory
//! (`BATCH_DEMO`, or `--demo`):
//!
//! ```sh
//! cargo run --example batch_upload -- --demo healthy          # 5% transient faults: exit 0
//! cargo run --example batch_upload -- --demo primary-down     # kimi refuses all: glm takes all
//! cargo run --example batch_upload -- --demo both-down        # exit 2, files named, within BATCH_MAX_WAIT (30 s)
//! cargo run --example batch_upload -- --demo both-return      # both back after 2 s
//! cargo run --example batch_upload -- --demo throttled        # 429 with Retry-After: 1
//! cargo run --example batch_upload -- --demo interrupt        # a stop asked 1.5 s in: drain()
//! RUST_LOG=resilience=debug cargo run --example batch_upload -- --demo primary-down
//! ```
//!
//! Ctrl-C (or SIGTERM, as cron's `timeout` sends) stops starting files, calls
//! `resilience::drain()` so that calls asleep in a backoff end now, lets the attempts in
//! flight finish (each within its attempt timeout, a minute by default), records what went
//! up, lists the rest, and exits 130 (143 for SIGTERM). A second signal exits at once, with
//! no list (the manifest has what went up).

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use resilience::{
    CircuitState, Classify, ErrorClass, HttpError, ResilienceError, ResponseExt, resilient,
};
use resilience_testkit::{Fault, FaultServer, Faults, Outage};
use tokio::sync::{Semaphore, watch};

/// Options: each from its flag or its `BATCH_*` variable.
#[derive(Debug, Parser)]
#[command(about = "Upload a directory to kimi, failing over to glm")]
struct Opts {
    /// The directory whose files are uploaded (not recursive; dot files are skipped).
    #[arg(long, env = "BATCH_DIR", requires_all = ["kimi_url", "glm_url"])]
    dir: Option<PathBuf>,
    /// Upload URL of the primary provider.
    #[arg(long, env = "BATCH_KIMI_URL", value_parser = http_url)]
    kimi_url: Option<String>,
    /// Upload URL of the fallback provider.
    #[arg(long, env = "BATCH_GLM_URL", value_parser = http_url)]
    glm_url: Option<String>,
    /// Uploads in flight at once.
    #[arg(long, env = "BATCH_CONCURRENCY", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    concurrency: u32,
    /// Seconds into the run until which a file that no provider took waits for a breaker's
    /// probe (a provider coming back); after it, such files fail at once.
    #[arg(long, env = "BATCH_MAX_WAIT", default_value_t = 30.0,
          value_parser = seconds)]
    max_wait: f64,
    /// Run against two local fault servers on 127.0.0.1 instead of `--dir` and the URLs.
    #[arg(long, env = "BATCH_DEMO", value_enum, conflicts_with = "dir")]
    demo: Option<Demo>,
}

/// An `http` or `https` URL: a bad one is a start-up error (exit 1), not every file failed
/// (exit 2). (clap's message quotes the value, on stderr: only a malformed one.)
fn http_url(s: &str) -> Result<String, String> {
    match reqwest::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(s.to_owned()),
        _ => Err("expected an http:// or https:// URL".to_owned()),
    }
}

/// A number of seconds from 0 to a day.
fn seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!("expected seconds from 0 to 86400, got {s:?}")),
    }
}

/// The demo's scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Demo {
    /// Both providers up, 5% transient faults.
    Healthy,
    /// `kimi` refuses connections for the whole run.
    PrimaryDown,
    /// Both refuse connections for the whole run.
    BothDown,
    /// Both refuse connections for the first 2 seconds, then come back (uploads paced at 50/s).
    BothReturn,
    /// `kimi` answers one request in five with 429 and `Retry-After: 1`.
    Throttled,
    /// Both answer 429 with `Retry-After: 3` to everything; a stop is asked 1.5 s in, as
    /// Ctrl-C would, while every call sleeps in its backoff.
    Interrupt,
}

/// An upload's error: its class says what is retried, and whether the file fails over.
#[derive(Debug, thiserror::Error, Classify)]
enum UploadError {
    /// The file could not be read: no provider will do better.
    #[error("cannot read the file: {0}")]
    #[classify(permanent)]
    Read(#[source] std::io::Error),
    #[error(transparent)]
    #[classify(transparent)]
    Network(#[from] reqwest::Error),
    #[error(transparent)]
    #[classify(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    #[classify(transparent)]
    Resilience(#[from] ResilienceError),
    #[error("the provider answered without a file id")]
    #[classify(permanent)]
    NoId,
}

/// The two providers' clients.
struct Uploader {
    client: reqwest::Client,
    kimi_url: String,
    glm_url: String,
}

impl Uploader {
    // `#[instrument]` below `#[resilient]`: one span around the whole call, so every `[RETRY]`
    // line names the file (the lines' `idempotency_key` is the call's own, not the file's).
    #[resilient(provider = "kimi", name = "upload")]
    #[tracing::instrument(name = "kimi", skip_all, fields(file = %path.display()))]
    async fn upload_kimi(&self, path: &Path, key: &str) -> Result<String, UploadError> {
        self.post(&self.kimi_url, path, key).await
    }

    #[resilient(provider = "glm", name = "upload")]
    #[tracing::instrument(name = "glm", skip_all, fields(file = %path.display()))]
    async fn upload_glm(&self, path: &Path, key: &str) -> Result<String, UploadError> {
        self.post(&self.glm_url, path, key).await
    }

    /// One attempt: the file is read again for each (it is small; a stream would do too).
    async fn post(&self, url: &str, path: &Path, key: &str) -> Result<String, UploadError> {
        let body = std::fs::read(path).map_err(UploadError::Read)?;
        let resp = self
            .client
            .post(url)
            // One key per file, on every attempt of both providers and of the next run.
            .header("Idempotency-Key", key)
            .body(body)
            .send()
            .await?
            .check_status()?;
        if !resp.status().is_success() {
            return Err(UploadError::NoId);
        }
        let body: serde_json::Value = resp.json().await?;
        body["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or(UploadError::NoId)
    }

    /// `kimi` first, `glm` when `kimi` cannot take the file now; when neither took it and a
    /// breaker refused it, the file waits for that breaker's probe and goes round again, until
    /// the run's `give_up_at` (so a run with both providers down ends by then).
    async fn upload(
        &self,
        path: &Path,
        key: &str,
        give_up_at: tokio::time::Instant,
    ) -> Result<(&'static str, String), Failure> {
        loop {
            let first = match self.upload_kimi(path, key).await {
                Ok(id) => return Ok(("kimi", id)),
                Err(e) => e,
            };
            if !fail_over(&first) {
                return Err(Failure::new(format!("kimi: {}", text(&first))));
            }
            let second = match self.upload_glm(path, key).await {
                Ok(id) => return Ok(("glm", id)),
                Err(e) => e,
            };
            let why = format!("kimi: {}; glm: {}", text(&first), text(&second));
            if !fail_over(&second) {
                return Err(Failure::new(why));
            }
            // A breaker refused it: wait for the sooner probe, if it comes in time.
            let probe = match (retry_in(&first), retry_in(&second)) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => return Err(Failure::new(why)),
            };
            let at = tokio::time::Instant::now() + probe.max(Duration::from_millis(1));
            if at > give_up_at || resilience::is_draining() {
                return Err(Failure::new(why));
            }
            // drain() ends the library's backoffs, not this wait of ours: `draining()` does.
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = resilience::draining() => return Err(Failure::new(why)),
            }
        }
    }
}

/// When the breaker that refused this call lets a probe through: `None` when it did not refuse
/// it, or when a person forced it open (no probe comes until they reset it: waiting for one
/// would try again until the run's wait ran out); a tenth of a second when it is half-open
/// (its probes answer at no time it knows: a pause, not a spin of one try a millisecond).
fn retry_in(e: &UploadError) -> Option<Duration> {
    match e {
        UploadError::Resilience(ResilienceError::CircuitOpen {
            provider,
            retry_in: None,
        }) if resilience::provider(provider).state() == CircuitState::ForcedOpen => None,
        UploadError::Resilience(ResilienceError::CircuitOpen { retry_in, .. }) => {
            Some(retry_in.unwrap_or(HALF_OPEN_PAUSE))
        }
        _ => None,
    }
}

/// How long a file waits for a half-open breaker whose probes are out before asking again.
const HALF_OPEN_PAUSE: Duration = Duration::from_millis(100);

/// Why a file was not uploaded.
#[derive(Debug)]
struct Failure {
    why: String,
    /// The run was being stopped (`drain()`): not retried, or not failed over, for that.
    interrupted: bool,
}

impl Failure {
    fn new(why: String) -> Self {
        Failure {
            why,
            interrupted: resilience::is_draining(),
        }
    }
}

/// An error's text with its causes (reqwest's own says only "error sending request"),
/// redacted: reqwest's text holds the request's URL whole, user-info and query included (a
/// `BATCH_*_URL` with a key in it), and this text goes to stdout, which cron mails.
fn text(e: &UploadError) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    resilience::redact(&s)
}

/// Whether the other provider may take a file this one did not: not after a drain (the run is
/// stopping), nor for a permanent error about the file (a 400, a file that cannot be read);
/// yes after an open breaker, a deadline, or retries used up on transient or throttled errors.
fn fail_over(e: &UploadError) -> bool {
    if resilience::is_draining() {
        return false;
    }
    match e.classify() {
        ErrorClass::Transient | ErrorClass::Throttled { .. } => true,
        ErrorClass::Permanent => matches!(
            e,
            UploadError::Resilience(
                ResilienceError::CircuitOpen { .. } | ResilienceError::DeadlineExceeded { .. }
            )
        ),
    }
}

/// The manifest of files uploaded, one `name<TAB>provider<TAB>id` line each, appended (and
/// flushed) as each upload succeeds, so that a run killed halfway keeps what it did.
const MANIFEST: &str = ".uploaded";

fn read_manifest(dir: &Path) -> anyhow::Result<HashSet<String>> {
    match std::fs::read_to_string(dir.join(MANIFEST)) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| l.split('\t').next())
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(e).context("reading the manifest"),
    }
}

/// The files to upload, by name, less those the manifest lists.
fn pending(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let done = read_manifest(dir)?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.file_type()?.is_file() || done.contains(&name) {
            continue;
        }
        files.push(entry.path());
    }
    files.sort();
    Ok(files)
}

/// The idempotency key of a file: its name, length and a hash of its contents, so a rerun that
/// sends it again after a lost answer is recognised by a provider that de-duplicates, and a
/// file of the same name and length but other contents (another day's `export.csv`, in
/// another directory or rewritten) is not taken for it: a provider would answer that with the
/// old upload's id, and the new contents would be listed as uploaded without ever going up.
fn key_of(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    // FNV-1a, 64 bits: stable across builds and Rust versions (std's hasher is not promised
    // to be), so the next run's key is this run's.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    Ok(format!("batch-{name}-{}-{hash:016x}", bytes.len()))
}

/// What a run did.
#[derive(Debug, Default)]
struct Report {
    uploaded: Vec<(String, &'static str)>,
    failed: Vec<(String, String)>,
    interrupted: Vec<(String, String)>,
    not_started: Vec<String>,
}

/// Uploads `files` with `concurrency` in flight; a stop (`true` on `stop`) starts no more.
async fn run(
    uploader: Arc<Uploader>,
    dir: &Path,
    files: Vec<PathBuf>,
    concurrency: u32,
    max_wait: Duration,
    pace: Option<Duration>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Report> {
    let mut manifest = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(MANIFEST))
        .context("opening the manifest")?;
    let permits = Arc::new(Semaphore::new(concurrency as usize));
    let mut tasks = tokio::task::JoinSet::new();
    let mut report = Report::default();
    let give_up_at = tokio::time::Instant::now() + max_wait;
    let mut files = files.into_iter();
    let name_of = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    // Each task's file, so that a task that panicked is still reported by name.
    let mut in_flight = std::collections::HashMap::new();
    for path in files.by_ref() {
        let permit = tokio::select! {
            biased;
            () = stopped(&mut stop) => {
                report.not_started.push(name_of(&path));
                break;
            }
            p = permits.clone().acquire_owned() => p?,
        };
        // The manifest lists a name per line, its fields split by tabs: a name with either
        // would be read back as another file's (`a\nb` lists `a` and `b` as uploaded).
        if name_of(&path).contains(['\t', '\n', '\r']) {
            let why = "its name holds a tab or a line break, which the manifest cannot list";
            report.failed.push((name_of(&path), why.to_owned()));
            continue;
        }
        // A file gone or unreadable since it was listed fails alone: the others go on, and
        // the uploads in flight are still recorded (an error here once ended the run, the
        // tasks dropped mid-upload, and their files missing from the manifest and the report).
        let key = match key_of(&path) {
            Ok(key) => key,
            Err(e) => {
                let why = format!("cannot read the file: {e}");
                report.failed.push((name_of(&path), why));
                continue;
            }
        };
        let up = uploader.clone();
        let name = name_of(&path);
        let task = tasks.spawn(async move {
            let result = up.upload(&path, &key, give_up_at).await;
            drop(permit);
            (path, result)
        });
        in_flight.insert(task.id(), name);
        if let Some(pace) = pace {
            tokio::time::sleep(pace).await;
        }
        // Record what has finished as it finishes, so a kill loses as little as possible.
        while let Some(done) = tasks.try_join_next_with_id() {
            record(done, &mut in_flight, &mut manifest, &mut report, &name_of)?;
        }
    }
    report.not_started.extend(files.map(|p| name_of(&p)));
    while let Some(done) = tasks.join_next_with_id().await {
        record(done, &mut in_flight, &mut manifest, &mut report, &name_of)?;
    }
    Ok(report)
}

/// Ends when a stop is asked; never when none can be any more (its sender gone: a `signal()`
/// that failed), which is no stop (`wait_for`'s error would read as one, and every file not
/// started would be reported so, with exit 0).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

type Done = (PathBuf, Result<(&'static str, String), Failure>);

fn record(
    done: Result<(tokio::task::Id, Done), tokio::task::JoinError>,
    in_flight: &mut std::collections::HashMap<tokio::task::Id, String>,
    manifest: &mut std::fs::File,
    report: &mut Report,
    name_of: &impl Fn(&Path) -> String,
) -> anyhow::Result<()> {
    let (path, result) = match done {
        Ok((id, done)) => {
            in_flight.remove(&id);
            done
        }
        // A panic in one upload fails its file, not the run (whose other files' outcomes
        // would be lost with it).
        Err(e) => {
            let name = in_flight.remove(&e.id()).unwrap_or_default();
            report
                .failed
                .push((name, format!("the upload task failed: {e}")));
            return Ok(());
        }
    };
    let name = name_of(&path);
    match result {
        Ok((provider, id)) => {
            // One write of the whole line: a process killed mid-line (SIGKILL after
            // `timeout -k`) leaves no half line for the next run's to be glued to.
            let line = format!("{name}\t{provider}\t{id}\n");
            manifest
                .write_all(line.as_bytes())
                .context("writing the manifest")?;
            manifest.flush()?;
            report.uploaded.push((name, provider));
        }
        Err(f) if f.interrupted => report.interrupted.push((name, f.why)),
        Err(f) => report.failed.push((name, f.why)),
    }
    Ok(())
}

/// The log filter: `RUST_LOG` (targets and levels) when set, else warnings and errors only.
fn log_filter() -> anyhow::Result<tracing_subscriber::filter::Targets> {
    match std::env::var("RUST_LOG") {
        Ok(v) => v.parse().map_err(|e| {
            anyhow::anyhow!(
                "RUST_LOG={v:?}: {e} (expected targets and levels, e.g. resilience=debug)"
            )
        }),
        Err(std::env::VarError::NotPresent) => Ok("warn".parse()?),
        Err(e) => bail!("RUST_LOG: {e}"),
    }
}

/// Ends with the exit code of the first stop asked: 130 for Ctrl-C, 143 for SIGTERM.
async fn signal() -> std::io::Result<i32> {
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

/// The providers' settings (the variables still win): a cron job is short, so a breaker
/// probes after 5 s, not a minute; and an attempt that hangs (a provider that took the
/// connection and never answers) is cut off after a minute and counted as a failure. Without
/// an attempt timeout nothing ends such an attempt: not the run's `BATCH_MAX_WAIT`, not
/// `drain()` (which lets an attempt in flight finish), so the job hung until a second Ctrl-C,
/// which exits with no report.
fn defaults() -> resilience::Settings {
    resilience::Settings::new()
        .breaker_timeout(Duration::from_secs(5))
        .attempt_timeout(Some(Duration::from_secs(60)))
}

/// The demo's two servers and files.
struct DemoSetup {
    _kimi: Arc<FaultServer>,
    _glm: Arc<FaultServer>,
    dir: PathBuf,
}

impl Drop for DemoSetup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn demo(scenario: Demo, files: usize) -> anyhow::Result<(DemoSetup, String, String)> {
    let quiet = Faults {
        no_consecutive: true,
        ..Faults::transient(0.05, 7)
    };
    let kimi = Arc::new(FaultServer::start(quiet.clone()).await?);
    let glm = Arc::new(FaultServer::start(Faults { seed: 8, ..quiet }).await?);
    match scenario {
        Demo::Healthy => {}
        Demo::PrimaryDown => kimi.outage(Outage::Refuse),
        Demo::BothDown => {
            kimi.outage(Outage::Refuse);
            glm.outage(Outage::Refuse);
        }
        Demo::BothReturn => {
            kimi.outage(Outage::Refuse);
            glm.outage(Outage::Refuse);
            kimi.schedule_outage(Duration::from_secs(2), Duration::ZERO, Outage::Refuse);
            glm.schedule_outage(Duration::from_secs(2), Duration::ZERO, Outage::Refuse);
        }
        Demo::Throttled => kimi.set_faults(Faults {
            rate_429: 0.2,
            retry_after_secs: 1,
            ..Faults::none()
        }),
        Demo::Interrupt => {
            let throttled = Outage::Every(Fault::TooManyRequests {
                retry_after_secs: 3,
            });
            kimi.outage(throttled);
            glm.outage(throttled);
        }
    }
    let dir = std::env::temp_dir().join(format!("batch-upload-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for i in 0..files {
        std::fs::write(
            dir.join(format!("file-{i:03}.txt")),
            format!("contents of file {i}\n"),
        )?;
    }
    let (k, g) = (kimi.upload_url(), glm.upload_url());
    Ok((
        DemoSetup {
            _kimi: kimi,
            _glm: glm,
            dir,
        },
        k,
        g,
    ))
}

/// Prints the report to stdout, the files not uploaded named; returns the exit code.
fn summarize(report: &Report, elapsed: Duration, stopped: Option<i32>) -> i32 {
    let by = |p: &str| report.uploaded.iter().filter(|(_, q)| *q == p).count();
    println!(
        "{} uploaded ({} to kimi, {} to glm), {} failed, {} interrupted, {} not started, in {:.1}s",
        report.uploaded.len(),
        by("kimi"),
        by("glm"),
        report.failed.len(),
        report.interrupted.len(),
        report.not_started.len(),
        elapsed.as_secs_f64()
    );
    for (name, why) in &report.failed {
        println!("NOT UPLOADED {name}: {why}");
    }
    for (name, why) in &report.interrupted {
        println!("NOT UPLOADED {name} (interrupted): {why}");
    }
    for name in &report.not_started {
        println!("NOT UPLOADED {name} (not started: the run was stopped)");
    }
    match stopped {
        Some(code) => code,
        None if report.failed.is_empty() => 0,
        None => 2,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match real_main().await {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("batch_upload: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn real_main() -> anyhow::Result<i32> {
    // Not `Opts::parse()`: clap exits 2 on a bad option, which here means "files not uploaded".
    let opts = match Opts::try_parse() {
        Ok(opts) => opts,
        Err(e) if !e.use_stderr() => {
            e.print()?; // --help, --version
            return Ok(0);
        }
        Err(e) => bail!(
            "{}",
            e.render()
                .to_string()
                .trim_end()
                .trim_start_matches("error: ")
        ),
    };
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .with(log_filter()?);
        tracing::subscriber::set_global_default(subscriber)?;
    }
    resilience::Builder::new().defaults(defaults()).init()?;

    let (demo_setup, dir, kimi_url, glm_url) = match (opts.demo, opts.dir) {
        (Some(scenario), _) => {
            let (setup, k, g) = demo(scenario, 200).await?;
            let dir = setup.dir.clone();
            (Some(setup), dir, k, g)
        }
        (None, Some(dir)) => (
            None,
            dir,
            opts.kimi_url.unwrap_or_default(),
            opts.glm_url.unwrap_or_default(),
        ),
        (None, None) => bail!("give BATCH_DIR, BATCH_KIMI_URL and BATCH_GLM_URL, or BATCH_DEMO"),
    };
    let uploader = Arc::new(Uploader {
        client: reqwest::Client::builder().no_proxy().build()?,
        kimi_url,
        glm_url,
    });

    let files = pending(&dir)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_code = Arc::new(std::sync::Mutex::new(None));
    {
        let code = stop_code.clone();
        let demo_stop = opts.demo == Some(Demo::Interrupt);
        // `process::exit` runs no destructor: the demo's directory is removed here.
        let demo_dir = demo_setup.as_ref().map(|d| d.dir.clone());
        tokio::spawn(async move {
            let first = if demo_stop {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                130
            } else {
                match signal().await {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("batch_upload: cannot listen for Ctrl-C or SIGTERM: {e}");
                        return;
                    }
                }
            };
            *code.lock().unwrap() = Some(first);
            eprintln!(
                "batch_upload: stopping: no new uploads, the ones in flight end without retrying"
            );
            resilience::drain();
            let _ = stop_tx.send(true);
            if let Ok(c) = signal().await {
                if let Some(dir) = demo_dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
                std::process::exit(c);
            }
        });
    }
    let started = Instant::now();
    let pace = (opts.demo == Some(Demo::BothReturn)).then(|| Duration::from_millis(20));
    let max_wait = Duration::from_secs_f64(opts.max_wait);
    let report = run(
        uploader,
        &dir,
        files,
        opts.concurrency,
        max_wait,
        pace,
        stop_rx,
    )
    .await?;
    let stopped = *stop_code.lock().unwrap();
    Ok(summarize(&report, started.elapsed(), stopped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(files: &[PathBuf]) -> Vec<String> {
        files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    /// A directory of `n` files of its own, removed on drop.
    fn made(tag: &str, n: usize) -> DemoDir {
        let dir =
            std::env::temp_dir().join(format!("batch-upload-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..n {
            std::fs::write(dir.join(format!("f{i:02}")), format!("{i}")).unwrap();
        }
        DemoDir(dir)
    }

    struct DemoDir(PathBuf);

    impl Drop for DemoDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_manifest_and_dot_files_are_skipped() {
        let dir = made("pending", 3);
        std::fs::write(dir.0.join(".hidden"), "x").unwrap();
        std::fs::write(dir.0.join(MANIFEST), "f01\tglm\tfile-9\n").unwrap();
        assert_eq!(names(&pending(&dir.0).unwrap()), ["f00", "f02"]);
    }

    /// One test for the runs: providers `kimi` and `glm` are the process's, and `drain()` is
    /// one-way, so the scenarios run in order, the drain last.
    #[tokio::test(flavor = "current_thread")]
    async fn failover_fail_fast_and_interrupt() {
        let kimi = FaultServer::start(Faults::none()).await.unwrap();
        let glm = FaultServer::start(Faults::none()).await.unwrap();
        let uploader = Arc::new(Uploader {
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            kimi_url: kimi.upload_url(),
            glm_url: glm.upload_url(),
        });
        let (_stop_tx, stop) = watch::channel(false);
        let wait = Duration::from_secs(1);

        // Both up, and a stop that can never come (its sender gone, as when `signal()` fails):
        // no stop. A file gone since it was listed, and one whose name the manifest cannot
        // hold, fail alone; the others go up.
        let dir = made("healthy", 6);
        std::fs::write(dir.0.join("tab\tname"), "x").unwrap();
        let files = pending(&dir.0).unwrap();
        assert_eq!(files.len(), 7);
        std::fs::remove_file(dir.0.join("f00")).unwrap();
        let (gone, no_stop) = watch::channel(false);
        drop(gone);
        let report = run(uploader.clone(), &dir.0, files, 4, wait, None, no_stop)
            .await
            .expect("a file that cannot be read fails alone, not the run");
        assert!(
            report.not_started.is_empty(),
            "no stop was asked: {report:?}"
        );
        assert_eq!(report.uploaded.len(), 5, "{report:?}");
        let mut failed: Vec<&str> = report.failed.iter().map(|(n, _)| n.as_str()).collect();
        failed.sort_unstable();
        assert_eq!(failed, ["f00", "tab\tname"], "{report:?}");
        assert_eq!(read_manifest(&dir.0).unwrap().len(), 5);
        assert_eq!(summarize(&report, Duration::ZERO, None), 2);

        // kimi down for the whole run: glm takes every file, and the manifest lists them all.
        kimi.outage(Outage::Refuse);
        let dir = made("failover", 12);
        let files = pending(&dir.0).unwrap();
        let report = run(uploader.clone(), &dir.0, files, 4, wait, None, stop.clone())
            .await
            .unwrap();
        assert_eq!(report.uploaded.len(), 12, "{report:?}");
        assert!(report.uploaded.iter().all(|(_, p)| *p == "glm"));
        assert_eq!(summarize(&report, Duration::ZERO, None), 0);
        assert_eq!(read_manifest(&dir.0).unwrap().len(), 12);
        assert!(
            pending(&dir.0).unwrap().is_empty(),
            "a second run uploads nothing"
        );

        // Both down: every file named, exit 2, nothing listed as uploaded.
        glm.outage(Outage::Refuse);
        let dir = made("both-down", 12);
        let files = pending(&dir.0).unwrap();
        let report = run(uploader.clone(), &dir.0, files, 4, wait, None, stop.clone())
            .await
            .unwrap();
        assert_eq!(report.failed.len(), 12, "{report:?}");
        assert_eq!(summarize(&report, Duration::ZERO, None), 2);
        assert!(read_manifest(&dir.0).unwrap().is_empty());

        // Both forced open by hand: no probe comes until a reset, so the files fail at once,
        // saying why, where the run waited for one (a try every millisecond) until its wait,
        // an hour here, ran out.
        for p in ["kimi", "glm"] {
            resilience::provider(p).force_open();
        }
        let dir = made("forced", 3);
        let files = pending(&dir.0).unwrap();
        let hour = Duration::from_secs(3600);
        let report = tokio::time::timeout(
            Duration::from_secs(60),
            run(uploader.clone(), &dir.0, files, 4, hour, None, stop.clone()),
        )
        .await
        .expect("a forced-open breaker is not waited for")
        .unwrap();
        assert_eq!(report.failed.len(), 3, "{report:?}");
        assert!(
            report
                .failed
                .iter()
                .all(|(_, why)| why.contains("forced open")),
            "{report:?}"
        );

        // Every answer a 429 with Retry-After: 3; the stop comes while every call sleeps in
        // its backoff: drain() ends them now, and none is recorded as uploaded.
        for p in ["kimi", "glm"] {
            resilience::provider(p).reset();
        }
        let throttled = Outage::Every(Fault::TooManyRequests {
            retry_after_secs: 3,
        });
        kimi.outage(throttled);
        glm.outage(throttled);
        let dir = made("interrupt", 6);
        let files = pending(&dir.0).unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let (kimi, glm) = (Arc::new(kimi), Arc::new(glm));
        let before = (kimi.stats().requests, glm.stats().requests);
        let seen = kimi.clone();
        tokio::spawn(async move {
            // The stop once kimi has answered the four first attempts in flight with 429.
            seen.requests_seen(before.0 + 4).await;
            resilience::drain();
            let _ = stop_tx.send(true);
        });
        let report = run(uploader, &dir.0, files, 4, wait, None, stop)
            .await
            .unwrap();
        // No retry after the stop (the backoffs would have ended after Retry-After's 3 s and
        // tried again), and no failover.
        assert_eq!(kimi.stats().requests, before.0 + 4);
        assert_eq!(glm.stats().requests, before.1);
        assert!(
            report.uploaded.is_empty() && report.failed.is_empty(),
            "{report:?}"
        );
        assert_eq!(report.interrupted.len(), 4, "{report:?}");
        assert_eq!(report.not_started.len(), 2, "{report:?}");
        assert!(read_manifest(&dir.0).unwrap().is_empty());
    }

    /// The report's texts go to stdout (cron mails it): reqwest's error text holds the URL
    /// whole, and a `BATCH_*_URL` may hold a key or a password.
    #[tokio::test(flavor = "current_thread")]
    async fn a_url_s_secrets_are_not_in_the_report() {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let e = client
            .post("http://batch:hunter2-pass@127.0.0.1:1/upload?api_key=sk-live-4f9a8b7c6d5e")
            .send()
            .await
            .expect_err("nothing listens on port 1");
        let t = text(&UploadError::Network(e));
        assert!(t.contains("127.0.0.1"), "{t}");
        assert!(
            !t.contains("hunter2-pass") && !t.contains("4f9a8b7c6d5e"),
            "{t}"
        );
    }

    /// A file of the same name and length as one uploaded before, with other contents (another
    /// day's export, rewritten), is a new upload: with the old key, a provider that
    /// de-duplicates answers with the old upload's id, and the new contents are listed as up.
    #[test]
    fn other_contents_have_another_key() {
        let (a, b) = (made("key-a", 0), made("key-b", 0));
        std::fs::write(a.0.join("export.csv"), "1,2\n").unwrap();
        std::fs::write(b.0.join("export.csv"), "3,4\n").unwrap();
        let key = |d: &DemoDir| key_of(&d.0.join("export.csv")).unwrap();
        assert_ne!(key(&a), key(&b));
        std::fs::write(b.0.join("export.csv"), "1,2\n").unwrap();
        assert_eq!(
            key(&a),
            key(&b),
            "the same file, the same key: a rerun is recognised"
        );
    }

    /// An attempt that hangs ends: nothing else ends it, not the run's wait and not `drain()`.
    #[test]
    fn an_attempt_that_hangs_is_cut_off() {
        let p = resilience::configure("batch-upload-defaults", defaults()).unwrap();
        assert!(p.config().attempt_timeout.is_some());
    }

    /// A URL that is none is a start-up error (exit 1), not every file failed (exit 2).
    #[test]
    fn a_bad_url_is_refused_at_start() {
        let parse = |url: &str| {
            Opts::try_parse_from([
                "batch_upload",
                "--dir",
                "d",
                "--kimi-url",
                url,
                "--glm-url",
                "http://h/u",
            ])
        };
        assert!(parse("https://kimi.example/upload").is_ok());
        for bad in [
            "kimi.example/upload",
            "ftp://kimi.example/u",
            "http//kimi",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
