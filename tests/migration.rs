//! A service's migration from `reqwest-middleware` + `reqwest-retry` and from `backon` to
//! `#[resilient]`, side by side on the same loopback fault servers, on Tokio's paused clock.
//!
//! Each test has a provider name of its own (providers are process-wide) and a fault server of
//! its own, started inside the paused test. Log lines go to one global subscriber (see the
//! README's Testing); each test's lines are told apart by the span it runs in.

// `common` brings `hermetic`: the runner's RESILIENCE_*, RETRY_* and CIRCUIT_BREAKER_* variables
// removed before main, as the assertions below are on the defaults.
mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_retry::{RetryError, RetryTransientMiddleware, policies::ExponentialBackoff};
use resilience::{
    Classify, ErrorClass, HttpError, Jitter, ResilienceError, ResponseExt, Settings, resilient,
};
use resilience_testkit::{Fault, FaultServer, Faults, Outage};
use tokio::time::Instant;
use tracing::Instrument;

// ---------------------------------------------------------------------------------------------
// Log capture: one global subscriber, lines kept by the test's span.

fn logs() -> &'static common::Captured {
    static LINES: OnceLock<common::Captured> = OnceLock::new();
    LINES.get_or_init(|| {
        // A recorder, as a service that serves /metrics has: some lines (the hint for a call
        // cut off from outside) are only logged with one.
        metrics_handle();
        common::capture_globally()
    })
}

/// The lines logged inside `test{name="…"}`.
fn lines_of(test: &str) -> Vec<String> {
    let tag = format!("test{{name=\"{test}\"}}");
    logs()
        .text()
        .lines()
        .filter(|l| l.contains(&tag))
        .map(str::to_owned)
        .collect()
}

fn metrics_handle() -> &'static resilience::telemetry::MetricsHandle {
    static HANDLE: OnceLock<resilience::telemetry::MetricsHandle> = OnceLock::new();
    HANDLE.get_or_init(|| resilience::telemetry::install_recorder().expect("the only recorder"))
}

/// The value of the first sample of `family` whose labels contain each of `labels`.
fn sample(family: &str, labels: &[&str]) -> f64 {
    let text = metrics_handle().render();
    text.lines()
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with('{'))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

fn span(test: &'static str) -> tracing::Span {
    logs();
    tracing::info_span!("test", name = test)
}

// ---------------------------------------------------------------------------------------------
// The old stack: reqwest-middleware + reqwest-retry.

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// reqwest-retry's `ExponentialBackoff` as a service sets it for 3 attempts: its builder's
/// defaults are 1 s base, 30 min max, full jitter, base 2.
fn old_client(max_retries: u32) -> ClientWithMiddleware {
    old_client_on(plain_client(), max_retries)
}

fn old_client_on(client: reqwest::Client, max_retries: u32) -> ClientWithMiddleware {
    let policy = ExponentialBackoff::builder().build_with_max_retries(max_retries);
    ClientBuilder::new(client)
        .with(RetryTransientMiddleware::new_with_policy(policy))
        .build()
}

async fn old_upload(
    client: &ClientWithMiddleware,
    url: &str,
) -> Result<reqwest::Response, reqwest_middleware::Error> {
    client
        .post(url)
        .header("Idempotency-Key", "old-call")
        .body("x")
        .send()
        .await
}

// ---------------------------------------------------------------------------------------------
// The new stack: #[resilient] with a derived Classify.

