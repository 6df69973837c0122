//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::cell::Cell;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::{Classify, ErrorClass, ResilienceError};

// The runner's resilience variables are removed before `main` (see the module).
#[path = "../hermetic/mod.rs"]
mod hermetic;

/// An error type that carries its class and the attempt that produced it, so a test can tell
/// which attempt's error came back.
#[derive(Debug, Clone, PartialEq)]
pub enum TestError {
    Transient(u32),
    Throttled(u32, Option<Duration>),
    Permanent(u32),
    Resilience(ResilienceError),
}

impl From<ResilienceError> for TestError {
    fn from(e: ResilienceError) -> Self {
        TestError::Resilience(e)
    }
}

impl Classify for TestError {
    fn classify(&self) -> ErrorClass {
        match self {
            TestError::Transient(_) => ErrorClass::Transient,
            TestError::Throttled(_, retry_after) => ErrorClass::Throttled {
                retry_after: *retry_after,
            },
            TestError::Permanent(_) => ErrorClass::Permanent,
            TestError::Resilience(e) => e.classify(),
        }
    }
    fn log_summary(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(format!("{self:?}").into())
    }
}

/// Captures everything logged on this thread while `f` runs.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A client for the tests' loopback servers: no proxy, whatever `HTTP_PROXY`, `ALL_PROXY` or
/// the like say in the runner's environment (reqwest takes them by default, for 127.0.0.1 too).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A GET over real HTTP: the status and the body.
pub async fn get(url: &str) -> (u16, String) {
    let resp = client().get(url).send().await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// A subscriber writing every event at debug and above, with its fields, into `Captured`.
pub fn capture() -> (Captured, impl tracing::Subscriber + Send + Sync) {
    let out = Captured::default();
    let writer = out.clone();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (out, sub)
}

/// [`capture`]'s subscriber as the process's (a test binary of its own: there is one), and
/// its lines.
pub fn capture_globally() -> Captured {
    let (logs, subscriber) = capture();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    logs
}

/// A `current_thread` runtime with its time and I/O drivers, as `#[tokio::test]` makes.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The error of an HTTP upload, as a provider implementation would define it.
#[derive(Debug)]
pub enum UploadError {
    Network(reqwest::Error),
    Http(resilience::HttpError),
    Resilience(ResilienceError),
}

impl From<ResilienceError> for UploadError {
    fn from(e: ResilienceError) -> Self {
        UploadError::Resilience(e)
    }
}

impl Classify for UploadError {
    fn classify(&self) -> ErrorClass {
        match self {
            UploadError::Network(e) => e.classify(),
            UploadError::Http(e) => e.classify(),
            UploadError::Resilience(e) => e.classify(),
        }
    }
    fn log_summary(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            UploadError::Network(e) => e.log_summary(),
            UploadError::Http(e) => e.log_summary(),
            UploadError::Resilience(e) => e.log_summary(),
        }
    }
    // Forwarded as the README says a hand-written `Classify` must: without it a 503's
    // `Retry-After` was not waited for (a 429's is in its class), and this helper, "as a
    // provider implementation would define it", retried a 503 asking for 3 s after 1 s.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            UploadError::Network(e) => e.retry_after(),
            UploadError::Http(e) => e.retry_after(),
            UploadError::Resilience(e) => e.retry_after(),
        }
    }
}

/// What an accepted upload returns: the server's file id and the call's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub file_id: String,
    pub key: String,
}

/// One upload attempt: POST the body with the call's idempotency key.
pub async fn upload_once(
    client: &reqwest::Client,
    url: &str,
    body: &'static [u8],
) -> Result<Uploaded, UploadError> {
    use resilience::ResponseExt;
    let key = resilience::current_call()
        .map(|c| c.idempotency_key.to_string())
        .unwrap_or_default();
    let resp = client
        .post(url)
        .header("Idempotency-Key", &key)
        .body(body)
        .send()
        .await
        .map_err(UploadError::Network)?
        .check_status()
        .map_err(UploadError::Http)?;
    let text = resp.text().await.map_err(UploadError::Network)?;
    Ok(Uploaded { file_id: text, key })
}

/// Runs `f` on a thread of its own under a log layer that calls `on_line` as each line is
/// logged (not for the lines of its own calls), as a log shipper with a resilient client
/// would. Fails if `f` has not finished in 30 s (it waited on what its own thread held), or if
/// no line was logged (nothing re-entered, so nothing was tested).
pub fn re_enters(
    what: &str,
    on_line: impl Fn() + Send + Sync + 'static,
    f: impl FnOnce() + Send + 'static,
) {
    let (logged, seen) = std::sync::mpsc::channel();
    let layer = OnEvent(move || {
        on_line();
        let _ = logged.send(());
    });
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let subscriber =
            tracing_subscriber::layer::SubscriberExt::with(tracing_subscriber::registry(), layer);
        tracing::subscriber::with_default(subscriber, f);
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{what} hung: {e}"));
    assert!(seen.try_recv().is_ok(), "{what}: no line was logged");
}

/// Calls `f` for each event, but not for the events of its own calls.
struct OnEvent<F>(F);

thread_local! {
    static SHIPPING: Cell<bool> = const { Cell::new(false) };
}

impl<S: tracing::Subscriber, F: Fn() + 'static> tracing_subscriber::Layer<S> for OnEvent<F> {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if !SHIPPING.replace(true) {
            (self.0)();
            SHIPPING.set(false);
        }
    }
}

/// The value of the one sample of `name` with exactly `labels` (order free), in a Prometheus
/// exposition; `None` if absent. A histogram reads as its count.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("valid Prometheus text");
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
            prometheus_parse::Value::Summary(_) => f64::NAN,
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    found.first().copied()
}

/// The sum of the counters `name` whose labels include `labels`, in a Prometheus exposition.
pub fn counter(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// Sets `vars` in the process's environment: with the runner's own resilience variables
/// removed before `main` (`hermetic`), the only ones of resilience's there.
///
/// # Safety
/// Only where no other thread runs yet: a test binary whose one test starts with this.
pub unsafe fn only_these_variables(vars: &[(&str, &str)]) {
    for (k, v) in vars {
        // SAFETY: the caller's.
        unsafe { std::env::set_var(k, v) };
    }
}

/// Makes `times` calls through `p` that each fail with a transient error (one attempt each
/// where the provider does not retry): to open a breaker, or to fail its probes.
pub async fn fail(p: resilience::Provider, times: u32) {
    for _ in 0..times {
        let r: Result<u32, TestError> = p.execute(|| async { Err(TestError::Transient(1)) }).await;
        assert!(r.is_err());
    }
}
