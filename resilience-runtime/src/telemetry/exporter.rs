//! `/metrics` (Prometheus text) and `/health` (JSON) on one loopback listener.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::registry::{Provider, providers};

/// Where [`serve_from_env`] listens unless `RESILIENCE_METRICS_ADDR` says otherwise: loopback
/// only, on the port the OpenTelemetry Prometheus exporter uses by convention.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9464";

/// Why telemetry could not start.
///
/// Its `Debug` is its text, as [`ConfigError`](crate::ConfigError)'s is: a `main` returning
/// `Result<(), Box<dyn Error>>` prints an error by its `Debug`, and that should name the
/// variable, the value and what was expected.
#[non_exhaustive]
pub enum TelemetryError {
    /// Another `metrics` recorder is already installed in this process.
    RecorderAlreadyInstalled,
    /// `RESILIENCE_METRICS_ADDR` is not an address.
    BadAddress {
        /// The variable's value (the error's text shows it as a
        /// [`ConfigProblem`](crate::ConfigProblem)'s value is shown: by its length when long,
        /// URL credentials redacted).
        value: String,
    },
    /// The listener could not bind (port in use, no permission, …). Its text has the
    /// operating system's answer in it, so [`source()`](std::error::Error::source) is `None`: a
    /// printer that walks the chain (anyhow's `{:#}`, a `Report`) shows the answer once, and
    /// a log line of the text alone still says why.
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's answer.
        source: std::io::Error,
    },
    /// The Tokio runtime `serve` runs in has no time driver, which the listener needs (its
    /// request-head timeout and the exporter's upkeep).
    NoTimeDriver,
    /// The Tokio runtime `serve` runs in has no I/O driver, which the listener's socket needs.
    NoIoDriver,
}

impl fmt::Display for TelemetryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TelemetryError::RecorderAlreadyInstalled => f.write_str(
                "another metrics recorder is already installed, so resilience cannot serve /metrics: serve that exporter's endpoint (after resilience::telemetry::use_installed_recorder(), our metrics go into it) and /health from resilience::telemetry::health()",
            ),
            // Shown as a configuration problem shows it: a long value (a secret pasted into
            // the wrong variable) by its length, a URL without its credentials.
            TelemetryError::BadAddress { value } => {
                f.write_str("RESILIENCE_METRICS_ADDR=")?;
                match crate::error::showable_value(value) {
                    Some(shown) => write!(f, "{shown:?}")?,
                    None => f.write_str(&crate::error::logged_value(value))?,
                }
                f.write_str(crate::error::not_utf8_note(value))?;
                write!(
                    f,
                    ": expected an IP address and port, e.g. {DEFAULT_ADDR}"
                )
            }
            TelemetryError::Bind { addr, source } => write!(
                f,
                "cannot serve metrics on {addr}: {source}; choose another address (RESILIENCE_METRICS_ADDR for serve_from_env())"
            ),
            TelemetryError::NoTimeDriver => f.write_str(
                "cannot serve metrics: the Tokio runtime has no time driver; build it with enable_time() or enable_all()",
            ),
            TelemetryError::NoIoDriver => f.write_str(
                "cannot serve metrics: the Tokio runtime has no I/O driver; build it with enable_io() or enable_all()",
            ),
        }
    }
}

impl fmt::Debug for TelemetryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// No `source()`: the one error inside, `Bind`'s, is in the text (see there).
impl std::error::Error for TelemetryError {}

/// The installed recorder's exposition: the Prometheus text of every metric recorded through
/// the `metrics` facade, ours and the application's. Cheap to clone.
///
/// ```
/// let handle = resilience::telemetry::install_recorder().unwrap();
/// metrics::counter!("app_uploads_total").increment(1);
/// assert!(handle.render().contains("app_uploads_total 1"));
/// ```
#[derive(Clone)]
pub struct MetricsHandle {
    prometheus: PrometheusHandle,
}

impl fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsHandle").finish_non_exhaustive()
    }
}

impl MetricsHandle {
    /// The Prometheus text, as a scrape would see it. Every breaker is refreshed first, so an
    /// open breaker whose timeout has passed shows as `half_open` (the state the next call
    /// would see), not as a stale `open`.
    pub fn render(&self) -> String {
        // Before the exporter's text, so that a move made here is in its transitions counter.
        let all = providers();
        for p in &all {
            let _ = p.state();
        }
        let mut text = self.prometheus.render();
        super::store::render(&mut text, &all);
        text
    }

    /// Drains the exporter's sample buffers. [`serve`] does it every 5 s; call it now and then
    /// if you render without it, so memory stays bounded between renders.
    pub fn run_upkeep(&self) {
        self.prometheus.run_upkeep();
    }
}

static HANDLE: OnceLock<MetricsHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder (once; later calls
/// return the same handle) and starts recording. [`serve`] calls it; call it yourself to
/// render metrics without a listener.
///
/// The recorder is `metrics-exporter-prometheus`'s, except that the series a call updates
/// (`resilience_calls_total`, `_attempts_total`, `_retries_total`, `_call_duration_seconds`
/// and `_attempt_duration_seconds`) are kept in plain atomics of ours: the exporter's histogram
/// reads a clock and queues every sample, which made up most of a call's cost. The exposition
/// is the same.
///
/// # Errors
///
/// [`TelemetryError::RecorderAlreadyInstalled`] when another `metrics` recorder is the
/// process's (use [`use_installed_recorder`](super::use_installed_recorder) with it instead).
pub fn install_recorder() -> Result<MetricsHandle, TelemetryError> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    // Serialised: two first callers must not both try, or the loser would see the global
    // recorder taken before the winner has published its handle.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = MetricsHandle {
        prometheus: recorder.handle(),
    };
    // Racing installers: the loser sees the winner's handle or, if the winner was someone
    // else's recorder, an error.
    match metrics::set_global_recorder(super::store::Recorder::new(recorder)) {
        // Recording first, then the handle: a caller that finds the handle (the early
        // return above, in another thread) made calls that were not counted, when it came
        // between the two.
        Ok(()) => {
            super::use_installed_recorder();
            let _ = HANDLE.set(handle);
        }
        Err(_) if HANDLE.get().is_some() => {}
        Err(_) => return Err(TelemetryError::RecorderAlreadyInstalled),
    }
    HANDLE
        .get()
        .cloned()
        .ok_or(TelemetryError::RecorderAlreadyInstalled)
}