#[derive(Debug, thiserror::Error, Classify)]
enum NewError {
    #[error(transparent)]
    #[classify(transparent)]
    Network(#[from] reqwest::Error),
    #[error(transparent)]
    #[classify(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    #[classify(transparent)]
    Resilience(#[from] ResilienceError),
}

/// The upload as the README writes it, on either stack's client: the call's key on every
/// request, `check_status()` for the status (`current_call()` answers in a function the method
/// awaits).
/// `$text_error` makes the body's read error one `$error` converts from (by default as it is).
macro_rules! upload_body {
    ($fn:ident, $client:ty, $error:ty) => {
        upload_body!($fn, $client, $error, std::convert::identity);
    };
    ($fn:ident, $client:ty, $error:ty, $text_error:expr) => {
        async fn $fn(client: &$client, url: &str, attempts: &AtomicU32) -> Result<String, $error> {
            attempts.fetch_add(1, Ordering::Relaxed);
            let call = resilience::current_call().expect("inside a resilient call");
            Ok(client
                .post(url)
                .header("Idempotency-Key", call.idempotency_key)
                .body("x")
                .send()
                .await?
                .check_status()?
                .text()
                .await
                .map_err($text_error)?)
        }
    };
}

upload_body!(new_body, reqwest::Client, NewError);

// One provider per test: a free function per name, around the stack's body.
macro_rules! upload_on {
    ($fn:ident, $provider:literal, $client:ty, $error:ty, $body:ident) => {
        #[resilient(provider = $provider)]
        async fn $fn(client: &$client, url: &str, attempts: &AtomicU32) -> Result<String, $error> {
            $body(client, url, attempts).await
        }
    };
    ($fn:ident, $provider:literal) => {
        upload_on!($fn, $provider, reqwest::Client, NewError, new_body);
    };
}

upload_on!(upload_503, "mig_503");
upload_on!(upload_429, "mig_429");
upload_on!(upload_429_long, "mig_429_long");
upload_on!(upload_refused, "mig_refused");
upload_on!(upload_hang, "mig_hang");
upload_on!(upload_hang_bounded, "mig_hang_bounded");
upload_on!(upload_deadline, "mig_deadline");
upload_on!(upload_529, "mig_529");
upload_on!(upload_503_after, "mig_503_after");

/// Gaps between the arrivals of one call's requests, on the paused clock.
fn gaps(times: &[Instant]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

fn only_key(server: &FaultServer) -> String {
    let keys = server.request_keys();
    assert_eq!(keys.len(), 1, "one call's key: {keys:?}");
    keys[0].clone()
}

// ---------------------------------------------------------------------------------------------
// 1. A burst of 503s.

#[tokio::test(start_paused = true)]
async fn a_503_burst_old_stack_returns_ok_with_the_503_new_stack_an_error() {
    async {
        let server = FaultServer::start(Faults::none()).await.unwrap();
        server.script([Fault::Status(503), Fault::Status(503), Fault::Status(503)]);

        // Old: 3 attempts (2 retries). The last 503 comes back as Ok(response): reqwest-retry
        // never turns a status into an error.
        let old = old_client(2);
        let resp = old_upload(&old, &server.upload_url())
            .await
            .expect("Ok, not Err");
        assert_eq!(resp.status(), 503);
        assert_eq!(server.stats().requests, 3);
        let old_gaps = gaps(&server.requests_for("old-call"));
        assert!(old_gaps[0] <= Duration::from_secs(1), "{old_gaps:?}");
        assert!(old_gaps[1] <= Duration::from_secs(2), "{old_gaps:?}");

        // New: the default 3 attempts, full jitter in [0, 1 s] then [0, 2 s]; an HttpError.
        let server = FaultServer::start(Faults::none()).await.unwrap();
        server.script([Fault::Status(503), Fault::Status(503), Fault::Status(503)]);
        let attempts = AtomicU32::new(0);
        let err = upload_503(&plain_client(), &server.upload_url(), &attempts)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, NewError::Http(e) if e.status() == 503),
            "{err:?}"
        );
        assert_eq!(attempts.load(Ordering::Relaxed), 3);
        assert_eq!(server.stats().requests, 3);
        let new_gaps = gaps(&server.requests_for(&only_key(&server)));
        eprintln!("503 burst: reqwest-retry gaps {old_gaps:?}, #[resilient] gaps {new_gaps:?}");
        assert!(new_gaps[0] <= Duration::from_secs(1), "{new_gaps:?}");
        assert!(new_gaps[1] <= Duration::from_secs(2), "{new_gaps:?}");
    }
    .instrument(span("burst"))
    .await;

    let lines = lines_of("burst");
    // reqwest-retry: one WARN per retry, no status, no URL, no attempt count out of a total.
    let old: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("reqwest_retry"))
        .collect();
    assert_eq!(old.len(), 2, "{lines:#?}");
    assert!(
        old.iter()
            .all(|l| l.contains("WARN") && l.contains("Retry attempt #")),
        "{old:#?}"
    );
    assert!(old[0].contains("Retry attempt #0."), "{old:#?}");
    // resilience: one INFO per retry with the error, one ERROR when it gives up.
    let new: Vec<_> = lines
        .iter()
        .filter(|l| l.contains(" resilience:"))
        .collect();
    assert_eq!(
        new.iter()
            .filter(|l| l.contains("INFO") && l.contains("[RETRY] Attempt"))
            .count(),
        2,
        "{new:#?}"
    );
    assert!(
        new.iter()
            .any(|l| l.contains("INFO") && l.contains("error=\"HTTP 503")),
        "{new:#?}"
    );
    assert!(
        new.iter().any(
            |l| l.contains("ERROR") && l.contains("Giving up on upload_503 after 3/3 attempts")
        ),
        "{new:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn every_5xx_is_retried_by_reqwest_retry_only_five_statuses_by_resilient() {
    // reqwest-retry's default strategy retries every 5xx (and 408, 429); #[resilient]'s derived
    // Classify retries 408, 500, 502, 503, 504 (429 throttled): a 529 (overloaded), a 501 or a
    // CDN's 520-524 is no longer retried after the migration.
    for status in [501, 505, 520, 524, 529] {
        let server = FaultServer::start(Faults::none()).await.unwrap();
        server.script([Fault::Status(status)]);
        let resp = old_upload(&old_client(2), &server.upload_url())
            .await
            .unwrap();
        assert_eq!(
            (status, resp.status().as_u16()),
            (status, 200),
            "old: retried, then 200"
        );
        assert_eq!(server.stats().requests, 2);

        let server = FaultServer::start(Faults::none()).await.unwrap();
        server.script([Fault::Status(status)]);
        let attempts = AtomicU32::new(0);
        let err = upload_529(&plain_client(), &server.upload_url(), &attempts)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, NewError::Http(e) if e.status() == status),
            "{err:?}"
        );
        assert_eq!(
            (status, attempts.load(Ordering::Relaxed)),
            (status, 1),
            "new: not retried"
        );
        assert_eq!(err.classify(), ErrorClass::Permanent);
    }
}

// ---------------------------------------------------------------------------------------------
// 2. 429 with Retry-After.

#[tokio::test(start_paused = true)]
async fn retry_after_is_ignored_by_reqwest_retry_and_honoured_by_resilient() {
    // Old: retried (429 is transient to its default strategy) after its own backoff, in
    // [0, 1 s]: before the 5 s the provider asked for.
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.script([Fault::TooManyRequests {
        retry_after_secs: 5,
    }]);
    let resp = old_upload(&old_client(2), &server.upload_url())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let old_gaps = gaps(&server.requests_for("old-call"));
    assert_eq!(old_gaps.len(), 1);
    assert!(
        old_gaps[0] <= Duration::from_secs(1),
        "Retry-After ignored: {old_gaps:?}"
    );

    // New: at least the 5 s, plus the jittered backoff (full: up to 1 s).
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.script([Fault::TooManyRequests {
        retry_after_secs: 5,
    }]);
    let attempts = AtomicU32::new(0);
    upload_429(&plain_client(), &server.upload_url(), &attempts)
        .await
        .unwrap();
    let new_gaps = gaps(&server.requests_for(&only_key(&server)));
    eprintln!("429 Retry-After 5: reqwest-retry gap {old_gaps:?}, #[resilient] gap {new_gaps:?}");
    assert_eq!(new_gaps.len(), 1);
    assert!(
        new_gaps[0] >= Duration::from_secs(5) && new_gaps[0] <= Duration::from_secs(6),
        "{new_gaps:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_503_s_retry_after_is_waited_for_too() {
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.script([Fault::StatusRetryAfter {
        status: 503,
        retry_after_secs: 5,
    }]);
    let resp = old_upload(&old_client(2), &server.upload_url())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(gaps(&server.requests_for("old-call"))[0] <= Duration::from_secs(1));

    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.script([Fault::StatusRetryAfter {
        status: 503,
        retry_after_secs: 5,
    }]);
    let attempts = AtomicU32::new(0);
    upload_503_after(&plain_client(), &server.upload_url(), &attempts)
        .await
        .unwrap();
    let new_gaps = gaps(&server.requests_for(&only_key(&server)));
    assert!(
        new_gaps[0] >= Duration::from_secs(5) && new_gaps[0] <= Duration::from_secs(6),
        "{new_gaps:?}"
    );
    assert_eq!(
        resilience::provider("mig_503_after").consecutive_failures(),
        0,
        "cleared by the success"
    );
}

/// reqwest-retry's time-bounded policy reads `SystemTime`, which a paused Tokio clock does
/// not move: in a paused test it never ends (here: still retrying after 10 min).
#[tokio::test(start_paused = true)]
async fn reqwest_retry_s_total_duration_is_not_on_tokio_s_clock() {
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.outage(Outage::Every(Fault::Status(503)));
    let policy =
        ExponentialBackoff::builder().build_with_total_retry_duration(Duration::from_secs(5));
    let old = ClientBuilder::new(plain_client())
        .with(RetryTransientMiddleware::new_with_policy(policy))
        .build();
    let waited = tokio::time::timeout(
        Duration::from_secs(600),
        old_upload(&old, &server.upload_url()),
    )
    .await;
    assert!(waited.is_err(), "still retrying");
    assert!(server.stats().requests > 3, "{:?}", server.stats());
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_past_the_max_delay_is_given_up_at_once_not_retried_early() {
    async {
        // Old: a Retry-After of 120 s is retried within a second (the header is not read).
        let server = FaultServer::start(Faults::none()).await.unwrap();
        server.script([Fault::TooManyRequests {
            retry_after_secs: 120,
        }]);
        let start = Instant::now();
        let resp = old_upload(&old_client(2), &server.upload_url())
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(start.elapsed() <= Duration::from_secs(1));

        // New: above RETRY_MAX_DELAY (60 s): one attempt, the 429 returned at once.
        let server = FaultServer::start(Faults::none()).await.unwrap();
        server.script([Fault::TooManyRequests {
            retry_after_secs: 120,
        }]);
        let attempts = AtomicU32::new(0);
        let start = Instant::now();
        let err = upload_429_long(&plain_client(), &server.upload_url(), &attempts)
            .await
            .unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(attempts.load(Ordering::Relaxed), 1);
        assert!(
            matches!(&err, NewError::Http(e) if e.status() == 429),
            "{err:?}"
        );
        assert!(matches!(err.classify(), ErrorClass::Throttled { .. }));
    }
    .instrument(span("retry_after_long"))
    .await;
    let lines = lines_of("retry_after_long");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("WARN") && l.contains("reason=\"retry_after_too_long\"")),
        "{lines:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Connection refused.

/// Counts the requests that reach the transport: below the retry middleware, it sees each
/// attempt (the fault server cannot count connections it refuses).
struct CountAttempts(Arc<AtomicU32>);

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for CountAttempts {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        self.0.fetch_add(1, Ordering::Relaxed);
        next.run(req, extensions).await
    }
}

/// reqwest-retry with 2 retries, each of its requests counted into `count`.
fn counted_old_client(count: &Arc<AtomicU32>) -> ClientWithMiddleware {
    ClientBuilder::new(plain_client())
        .with(RetryTransientMiddleware::new_with_policy(
            ExponentialBackoff::builder().build_with_max_retries(2),
        ))
        .with(CountAttempts(count.clone()))
        .build()
}

#[tokio::test(start_paused = true)]
async fn connection_refused_old_error_is_a_middleware_error_not_reqwest_s() {
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.outage(Outage::Refuse);

    let count = Arc::new(AtomicU32::new(0));
    let old = counted_old_client(&count);
    let start = Instant::now();
    let err = old_upload(&old, &server.upload_url()).await.unwrap_err();
    assert!(start.elapsed() <= Duration::from_secs(3));
    assert_eq!(count.load(Ordering::Relaxed), 3);
    // Not `Error::Reqwest`: reqwest-retry wraps every error it returns, retried or not, in
    // `Error::Middleware(anyhow!(RetryError))`; the reqwest::Error is inside it.
    let reqwest_middleware::Error::Middleware(any) = &err else {
        panic!("{err:?}")
    };
    let Some(RetryError::WithRetries {
        retries: 2,
        err: inner,
    }) = any.downcast_ref::<RetryError>()
    else {
        panic!("{any:?}")
    };
    assert!(matches!(inner, reqwest_middleware::Error::Reqwest(e) if e.is_connect()));
    assert_eq!(err.to_string(), "Request failed after 2 retries");

    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    let err = upload_refused(&plain_client(), &server.upload_url(), &attempts)
        .await
        .unwrap_err();
    assert!(start.elapsed() <= Duration::from_secs(3));
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
    assert!(
        matches!(&err, NewError::Network(e) if e.is_connect()),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. A hang.

#[tokio::test(start_paused = true)]
async fn a_hang_is_never_cut_off_by_default_in_either_stack() {
    async {
        // Old, with no client timeout: waits for ever (here 10 min of paused clock).
        let server = FaultServer::start(Faults::none()).await.unwrap();
        server.script([Fault::Hang]);
        let old = old_client(2);
        let waited = tokio::time::timeout(
            Duration::from_secs(600),
            old_upload(&old, &server.upload_url()),
        )
        .await;
        assert!(waited.is_err(), "still waiting");

        // New, with the defaults (no attempt timeout): the same.
        let server = FaultServer::start(Faults::none()).await.unwrap();
        server.script([Fault::Hang]);
        let attempts = AtomicU32::new(0);
        let waited = tokio::time::timeout(
            Duration::from_secs(600),
            upload_hang(&plain_client(), &server.upload_url(), &attempts),
        )
        .await;
        assert!(waited.is_err(), "still waiting");
        assert_eq!(attempts.load(Ordering::Relaxed), 1);
        assert_eq!(
            resilience::provider("mig_hang").consecutive_failures(),
            0,
            "no failure counted"
        );
    }
    .instrument(span("hang"))
    .await;
    let lines = lines_of("hang");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("WARN") && l.contains("RESILIENCE_MIG_HANG_RETRY_ATTEMPT_TIMEOUT")),
        "{lines:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hang_bounded_by_the_client_timeout_or_by_the_attempt_timeout() {
    // Old: reqwest's own timeout, a transient error to reqwest-retry: 3 attempts of 2 s + backoff.
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.script([Fault::Hang, Fault::Hang, Fault::Hang]);
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = old_upload(&old_client_on(client, 2), &server.upload_url())
        .await
        .unwrap_err();
    let old_took = start.elapsed();
    assert!(
        old_took >= Duration::from_secs(6) && old_took <= Duration::from_secs(9),
        "{old_took:?}"
    );
    assert_eq!(server.stats().requests, 3);
    let reqwest_middleware::Error::Middleware(any) = &err else {
        panic!("{err:?}")
    };
    assert!(matches!(
        any.downcast_ref::<RetryError>(),
        Some(RetryError::WithRetries { err: reqwest_middleware::Error::Reqwest(e), .. }) if e.is_timeout()
    ));

    // New: RETRY_ATTEMPT_TIMEOUT, the same bound; each cut-off attempt is a breaker failure.
    resilience::configure(
        "mig_hang_bounded",
        Settings::new().attempt_timeout(Some(Duration::from_secs(2))),
    )
    .unwrap();
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.script([Fault::Hang, Fault::Hang, Fault::Hang]);
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    let err = upload_hang_bounded(&plain_client(), &server.upload_url(), &attempts)
        .await
        .unwrap_err();
    let new_took = start.elapsed();
    eprintln!("3 hangs, 2 s bound: reqwest-retry {old_took:?}, #[resilient] {new_took:?}");
    assert!(
        new_took >= Duration::from_secs(6) && new_took <= Duration::from_secs(9),
        "{new_took:?}"
    );
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
    assert!(
        matches!(
            err,
            NewError::Resilience(ResilienceError::AttemptTimeout { .. })
        ),
        "{err:?}"
    );
    assert_eq!(
        resilience::provider("mig_hang_bounded").consecutive_failures(),
        3
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Keeping reqwest-middleware's client under #[resilient].

/// Without the `reqwest-middleware` feature, `reqwest_middleware::Error` has no `Classify` (and
/// the orphan rule keeps a service from adding it), so `#[classify(transparent)]` on it does
/// not compile: the variant that holds it is classified by hand, as here. reqwest-retry hides
/// the reqwest::Error inside `Error::Middleware(anyhow!(RetryError))`, so the impl looks there
/// too (with the feature, a `RetryError::Error`, transparent, still hides it).
#[derive(Debug, thiserror::Error)]
enum MwError {
    #[error(transparent)]
    Client(#[from] reqwest_middleware::Error),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Resilience(#[from] ResilienceError),
}

/// The reqwest::Error inside a reqwest-middleware error, through reqwest-retry's wrapping.
fn reqwest_error_in(e: &reqwest_middleware::Error) -> Option<&reqwest::Error> {
    match e {
        reqwest_middleware::Error::Reqwest(e) => Some(e),
        reqwest_middleware::Error::Middleware(any) => match any.downcast_ref::<RetryError>()? {
            RetryError::WithRetries { err, .. } | RetryError::Error(err) => reqwest_error_in(err),
        },
    }
}

impl Classify for MwError {
    fn classify(&self) -> ErrorClass {
        match self {
            Self::Client(e) => {
                reqwest_error_in(e).map_or(ErrorClass::Permanent, Classify::classify)
            }
            Self::Http(e) => e.classify(),
            Self::Resilience(e) => e.classify(),
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Http(e) => Classify::retry_after(e),
            _ => None,
        }
    }
    fn log_summary(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Self::Client(e) => reqwest_error_in(e).and_then(Classify::log_summary),
            Self::Http(e) => e.log_summary(),
            Self::Resilience(e) => e.log_summary(),
        }
    }
}

// The same upload through reqwest-middleware's client (`MwError` has no `From<reqwest::Error>`).
upload_body!(
    mw_body,
    ClientWithMiddleware,
    MwError,
    reqwest_middleware::Error::Reqwest
);

upload_on!(
    upload_double,
    "mig_double",
    ClientWithMiddleware,
    MwError,
    mw_body
);
upload_on!(
    upload_double_refused,
    "mig_double_refused",
    ClientWithMiddleware,
    MwError,
    mw_body
);

#[tokio::test(start_paused = true)]
async fn middleware_retry_inside_resilient_multiplies_the_attempts() {
    async {
        // 503 for every request: 3 attempts of #[resilient] × 3 of the middleware = 9 requests,
        // and the breaker counts 3 failures (one per outer attempt), not 9.
        let server = FaultServer::start(Faults::none()).await.unwrap();
        server.outage(Outage::Every(Fault::Status(503)));
        let attempts = AtomicU32::new(0);
        let start = Instant::now();
        let err = upload_double(&old_client(2), &server.upload_url(), &attempts)
            .await
            .unwrap_err();
        let took = start.elapsed();
        eprintln!("double retry, 503 outage: 9 requests in {took:?}");
        assert!(
            matches!(&err, MwError::Http(e) if e.status() == 503),
            "{err:?}"
        );
        assert_eq!(attempts.load(Ordering::Relaxed), 3);
        assert_eq!(server.stats().requests, 9);
        assert_eq!(
            server.requests_for(&only_key(&server)).len(),
            9,
            "one key for all 9"
        );
        assert_eq!(resilience::provider("mig_double").consecutive_failures(), 3);
        // Up to 3 × (1 + 2) s of the middleware's backoff and (1 + 2) s of ours: 12 s at most.
        assert!(took <= Duration::from_secs(12), "{took:?}");
    }
    .instrument(span("double"))
    .await;
    let lines = lines_of("double");
    assert_eq!(
        lines.iter().filter(|l| l.contains("reqwest_retry")).count(),
        6,
        "{lines:#?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("[RETRY] Attempt") && l.contains("INFO"))
            .count(),
        2
    );
    // The metrics see the outer attempts only: 3 attempts, 2 retries, where 9 requests went out.
    let provider = r#"provider="mig_double""#;
    assert_eq!(sample("resilience_retries_total", &[provider]), 2.0);
    let attempts: f64 = ["success", "transient", "throttled", "permanent", "timeout"]
        .iter()
        .map(|r| {
            sample(
                "resilience_attempts_total",
                &[provider, &format!(r#"result="{r}""#)],
            )
        })
        .sum();
    assert_eq!(attempts, 3.0);

    // Refused connections: the hand-written Classify finds the reqwest::Error inside the
    // middleware's error, so it is transient and retried (9 connection attempts again).
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.outage(Outage::Refuse);
    let count = Arc::new(AtomicU32::new(0));
    let old = counted_old_client(&count);
    let attempts = AtomicU32::new(0);
    let err = upload_double_refused(&old, &server.upload_url(), &attempts)
        .await
        .unwrap_err();
    assert_eq!(err.classify(), ErrorClass::Transient);
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
    assert_eq!(count.load(Ordering::Relaxed), 9);
}

/// The shortcut a user reaches for with the `anyhow` feature (this suite has it on):
/// `anyhow::Error::from(reqwest_middleware::Error)` classified by its chain. thiserror's
/// `#[error(transparent)]` on `reqwest_middleware::Error::Reqwest` hands `source()` through to
/// the reqwest::Error's own source, so the reqwest::Error itself is not in the chain: without
/// the `reqwest-middleware` feature, what was found was an `io::Error` below it, when there
/// was one, and a timeout was permanent. With it (this suite has it on), the chain's first
/// error, the `reqwest_middleware::Error`, is classified by the reqwest::Error inside.
#[tokio::test(start_paused = true)]
async fn a_middleware_error_through_anyhow_is_classified_by_its_reqwest_error() {
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.outage(Outage::Refuse);
    let plain = ClientBuilder::new(plain_client()).build(); // no retry middleware
    let err = plain
        .post(server.upload_url())
        .body("x")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(&err, reqwest_middleware::Error::Reqwest(e) if e.is_connect()));
    let chain: Vec<String> = anyhow::Error::from(err)
        .chain()
        .map(|e| format!("{e:?}"))
        .collect();
    assert!(
        !chain.iter().any(|e| e.starts_with("reqwest::Error")),
        "{chain:#?}"
    );
    // A refused connection: its io::Error (ConnectionRefused) is in the chain, transient.
    let server_err = plain
        .post(server.upload_url())
        .body("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        anyhow::Error::from(server_err).classify(),
        ErrorClass::Transient
    );

    // A timeout: reqwest's own `TimedOut` is no io::Error, so nothing below the middleware's
    // error is known: it was permanent, never retried, where reqwest::Error's Classify says
    // transient. The middleware's error, known with the feature, says what its reqwest::Error
    // says.
    server.recover();
    server.script([Fault::Hang]);
    let timing_out = ClientBuilder::new(
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap(),
    )
    .build();
    let err = timing_out
        .post(server.upload_url())
        .body("x")
        .send()
        .await
        .unwrap_err();
    let reqwest_middleware::Error::Reqwest(inner) = &err else {
        panic!("{err:?}")
    };
    assert!(inner.is_timeout());
    assert_eq!(inner.classify(), ErrorClass::Transient);
    let through_anyhow = anyhow::Error::from(err);
    assert!(
        !through_anyhow
            .chain()
            .any(|e| e.downcast_ref::<reqwest::Error>().is_some()),
        "the reqwest::Error is still not in the chain"
    );
    assert_eq!(through_anyhow.classify(), ErrorClass::Transient);
}

// With the `reqwest-middleware` feature, a method on reqwest-middleware's client (its retry
// middleware taken out) returns `reqwest_middleware::Result` as it is: `check_status()?` keeps
// a 503's `Retry-After`, a client timeout is retried, and an open breaker comes back as the
// middleware error holding the `ResilienceError`.
upload_body!(
    mw_direct_body,
    ClientWithMiddleware,
    reqwest_middleware::Error
);
upload_on!(
    mw_direct,
    "mig_mw_direct",
    ClientWithMiddleware,
    reqwest_middleware::Error,
    mw_direct_body
);

/// The README's way to find an open breaker's rejection in the middleware's error.
fn circuit_open(e: &reqwest_middleware::Error) -> Option<&ResilienceError> {
    match e {
        reqwest_middleware::Error::Middleware(any) => any
            .downcast_ref::<ResilienceError>()
            .filter(|r| matches!(r, ResilienceError::CircuitOpen { .. })),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_method_returns_reqwest_middleware_s_error_as_it_is() {
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.script([
        Fault::StatusRetryAfter {
            status: 503,
            retry_after_secs: 5,
        },
        Fault::Hang,
    ]);
    let count = Arc::new(AtomicU32::new(0));
    let client = ClientBuilder::new(
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap(),
    )
    .with(CountAttempts(count.clone()))
    .build();
    let attempts = AtomicU32::new(0);
    let body = mw_direct(&client, &server.upload_url(), &attempts)
        .await
        .expect("the third attempt succeeds");
    assert!(!body.is_empty());
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
    assert_eq!(count.load(Ordering::Relaxed), 3);
    let gaps = gaps(&server.requests_for(&only_key(&server)));
    // The 503's Retry-After (5 s) waited for, then the jittered backoff on top.
    assert!(gaps[0] >= Duration::from_secs(5), "{gaps:?}");

    resilience::provider("mig_mw_direct").force_open();
    let err = mw_direct(&client, &server.upload_url(), &attempts)
        .await
        .unwrap_err();
    assert!(
        matches!(
            circuit_open(&err),
            Some(ResilienceError::CircuitOpen {
                provider: "mig_mw_direct",
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(err.classify(), ErrorClass::Permanent);
    assert_eq!(
        attempts.load(Ordering::Relaxed),
        3,
        "rejected before any attempt"
    );
    resilience::provider("mig_mw_direct").reset();
}

upload_on!(
    mw_nested,
    "mig_mw_nested",
    ClientWithMiddleware,
    reqwest_middleware::Error,
    mw_direct_body
);

/// reqwest-retry left in the client: when its retries end in an error (here refused
/// connections), the error says so ("Request failed after 2 retries"), and with the feature
/// each `[RETRY]` line's error says it, and one warning a process says what it costs.
#[tokio::test(start_paused = true)]
async fn a_retrying_middleware_inside_is_named_when_its_retries_end_in_an_error() {
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.outage(Outage::Refuse);
    let count = Arc::new(AtomicU32::new(0));
    let client = counted_old_client(&count);
    let attempts = AtomicU32::new(0);
    let err = mw_nested(&client, &server.upload_url(), &attempts)
        .instrument(span("nested"))
        .await
        .unwrap_err();
    assert_eq!(err.classify(), ErrorClass::Transient);
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
    assert_eq!(count.load(Ordering::Relaxed), 9, "3 attempts of 3 requests");
    let said = "(after 2 retries by a middleware inside the attempt)";
    assert!(
        err.log_summary().is_some_and(|s| s.ends_with(said)),
        "{:?}",
        err.log_summary()
    );
    let lines = lines_of("nested");
    // The two retries' lines and the giving-up line (not the first attempt's debug line).
    let retries: Vec<_> = lines.iter().filter(|l| l.contains("error=")).collect();
    assert_eq!(retries.len(), 3, "{lines:#?}");
    assert!(retries.iter().all(|l| l.contains(said)), "{retries:#?}");
    // Once a process, whichever test's failure found it first.
    let text = logs().text();
    let warned: Vec<_> = text
        .lines()
        .filter(|l| l.contains("A retrying middleware retried before an error came back"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(
        warned[0].contains("WARN") && warned[0].contains("RetryTransientMiddleware"),
        "{warned:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. backon: .when() / .notify() and a tokio::time::timeout around it.

#[tokio::test(start_paused = true)]
async fn backon_defaults_against_resilient_defaults() {
    // backon's ExponentialBuilder::default(): 3 *retries* (4 attempts), 1 s doubling, no jitter,
    // max 60 s. `.when()` decides what is retried, `.notify()` is the only log line.
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.outage(Outage::Every(Fault::Status(503)));
    let client = plain_client();
    let url = server.upload_url();
    let notified = Mutex::new(Vec::new());
    let err = (|| async {
        let resp = client
            .post(&url)
            .header("Idempotency-Key", "backon")
            .body("x")
            .send()
            .await?;
        Ok::<_, NewError>(resp.check_status()?.text().await?)
    })
    .retry(ExponentialBuilder::default())
    .sleep(tokio::time::sleep)
    .when(|e: &NewError| e.classify().is_retryable()) // Classify as backon's `when`
    .notify(|e: &NewError, d: Duration| notified.lock().unwrap().push((e.to_string(), d)))
    .await
    .unwrap_err();
    assert!(matches!(&err, NewError::Http(e) if e.status() == 503));
    assert_eq!(
        gaps(&server.requests_for("backon")),
        [1, 2, 4].map(Duration::from_secs).to_vec(),
        "4 attempts, exact doubling, no jitter"
    );
    assert_eq!(notified.lock().unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn backon_sleeps_into_an_outer_timeout_resilient_gives_up_before_its_deadline() {
    // backon in a tokio::time::timeout(5 s) (a tower timeout is the same): attempts at 0, 1, 3 s;
    // the 4 s sleep after the third is cut at 5 s, and the caller gets `Elapsed`, not the 503.
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.outage(Outage::Every(Fault::Status(503)));
    let client = plain_client();
    let url = server.upload_url();
    let start = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(5),
        (|| async {
            let resp = client
                .post(&url)
                .header("Idempotency-Key", "backon")
                .body("x")
                .send()
                .await?;
            Ok::<_, NewError>(resp.check_status()?.text().await?)
        })
        .retry(ExponentialBuilder::default().with_max_times(10))
        .sleep(tokio::time::sleep),
    )
    .await;
    assert!(outcome.is_err(), "Elapsed");
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(server.stats().requests, 3);

    // #[resilient] with RETRY_TOTAL_TIMEOUT=5 s (and 10 attempts, no jitter to compare):
    // the same attempts, but the call ends at 3 s with the 503, since the next wait (4 s) would
    // pass the deadline.
    resilience::configure(
        "mig_deadline",
        Settings::new()
            .max_attempts(10)
            .jitter(Jitter::None)
            .total_timeout(Some(Duration::from_secs(5))),
    )
    .unwrap();
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.outage(Outage::Every(Fault::Status(503)));
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    let err = upload_deadline(&plain_client(), &server.upload_url(), &attempts)
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
    assert!(
        matches!(&err, NewError::Http(e) if e.status() == 503),
        "{err:?}"
    );
}