/// A running `/metrics` + `/health` listener. Dropping it stops the listener and closes the
/// connections it has open, when the runtime next runs its task; to bind the same address
/// again right after, [`shutdown`](Self::shutdown) it instead.
#[derive(Debug)]
#[must_use = "dropping the MetricsServer stops the listener and closes its connections at once: keep it while it should serve"]
pub struct MetricsServer {
    addr: SocketAddr,
    handle: MetricsHandle,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// `http://<addr>/health`.
    pub fn health_url(&self) -> String {
        format!("http://{}/health", self.addr)
    }

    /// The Prometheus text, as a scrape would see it.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Stops the listener and closes its connections, and returns once the port is closed,
    /// so the address can be bound again at once. (Dropping the server closes it when the
    /// runtime next runs its task, which on a multi-thread runtime may come after a
    /// `yield_now()` of the caller's.)
    pub async fn shutdown(mut self) {
        self.task.abort();
        // The task's end, aborted or not: its listener is dropped by then.
        let _ = (&mut self.task).await;
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads `RESILIENCE_METRICS_ADDR` (default [`DEFAULT_ADDR`], loopback) and calls [`serve`].
///
/// # Errors
///
/// [`TelemetryError::BadAddress`] when the variable is not an IP address and port, else as
/// [`serve`].
pub async fn serve_from_env() -> Result<MetricsServer, TelemetryError> {
    // Only an unset variable means the default: one that is not UTF-8 is a bad address.
    let value = match std::env::var("RESILIENCE_METRICS_ADDR") {
        Ok(v) => v,
        Err(std::env::VarError::NotPresent) => DEFAULT_ADDR.to_string(),
        Err(std::env::VarError::NotUnicode(raw)) => {
            return Err(TelemetryError::BadAddress {
                value: raw.to_string_lossy().into_owned(),
            });
        }
    };
    let addr = value
        .trim()
        .parse::<SocketAddr>()
        .map_err(|_| TelemetryError::BadAddress { value })?;
    serve(addr).await
}

/// Installs the Prometheus recorder and serves, on one listener bound to `addr`:
///
/// - `GET /metrics`: the Prometheus text exposition;
/// - `GET /health`: every provider's breaker state, failures, next probe and configuration,
///   as JSON; HTTP 200 when no breaker is open, 503 otherwise.
///
/// Must be called inside a Tokio runtime (the listener is a task on it).
///
/// # Errors
///
/// [`TelemetryError::RecorderAlreadyInstalled`] as [`install_recorder`];
/// [`TelemetryError::Bind`] when the address cannot be bound (in use, no permission);
/// [`TelemetryError::NoTimeDriver`] in a runtime built without `enable_time()`,
/// [`TelemetryError::NoIoDriver`] in one built without `enable_io()`. An error
/// changes nothing: no recorder is installed and no port stays bound.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let server = resilience::telemetry::serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
/// println!("scrape {}", server.metrics_url());
/// # }
/// ```
pub async fn serve(addr: SocketAddr) -> Result<MetricsServer, TelemetryError> {
    // Checked first, so a runtime without timers changes nothing: spawned below, the upkeep
    // loop and every connection's header timer would panic in their tasks instead.
    if crate::call::sleep_here(Duration::ZERO).is_none() {
        return Err(TelemetryError::NoTimeDriver);
    }
    // Bound before the recorder is installed: a port in use (or any bind error) leaves the
    // process as it was, its `metrics` recorder free for a fallback of the application's own
    // (installed first, a failed `serve` kept ours, and every call paid for metrics nobody
    // could scrape). Should the recorder then be refused, dropping the listener frees the port.
    let listener = bind(addr)?;
    let local = listener
        .local_addr()
        .map_err(|source| TelemetryError::Bind { addr, source })?;
    let handle = install_recorder()?;
    let h = handle.clone();
    let local_only = local.ip().to_canonical().is_loopback();
    let task = tokio::spawn(async move {
        let upkeep = h.clone();
        // Drains histogram buffers between scrapes so memory stays bounded when nobody scrapes.
        let _upkeep = AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                upkeep.run_upkeep();
            }
        }));
        // The open connections, oldest first. Owned by this task, and each aborts its
        // connection's task when dropped, so dropping the server (which aborts this task)
        // closes every open connection too, not only the listener.
        let mut open = VecDeque::with_capacity(MAX_CONNECTIONS);
        let renders = Arc::new(Semaphore::new(MAX_RENDERS));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            // Finished connections are reaped as a new one comes, before it is counted: reaped
            // before the wait for it, those that finished during the wait still counted, and
            // after a burst of 256 that had all ended, the next scrape was closed unanswered.
            open.retain(|c: &Open| !c.task.0.is_finished());
            // A client reconnecting as fast as it is cut off kept a connection per 30 s
            // header timeout open, and took the application's file descriptors (its own
            // sockets and files failed with EMFILE): past the cap, an old connection is
            // closed. Not the new one: a client holding 256 idle connections then kept every
            // scrape out for as long as it liked. Not one answering a request either, while
            // an idle one is left: a client opening connections in a loop then cut every
            // scrape off before its answer.
            make_room(&mut open);
            let busy = Arc::new(AtomicU8::new(IDLE));
            let task = AbortOnDrop(tokio::spawn(connection(
                stream,
                Served {
                    h: h.clone(),
                    renders: renders.clone(),
                    local_only,
                },
                Arc::clone(&busy),
            )));
            open.push_back(Open { task, busy });
        }
    });
    if local_only {
        tracing::info!(target: "resilience", addr = %local, "[TELEMETRY] Serving /metrics and /health on http://{local}");
    } else {
        // Said louder: `/health` shows every provider's configuration to whoever reaches it.
        tracing::warn!(target: "resilience", addr = %local, "[TELEMETRY] Serving /metrics and /health on http://{local}, beyond this host: /health shows every provider's configuration to whoever reaches the port");
    }
    Ok(MetricsServer {
        addr: local,
        handle,
        task,
    })
}

/// A listener on `addr`, as `TcpListener::bind` makes it (address reuse outside Windows, the
/// backlog of std's and mio's `bind`: 128 on most systems), except that a runtime without its
/// I/O driver is an error, not Tokio's panic: the socket is registered with the driver by
/// `listen`, a plain call, where the panic is caught (as `sleep_here` catches the timers';
/// Tokio's message is still printed by the panic hook).
fn bind(addr: SocketAddr) -> Result<TcpListener, TelemetryError> {
    let bind_error = |source| TelemetryError::Bind { addr, source };
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .map_err(bind_error)?;
    #[cfg(not(windows))]
    socket.set_reuseaddr(true).map_err(bind_error)?;
    socket.bind(addr).map_err(bind_error)?;
    // mio's `TcpListener::bind` (Tokio's), which takes std's value: not Tokio's docs' 1,024.
    const BACKLOG: u32 = if cfg!(target_os = "horizon") {
        20
    } else if cfg!(target_os = "haiku") {
        32
    } else {
        128
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| socket.listen(BACKLOG))) {
        Ok(listener) => listener.map_err(bind_error),
        Err(_) => Err(TelemetryError::NoIoDriver),
    }
}

/// Serves one connection until it ends or its lifetime (and the grace for an answer in
/// progress) is up; `busy` says, for the listener, whether it has a request in progress.
/// What a connection serves, and to whom.
#[derive(Clone)]
struct Served {
    h: MetricsHandle,
    renders: Arc<Semaphore>,
    /// The listener is on a loopback address: requests must name this host as a local
    /// client does (`named_locally`).
    local_only: bool,
}

async fn connection<S>(stream: S, served: Served, busy: Arc<AtomicU8>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let flag = Arc::clone(&busy);
    let service = hyper::service::service_fn(move |req| {
        let served = served.clone();
        // From the request head until hyper has taken the whole answer.
        let busy = Busy::new(&flag);
        async move {
            let resp = route(&served, &req).await;
            Ok::<_, Infallible>(resp.map(|body| Answer { body, _busy: busy }))
        }
    });
    // Its flush ends the request: hyper drops the answer's body as soon as it has the body's
    // last bytes in its own buffer, before it writes them.
    let io = hyper_util::rt::TokioIo::new(Sent { io: stream, busy });
    // With a timer, hyper closes a connection that sends no complete request head
    // within its header timeout (30 s), so idle or trickling clients are cut off.
    // A scrape's request head is small: 16 KiB of buffer and 32 headers (hyper's
    // defaults, about 400 KiB and 100, let 2,000 trickling clients hold 840 MB).
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_buf_size(16 * 1024)
        .max_headers(32)
        .serve_connection(io, service);
    // Nothing else bounds a client that stops reading its answer: it held the
    // rendered text and the kernel's buffers for ever. Prometheus reconnects.
    let mut conn = std::pin::pin!(conn);
    if tokio::time::timeout(CONNECTION_LIFETIME, conn.as_mut())
        .await
        .is_err()
    {
        // Ended gracefully: an idle connection closes at once, and an answer being written
        // (a scrape that came as the lifetime ran out) is finished first, within a grace.
        // Dropped instead, it was cut off mid-answer, and Prometheus counted a failed scrape.
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
    }
}

/// A connection with no request in progress: none came, or its answer is all written.
const IDLE: u8 = 0;
/// A request head came, and its answer is being made (or hyper is writing its head).
const ANSWERING: u8 = 1;
/// Hyper has the answer's last bytes, maybe not yet written.
const SENDING: u8 = 2;

/// An open connection of the listener's: its task, and whether it has a request in progress.
struct Open {
    /// Aborted when the entry is dropped: closed by the cap, or with the server.
    task: AbortOnDrop,
    busy: Arc<AtomicU8>,
}

/// Past the cap, closes the oldest of `open` (oldest first, the ended removed) that has no
/// request in progress, or the oldest when every one has one.
fn make_room(open: &mut VecDeque<Open>) {
    if open.len() < MAX_CONNECTIONS {
        return;
    }
    let idle = open
        .iter()
        .position(|c| c.busy.load(Ordering::Relaxed) == IDLE);
    // Dropped, its connection's task is aborted.
    drop(open.remove(idle.unwrap_or(0)));
}

/// A connection's request in progress, until its answer's bytes are all in hyper's buffer:
/// the rest is [`Sent`]'s.
struct Busy(Arc<AtomicU8>);

impl Busy {
    fn new(flag: &Arc<AtomicU8>) -> Busy {
        flag.store(ANSWERING, Ordering::Relaxed);
        Busy(Arc::clone(flag))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(SENDING, Ordering::Relaxed);
    }
}

/// A connection's socket, which marks it idle once an answer hyper had is written: hyper
/// flushes its socket only when its own buffer is empty.
struct Sent<S> {
    io: S,
    busy: Arc<AtomicU8>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Sent<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sent<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let flushed = std::task::ready!(Pin::new(&mut this.io).poll_flush(cx));
        if flushed.is_ok() {
            let _ = this
                .busy
                .compare_exchange(SENDING, IDLE, Ordering::Relaxed, Ordering::Relaxed);
        }
        Poll::Ready(flushed)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// An answer's body, holding its connection busy until hyper drops it. Its length is the
/// inner body's: `BodyExt::map_frame` lost it, and the answers went out chunked.
struct Answer {
    body: Full<Bytes>,
    _busy: Busy,
}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Connections served at once; past it the oldest idle one (else the oldest) is closed as a
/// new one comes.
const MAX_CONNECTIONS: usize = 256;
/// How long a connection may take new requests.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// How long past its lifetime a connection may take to finish the answer it is writing:
/// Prometheus's default scrape timeout.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Renders of `/metrics` or `/health` at once.
const MAX_RENDERS: usize = 2;

/// `f`, a render, on Tokio's blocking threads, a few at a time: with many providers a render
/// takes milliseconds, and made on a worker it held up the application's tasks (50 scrapes at
/// once delayed a 10 ms timer by up to 1.3 s). `None` when the runtime shuts down meanwhile.
async fn rendered<T: Send + 'static>(
    renders: &Arc<Semaphore>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    // Held by the render, not by the request: a client that leaves mid-render drops its
    // request, not the render running on its blocking thread, so a request's permit let a
    // client that sends a scrape and leaves, again and again, run any number at once.
    let permit = Arc::clone(renders).acquire_owned().await.ok()?;
    match tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    {
        Ok(t) => Some(t),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}

/// On a loopback listener, whether a request names this host as a local client does:
/// `localhost` (or a name under it), a loopback or the unspecified address (with any port),
/// or no name at all (HTTP/1.0). A web page in a local browser can have its own name resolve
/// to 127.0.0.1 (DNS rebinding) and read the answers of a server that answers any name; its
/// requests carry its name. An absolute-form target (`GET http://name/metrics`) names the
/// host instead of `Host`.
fn named_locally(uri: &hyper::Uri, headers: &hyper::HeaderMap) -> bool {
    fn local(host: &str) -> bool {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match bare.parse::<std::net::IpAddr>() {
            // The unspecified address too: on Linux `curl http://0.0.0.0:9464` reaches a
            // loopback listener, and no page's own name is an address.
            Ok(ip) => {
                let ip = ip.to_canonical();
                ip.is_loopback() || ip.is_unspecified()
            }
            Err(_) => {
                // `localhost`, and its subdomains, which browsers resolve to loopback
                // themselves (RFC 6761), so no page can have one of them rebound.
                let name = bare.strip_suffix('.').unwrap_or(bare).to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
        }
    }
    if let Some(authority) = uri.authority() {
        return local(authority.host());
    }
    // Every `Host` the request has (HTTP/1.1 allows one; a second must not slip past).
    headers.get_all(hyper::header::HOST).iter().all(|v| {
        v.to_str()
            .ok()
            .and_then(|v| v.parse::<hyper::http::uri::Authority>().ok())
            .is_some_and(|a| local(a.host()))
    })
}

async fn route(served: &Served, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (h, renders) = (served.h.clone(), &served.renders);
    // HEAD is answered as GET: hyper sends the head (its length included) without the body.
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    let unavailable = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "shutting down\n".to_owned(),
        )
    };
    let (status, content_type, body) = match (read, req.uri().path()) {
        _ if served.local_only && !named_locally(req.uri(), req.headers()) => (
            StatusCode::MISDIRECTED_REQUEST,
            "text/plain",
            "this server is on a loopback address: name it localhost or by that address \
             (RESILIENCE_METRICS_ADDR binds another)\n"
                .into(),
        ),
        (true, "/metrics") => match rendered(renders, move || h.render()).await {
            Some(text) => (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                text,
            ),
            None => unavailable(),
        },
        (true, "/health") => match rendered(renders, || {
            let health = health();
            (health.status(), health.body().to_string())
        })
        .await
        {
            Some((status, body)) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                (status, "application/json", body)
            }
            None => unavailable(),
        },
        (_, "/metrics" | "/health") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "use GET or HEAD\n".into(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics or /health\n".into(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        // A 405 must say what is allowed (RFC 9110, 15.5.6).
        headers.insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
    }
    resp
}

/// What `/health` answers: [`health()`]'s result, for a service that serves it from a server of
/// its own (after [`use_installed_recorder`](crate::telemetry::use_installed_recorder), say).
///
/// ```
/// let p = resilience::configure("doc-health", resilience::Settings::new()).unwrap();
/// p.force_open();
/// let health = resilience::telemetry::health();
/// assert!(!health.is_healthy());
/// assert_eq!(health.status(), 503);
/// assert_eq!(health.body()["status"], "degraded");
/// let body: String = health.body().to_string(); // what `/health` sends, as `application/json`
/// # assert!(body.contains("\"forced_open\""));
/// p.reset(); // the process's `/health` is healthy again
/// assert!(resilience::telemetry::health().body()["providers"]
///     .as_array()
///     .unwrap()
///     .iter()
///     .any(|p| p["name"] == "doc-health" && p["state"] == "closed"));
/// ```
///
/// Its parts are read through methods, so that the status and the body cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    healthy: bool,
    body: serde_json::Value,
}

impl Health {
    /// No provider's breaker is open or forced open: `/health` answers 200, else 503.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// The HTTP status `/health` answers with: 200 when [`is_healthy`](Self::is_healthy), else
    /// 503.
    pub fn status(&self) -> u16 {
        if self.healthy { 200 } else { 503 }
    }

    /// The JSON `/health` sends: `status` (`ok` or `degraded`), `draining` and `providers`, as
    /// the README's table lists them.
    pub fn body(&self) -> &serde_json::Value {
        &self.body
    }

    /// The JSON body, owned.
    pub fn into_body(self) -> serde_json::Value {
        self.body
    }
}

/// Every provider's health, as served on `/health`.
pub fn health() -> Health {
    let all: Vec<Provider> = providers();
    let mut healthy = true;
    let list: Vec<serde_json::Value> = all
        .iter()
        .map(|p| {
            let state = p.state();
            healthy &= !state.is_open();
            let c = p.config();
            let secs = |d: Duration| d.as_secs_f64();
            json!({
                "name": p.name(),
                "state": state.as_str(),
                "consecutive_failures": p.consecutive_failures(),
                "retry_in_seconds": p.retry_in().map(secs),
                "retry_budget_available": p.retry_budget_available(),
                "config": {
                    "enabled": c.enabled,
                    "retry_enabled": c.retry_enabled,
                    "max_attempts": c.max_attempts,
                    "base_delay_seconds": secs(c.base_delay),
                    "max_delay_seconds": secs(c.max_delay),
                    "exponential_base": c.exponential_base,
                    "jitter": c.jitter.as_str(),
                    "attempt_timeout_seconds": c.attempt_timeout.map(secs),
                    "total_timeout_seconds": c.total_timeout.map(secs),
                    "retry_budget_enabled": c.retry_budget_enabled,
                    "retry_budget_ratio": c.retry_budget_ratio,
                    "retry_budget_min_per_second": c.retry_budget_min_per_second,
                    "retry_budget_capacity": c.retry_budget_capacity,
                    "circuit_breaker_enabled": c.breaker_enabled,
                    "failure_threshold": c.failure_threshold,
                    "success_threshold": c.success_threshold,
                    "breaker_timeout_seconds": secs(c.breaker_timeout),
                    "half_open_max_calls": c.half_open_max_calls,
                    "failure_rate": c.failure_rate,
                    "window_size": c.window_size,
                    "minimum_calls": c.minimum_calls,
                },
            })
        })
        .collect();
    Health {
        healthy,
        // `draining`: the process's `drain()` was called (its retries stopped), so that a
        // shutdown's give-ups can be told from an outage's from outside.
        body: json!({
            "status": if healthy { "ok" } else { "degraded" },
            "draining": crate::drain::PROCESS.is_on(),
            "providers": list,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback listener answers requests that name it as a local client does, and no
    /// other: a page in a local browser whose name was made to resolve to 127.0.0.1 (DNS
    /// rebinding) sends its own name.
    #[test]
    fn a_loopback_listener_is_named_locally() {
        let named = |target: &str, hosts: &[&str]| {
            let uri: hyper::Uri = target.parse().unwrap();
            let mut headers = hyper::HeaderMap::new();
            for h in hosts {
                headers.append(hyper::header::HOST, h.parse().unwrap());
            }
            named_locally(&uri, &headers)
        };
        for host in [
            "localhost",
            "LOCALHOST:9464",
            "localhost.:9464",
            "127.0.0.1:9464",
            "127.0.0.2",
            "[::1]:9464",
            "[::ffff:127.0.0.1]:9464",
            "0.0.0.0:9464",
            "[::]",
            "app.localhost:9464",
            "App.LocalHost.",
        ] {
            assert!(named("/metrics", &[host]), "{host}");
        }
        assert!(named("/metrics", &[]), "HTTP/1.0 sends no Host");
        for host in [
            "attacker.example:9464",
            "localhost.attacker.example",
            "attacker.example.localhost.evil",
            "localhost-evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1:9464",
            "[::2]",
            "",
            "x",
        ] {
            assert!(!named("/metrics", &[host]), "{host}");
        }
        assert!(
            !named("/metrics", &["localhost", "attacker.example"]),
            "a second Host"
        );
        assert!(
            !named("http://evil.example/metrics", &["localhost"]),
            "absolute form"
        );
        assert!(named("http://127.0.0.1:9464/metrics", &["localhost"]));
    }

    /// What a loopback listener serves.
    fn served(h: MetricsHandle, renders: Arc<Semaphore>) -> Served {
        Served {
            h,
            renders,
            local_only: true,
        }
    }

    /// `/health`'s keys are the README's field table: a JSON check written from it must find
    /// every one, and the configuration's keys are the settings' names, durations in seconds.
    #[test]
    fn health_has_the_fields_the_readme_lists() {
        let p = crate::configure("exporter-health-fields", crate::Settings::new()).unwrap();
        p.force_open();
        let Health { healthy, body } = health();
        assert!(!healthy);
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(keys(&body), ["draining", "providers", "status"]);
        assert_eq!(body["status"], "degraded");
        let ours = body["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "exporter-health-fields")
            .unwrap();
        assert_eq!(
            keys(ours),
            [
                "config",
                "consecutive_failures",
                "name",
                "retry_budget_available",
                "retry_in_seconds",
                "state"
            ]
        );
        assert_eq!(ours["state"], "forced_open");
        assert_eq!(ours["retry_in_seconds"], serde_json::Value::Null);
        let mut want = [
            "enabled",
            "retry_enabled",
            "max_attempts",
            "base_delay_seconds",
            "max_delay_seconds",
            "exponential_base",
            "jitter",
            "attempt_timeout_seconds",
            "total_timeout_seconds",
            "retry_budget_enabled",
            "retry_budget_ratio",
            "retry_budget_min_per_second",
            "retry_budget_capacity",
            "circuit_breaker_enabled",
            "failure_threshold",
            "success_threshold",
            "breaker_timeout_seconds",
            "half_open_max_calls",
            "failure_rate",
            "window_size",
            "minimum_calls",
        ];
        want.sort();
        assert_eq!(keys(&ours["config"]), want);
        assert_eq!(
            ours["config"]["attempt_timeout_seconds"],
            serde_json::Value::Null
        );
        p.reset();
    }

    /// A push gateway's URL, credentials and all, or a key pasted into the variable: not
    /// repeated by the error.
    #[test]
    fn a_bad_address_shows_no_secret() {
        let text = |value: &str| {
            TelemetryError::BadAddress {
                value: value.into(),
            }
            .to_string()
        };
        assert_eq!(
            text("https://u:SECRET@push.example"),
            "RESILIENCE_METRICS_ADDR=\"https://<redacted>@push.example\": expected an IP \
             address and port, e.g. 127.0.0.1:9464"
        );
        assert_eq!(
            text("sk-proj-0123456789abcdefghijSECRET"),
            "RESILIENCE_METRICS_ADDR=<34 characters, not shown>: expected an IP address and \
             port, e.g. 127.0.0.1:9464"
        );
        assert_eq!(
            text("localhost:9464"),
            "RESILIENCE_METRICS_ADDR=\"localhost:9464\": expected an IP address and port, e.g. \
             127.0.0.1:9464"
        );
    }

    /// Past the cap the oldest connection with no request in progress is closed, not an older
    /// one answering a scrape; when every one has a request, the oldest.
    #[tokio::test]
    async fn the_cap_closes_the_oldest_idle_connection() {
        // A task that never ends, and what tells that it was aborted: its sender dropped.
        let mut ended = Vec::new();
        let mut task = || {
            let (alive, end) = tokio::sync::oneshot::channel::<()>();
            ended.push(end);
            AbortOnDrop(tokio::spawn(async move {
                let _alive = alive;
                std::future::pending::<()>().await
            }))
        };
        let mut open: VecDeque<Open> = (0..MAX_CONNECTIONS)
            .map(|i| Open {
                task: task(),
                busy: Arc::new(AtomicU8::new(if i < 2 { ANSWERING } else { IDLE })),
            })
            .collect();
        let ids: Vec<_> = open.iter().map(|c| c.task.0.id()).collect();
        let closed = |open: &VecDeque<Open>| -> Vec<usize> {
            (0..ids.len())
                .filter(|i| !open.iter().any(|c| c.task.0.id() == ids[*i]))
                .collect()
        };
        make_room(&mut open);
        assert_eq!(closed(&open), [2], "the first idle one, after two busy");
        // Under the cap: nothing closed.
        make_room(&mut open);
        assert_eq!(closed(&open), [2]);
        // Every one busy: the oldest.
        open.push_back(Open {
            task: task(),
            busy: Arc::new(AtomicU8::new(SENDING)),
        });
        for c in &open {
            c.busy.store(SENDING, Ordering::Relaxed);
        }
        make_room(&mut open);
        assert_eq!(closed(&open), [0, 2], "the oldest, every one being busy");
        // Closed means aborted, not only forgotten (the others never end: a bound, not a wait).
        for i in [0, 2] {
            let end = tokio::time::timeout(Duration::from_secs(10), &mut ended[i]).await;
            assert!(end.expect("aborted").is_err(), "task {i} ended otherwise");
        }
    }

    /// A connection stays busy until its answer is written, not only until hyper has it: the
    /// body went into hyper's buffer whole, and a connection that was still sending it counted
    /// as idle, the first one closed past the cap.
    #[tokio::test]
    async fn a_connection_is_busy_until_its_answer_is_written() {
        use std::sync::Mutex;
        use tokio::sync::Notify;
        /// A client's socket: the request, then nothing; room for `room` bytes of answer.
        #[derive(Default)]
        struct Peer {
            request: Option<&'static [u8]>,
            written: Vec<u8>,
            room: usize,
            waker: Option<std::task::Waker>,
        }
        #[derive(Clone, Default)]
        struct Socket {
            peer: Arc<Mutex<Peer>>,
            blocked: Arc<Notify>,
            flushed: Arc<Notify>,
        }
        impl AsyncRead for Socket {
            fn poll_read(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<std::io::Result<()>> {
                match self.peer.lock().unwrap().request.take() {
                    Some(request) => {
                        buf.put_slice(request);
                        Poll::Ready(Ok(()))
                    }
                    None => Poll::Pending,
                }
            }
        }
        impl AsyncWrite for Socket {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<std::io::Result<usize>> {
                let mut peer = self.peer.lock().unwrap();
                let n = buf.len().min(peer.room);
                if n == 0 {
                    peer.waker = Some(cx.waker().clone());
                    self.blocked.notify_one();
                    return Poll::Pending;
                }
                peer.room -= n;
                peer.written.extend_from_slice(&buf[..n]);
                Poll::Ready(Ok(n))
            }
            // As a TcpStream says: hyper then queues head and body (its writev strategy, the
            // one served connections use) instead of copying them into one buffer.
            fn is_write_vectored(&self) -> bool {
                true
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
                self.flushed.notify_one();
                Poll::Ready(Ok(()))
            }
            fn poll_shutdown(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<std::io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }
        let socket = Socket::default();
        {
            let mut peer = socket.peer.lock().unwrap();
            peer.request = Some(b"GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n");
            peer.room = 10;
        }
        let h = MetricsHandle {
            prometheus: PrometheusBuilder::new().build_recorder().handle(),
        };
        let busy = Arc::new(AtomicU8::new(IDLE));
        let conn = tokio::spawn(connection(
            socket.clone(),
            served(h, Arc::new(Semaphore::new(MAX_RENDERS))),
            Arc::clone(&busy),
        ));
        // 10 s only so that a failure cannot hang the suite: each wait is for an event.
        let bound = Duration::from_secs(10);
        tokio::time::timeout(bound, socket.blocked.notified())
            .await
            .expect("the answer fills the room");
        assert_eq!(socket.peer.lock().unwrap().written.len(), 10);
        assert_eq!(
            busy.load(Ordering::Relaxed),
            SENDING,
            "idle with its answer unwritten"
        );
        let waker = {
            let mut peer = socket.peer.lock().unwrap();
            peer.room = usize::MAX;
            peer.waker.take().unwrap()
        };
        waker.wake();
        tokio::time::timeout(bound, async {
            loop {
                socket.flushed.notified().await;
                if socket
                    .peer
                    .lock()
                    .unwrap()
                    .written
                    .ends_with(b"try /metrics or /health\n")
                {
                    break;
                }
            }
        })
        .await
        .expect("the answer written");
        // The mock notifies before `Sent` marks the connection idle, in the same poll: on this
        // one-thread runtime the connection's task has finished that poll when the test runs.
        assert_eq!(busy.load(Ordering::Relaxed), IDLE, "busy once written");
        conn.abort();
    }

    /// A scraper's keep-alive connection, scraping every 15 s as Prometheus does, then once
    /// just before its lifetime ends, with an answer larger than the socket's buffer, which
    /// the client reads only after that end (or never, `read_last` false). Returns what the
    /// client read of the last answer, and when the connection ended.
    async fn a_scrape_as_the_lifetime_ends(read_last: bool) -> (Vec<u8>, Duration) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        const REQUEST: &[u8] = b"GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n";
        const END: &[u8] = b"try /metrics or /health\n";
        // Less than one answer (about 130 bytes): its writing waits for the client to read.
        let (mut client, server) = tokio::io::duplex(64);
        let h = MetricsHandle {
            prometheus: PrometheusBuilder::new().build_recorder().handle(),
        };
        let start = tokio::time::Instant::now();
        let conn = tokio::spawn(connection(
            server,
            served(h, Arc::new(Semaphore::new(MAX_RENDERS))),
            Arc::new(AtomicU8::new(IDLE)),
        ));
        // Scrapes at 0, 15, 30 and 45 s, each answered whole, then one at 59.5 s.
        for wait in [15_000, 15_000, 15_000, 14_500] {
            client.write_all(REQUEST).await.unwrap();
            let mut answer = Vec::new();
            while !answer.ends_with(END) {
                let mut buf = [0; 256];
                let n = client.read(&mut buf).await.unwrap();
                assert_ne!(n, 0, "closed within its lifetime");
                answer.extend_from_slice(&buf[..n]);
            }
            tokio::time::advance(Duration::from_millis(wait)).await;
        }
        client.write_all(REQUEST).await.unwrap();
        // Nothing else can run meanwhile (the connection waits on the client, the client on
        // this sleep), so the paused clock moves on by itself, through the lifetime's end.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut rest = Vec::new();
        if read_last {
            client.read_to_end(&mut rest).await.unwrap();
        }
        conn.await.unwrap();
        (rest, start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_in_progress_is_finished_when_the_lifetime_ends() {
        let (rest, ended) = a_scrape_as_the_lifetime_ends(true).await;
        let text = String::from_utf8(rest).unwrap();
        assert!(text.starts_with("HTTP/1.1 404"), "{text:?}");
        assert!(
            text.ends_with("not found: try /metrics or /health\n"),
            "cut off: {text:?}"
        );
        // Closed as soon as that answer is out (the client read it at 60.5 s), not kept
        // alive for another request until the grace ran out.
        assert_eq!(ended, Duration::from_millis(60_500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_cut_off_after_the_grace() {
        let (rest, ended) = a_scrape_as_the_lifetime_ends(false).await;
        assert!(rest.is_empty());
        assert_eq!(ended, CONNECTION_LIFETIME + SHUTDOWN_GRACE);
    }

    /// A connection on a duplex socket of `room` bytes, with `renders` permits for renders;
    /// the client's end, its task, and its `busy` flag.
    fn a_connection_on_a_duplex(
        room: usize,
        renders: Arc<Semaphore>,
    ) -> (
        tokio::io::DuplexStream,
        tokio::task::JoinHandle<()>,
        Arc<AtomicU8>,
    ) {
        let (client, server) = tokio::io::duplex(room);
        let h = MetricsHandle {
            prometheus: PrometheusBuilder::new().build_recorder().handle(),
        };
        let busy = Arc::new(AtomicU8::new(IDLE));
        let conn = tokio::spawn(connection(server, served(h, renders), Arc::clone(&busy)));
        (client, conn, busy)
    }

    /// Sends `request` and reads its whole answer (one that ends with `end`).
    async fn ask(client: &mut tokio::io::DuplexStream, request: &[u8], end: &[u8]) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        client.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        while !answer.ends_with(end) {
            let mut buf = [0; 4096];
            let n = client.read(&mut buf).await.unwrap();
            assert_ne!(n, 0, "closed within its lifetime");
            answer.extend_from_slice(&buf[..n]);
        }
        answer
    }

    /// A keep-alive connection with no request in progress closes as its lifetime ends, not
    /// at the end of the grace (which is only for an answer being written).
    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_closes_when_the_lifetime_ends() {
        use tokio::io::AsyncReadExt;
        let (mut client, conn, _) =
            a_connection_on_a_duplex(4096, Arc::new(Semaphore::new(MAX_RENDERS)));
        let start = tokio::time::Instant::now();
        ask(
            &mut client,
            b"GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n",
            b"try /metrics or /health\n",
        )
        .await;
        tokio::time::advance(Duration::from_secs(45)).await;
        ask(
            &mut client,
            b"GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n",
            b"try /metrics or /health\n",
        )
        .await;
        // The client waits for more (the header timeout, 30 s from 45 s, is past the
        // lifetime's end).
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "{rest:?}");
        conn.await.unwrap();
        assert_eq!(start.elapsed(), CONNECTION_LIFETIME);
    }

    /// A client trickling a request head as the lifetime ends is cut off then: the grace
    /// (and its header timeout, 30 s after its last answer) does not let it hold on.
    #[tokio::test(start_paused = true)]
    async fn a_head_trickling_as_the_lifetime_ends_is_cut_off_then() {
        use tokio::io::AsyncWriteExt;
        let (mut client, mut conn, busy) =
            a_connection_on_a_duplex(4096, Arc::new(Semaphore::new(MAX_RENDERS)));
        let start = tokio::time::Instant::now();
        let request = b"GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n";
        ask(&mut client, request, b"try /metrics or /health\n").await;
        tokio::time::advance(Duration::from_secs(35)).await;
        ask(&mut client, request, b"try /metrics or /health\n").await;
        // From 50.5 s a byte a second: the head would be whole at 85.5 s, its header timeout
        // is at 65 s.
        tokio::time::advance(Duration::from_millis(15_500)).await;
        let trickle = async {
            for b in request {
                if client.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            ended = &mut conn => ended.unwrap(),
            () = trickle => unreachable!(),
        }
        assert_eq!(start.elapsed(), CONNECTION_LIFETIME);
        assert_eq!(busy.load(Ordering::Relaxed), IDLE);
    }

    /// An answer still being made as the lifetime ends (its render waiting for a turn) is
    /// made and sent whole, and the connection closes once it is out, not kept alive for
    /// another request; meanwhile the connection still counts as busy for the cap.
    #[tokio::test(start_paused = true)]
    async fn an_answer_being_made_as_the_lifetime_ends_is_sent_then_closed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // No turn for renders until the test gives one.
        let renders = Arc::new(Semaphore::new(0));
        let (mut client, conn, busy) = a_connection_on_a_duplex(4096, Arc::clone(&renders));
        let start = tokio::time::Instant::now();
        // Requests at 0, 20 and 40 s (each within the header timeout of the one before),
        // then a scrape at 59.5 s.
        for wait in [20_000, 20_000, 19_500] {
            ask(
                &mut client,
                b"GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n",
                b"try /metrics or /health\n",
            )
            .await;
            tokio::time::advance(Duration::from_millis(wait)).await;
        }
        client
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        // Past the lifetime's end, within the grace.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!conn.is_finished(), "cut off before its answer");
        assert_eq!(busy.load(Ordering::Relaxed), ANSWERING);
        renders.add_permits(1);
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8(answer).unwrap();
        // Whole: its head and as much body as the head says (the render shows every
        // provider the test binary's other tests made, so its length is not known here).
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with("HTTP/1.1 200"), "{answer:?}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.parse().ok())
            .expect("a content-length");
        assert_eq!(body.len(), length, "cut off: {answer:?}");
        conn.await.unwrap();
        // Closed as soon as its answer was out: the render ran on a blocking thread, during
        // which the paused clock does not move by itself.
        assert_eq!(start.elapsed(), Duration::from_millis(60_500));
        assert_eq!(busy.load(Ordering::Relaxed), IDLE);
    }

    /// A render keeps its permit until it ends, though the request that started it is
    /// dropped meanwhile (its client left): two renders at a time, not two requests.
    #[tokio::test]
    async fn a_render_keeps_its_permit_when_its_request_is_dropped() {
        let renders = Arc::new(Semaphore::new(MAX_RENDERS));
        let (started, has_started) = tokio::sync::oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let request = tokio::spawn({
            let renders = Arc::clone(&renders);
            async move {
                rendered(&renders, move || {
                    let _ = started.send(());
                    let _ = released.recv();
                })
                .await
            }
        });
        has_started.await.unwrap();
        request.abort();
        assert!(request.await.unwrap_err().is_cancelled());
        assert_eq!(
            renders.available_permits(),
            MAX_RENDERS - 1,
            "the running render holds its permit"
        );
        release.send(()).unwrap();
        // Given back when the render ends.
        drop(renders.acquire_many(MAX_RENDERS as u32).await.unwrap());
    }
}
