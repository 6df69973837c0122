//! The names the issues spell out, written as they spell them: code written from an issue's
//! text, by a user or an independent check, must compile and behave so. Patterns name exactly
//! the fields the issue names, with no `..`, so a field added to a spelled variant fails here
//! (stop 44 gave `CircuitOpen` a third field, and `CircuitOpen { provider, retry_in }` stopped
//! compiling; nothing caught it until an audit).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::{CircuitState, Classify, ErrorClass, ResilienceError, resilient};

/// Issue 3's example error: `Classify + From<ResilienceError>`.
#[derive(Debug)]
enum UploadError {
    Flaky,
    Resilience(ResilienceError),
}

impl Classify for UploadError {
    fn classify(&self) -> ErrorClass {
        match self {
            UploadError::Flaky => ErrorClass::Transient,
            UploadError::Resilience(e) => e.classify(),
        }
    }
}

impl From<ResilienceError> for UploadError {
    fn from(e: ResilienceError) -> Self {
        UploadError::Resilience(e)
    }
}

#[derive(Debug, PartialEq)]
struct FileId(String);

#[derive(Clone, Copy)]
struct Purpose;

trait FileProvider {
    async fn upload_file(&self, path: &Path, purpose: Purpose) -> Result<FileId, UploadError>;
}

struct KimiProvider {
    calls: Arc<AtomicU32>,
}

// Issue 3's example, as written there (its provider renamed, so no other test's `kimi` is met).
impl FileProvider for KimiProvider {
    #[resilient(provider = "contract-kimi")]
    async fn upload_file(&self, path: &Path, purpose: Purpose) -> Result<FileId, UploadError> {
        let _ = purpose;
        // Issue 2: "the provider, method, attempt number (1-based) and an idempotency key".
        let call = resilience::current_call().expect("inside an executing call");
        assert_eq!(call.provider, "contract-kimi");
        assert_eq!(call.method, "upload_file");
        let _key: resilience::IdempotencyKey = call.idempotency_key;
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            assert_eq!(call.attempt, 1);
            return Err(UploadError::Flaky);
        }
        assert_eq!(call.attempt, 2);
        Ok(FileId(path.display().to_string()))
    }
}

#[tokio::test(start_paused = true)]
async fn issue_3_s_example_retries_a_transient_error() {
    let calls = Arc::new(AtomicU32::new(0));
    let kimi = KimiProvider {
        calls: calls.clone(),
    };
    let id = kimi.upload_file(Path::new("a.pdf"), Purpose).await;
    assert_eq!(id.unwrap(), FileId("a.pdf".into()));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(resilience::current_call().is_none(), "outside a call");
}

/// Issue 3's three keys: `provider`, `retry = false`, `name = "label"`.
#[resilient(provider = "contract-once", retry = false, name = "label")]
async fn once(calls: &AtomicU32) -> Result<(), UploadError> {
    assert_eq!(resilience::current_call().unwrap().method, "label");
    calls.fetch_add(1, Ordering::SeqCst);
    Err(UploadError::Flaky)
}

#[tokio::test(start_paused = true)]
async fn retry_false_makes_exactly_one_attempt() {
    let calls = AtomicU32::new(0);
    assert!(matches!(once(&calls).await, Err(UploadError::Flaky)));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Issue 2's `ErrorClass`, each variant with exactly its fields.
fn retry_after_of(class: ErrorClass) -> Option<Duration> {
    match class {
        ErrorClass::Transient => None,
        ErrorClass::Throttled { retry_after } => retry_after,
        ErrorClass::Permanent => None,
    }
}

/// Issue 2's `CircuitOpen { provider, retry_in }`, matched and built with exactly those fields.
fn circuit_open(e: &ResilienceError) -> Option<(&'static str, Option<Duration>)> {
    match *e {
        ResilienceError::CircuitOpen { provider, retry_in } => Some((provider, retry_in)),
        _ => None,
    }
}

/// Issue 2's attempt-timeout variant (its name and fields are ours: the issue names none).
fn attempt_timeout(e: &ResilienceError) -> Option<Duration> {
    match *e {
        ResilienceError::AttemptTimeout {
            provider: _,
            timeout,
        } => Some(timeout),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn issue_2_s_api_as_spelled() {
    // Issue 2's start-up check: the runner's variables are removed (tests/hermetic), so none
    // is bad.
    resilience::init().unwrap();
    let built = ResilienceError::CircuitOpen {
        provider: "contract-built",
        retry_in: Some(Duration::from_secs(5)),
    };
    assert_eq!(
        circuit_open(&built),
        Some(("contract-built", Some(Duration::from_secs(5))))
    );
    assert_eq!(
        retry_after_of(ErrorClass::Throttled {
            retry_after: Some(Duration::from_secs(1))
        }),
        Some(Duration::from_secs(1))
    );

    // `provider(name)`: `state()`, `execute(|| async { … })`, `force_open()`, `reset()`.
    let p = resilience::provider("contract-handle");
    assert_eq!(p.state(), CircuitState::Closed);
    let n: Result<u32, std::io::Error> = p.execute(|| async { Ok(7) }).await;
    assert_eq!(n.unwrap(), 7);
    p.force_open();
    let r: Result<u32, UploadError> = p.execute(|| async { Ok(7) }).await;
    let Err(UploadError::Resilience(e)) = r else {
        panic!("{r:?}");
    };
    assert_eq!(circuit_open(&e), Some(("contract-handle", None)));
    p.reset();
    assert_eq!(p.state(), CircuitState::Closed);

    // An open breaker after failures: `Open` with its time, `HalfOpen` after it.
    let q = resilience::provider("contract-open");
    for _ in 0..5 {
        let r: Result<(), UploadError> = q.execute(|| async { Err(UploadError::Flaky) }).await;
        assert!(r.is_err());
    }
    assert_eq!(q.state(), CircuitState::Open);
    let r: Result<(), UploadError> = q.execute(|| async { Ok(()) }).await;
    let Err(UploadError::Resilience(e)) = r else {
        panic!("{r:?}");
    };
    assert_eq!(
        circuit_open(&e),
        Some(("contract-open", Some(Duration::from_secs(60))))
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(q.state(), CircuitState::HalfOpen);

    // An attempt cut off by its timeout comes back as the attempt-timeout variant.
    let t = resilience::configure(
        "contract-timeout",
        resilience::Settings::new()
            .max_attempts(1)
            .attempt_timeout(Some(Duration::from_millis(10))),
    )
    .unwrap();
    let r: Result<(), UploadError> = t
        .execute(|| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        })
        .await;
    let Err(UploadError::Resilience(e)) = r else {
        panic!("{r:?}");
    };
    assert_eq!(attempt_timeout(&e), Some(Duration::from_millis(10)));
}

/// Issue 2's global variables, "exactly these names": each is one the library reads.
#[test]
fn issue_2_s_variables_are_read() {
    let ours: Vec<&str> = resilience::variables().collect();
    for name in [
        "RESILIENCE_ENABLED",
        "RESILIENCE_RETRY_ENABLED",
        "RETRY_MAX_ATTEMPTS",
        "RETRY_BASE_DELAY",
        "RETRY_MAX_DELAY",
        "RETRY_EXPONENTIAL_BASE",
        "RETRY_JITTER",
        "RESILIENCE_CIRCUIT_BREAKER_ENABLED",
        "CIRCUIT_BREAKER_FAILURE_THRESHOLD",
        "CIRCUIT_BREAKER_SUCCESS_THRESHOLD",
        "CIRCUIT_BREAKER_TIMEOUT",
        "CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS",
    ] {
        assert!(ours.contains(&name), "{name} is not read: {ours:?}");
    }
}

/// Issue 4's `resilience::telemetry::serve(addr)`, with its address parsed where it is given,
/// serving `/metrics` with the seven families the issue names, and `/health`. The only test in
/// this binary that installs the process's recorder.
#[tokio::test]
async fn issue_4_s_serve_and_its_metrics() {
    let server = resilience::telemetry::serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // One call that retries, on a provider of its own: every family has a sample.
    let p = resilience::configure(
        "contract-serve",
        resilience::Settings::new().base_delay(Duration::from_millis(1)),
    )
    .unwrap();
    let tries = AtomicU32::new(0);
    let r: Result<(), UploadError> = p
        .execute(|| async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 => Err(UploadError::Flaky),
                _ => Ok(()),
            }
        })
        .await;
    assert!(r.is_ok());
    // The paths as the issue names them.
    let addr = server.local_addr();
    let (status, metrics) = common::get(&format!("http://{addr}/metrics")).await;
    assert_eq!(status, 200);
    for family in [
        "resilience_calls_total",
        "resilience_attempts_total",
        "resilience_retries_total",
        "resilience_retry_budget_exhausted_total",
        "resilience_call_duration_seconds",
        "resilience_circuit_state",
        "resilience_circuit_transitions_total",
    ] {
        assert!(
            metrics.contains(&format!("# HELP {family} ")),
            "no {family}:\n{metrics}"
        );
    }
    assert!(metrics.contains(
        "resilience_calls_total{provider=\"contract-serve\",method=\"execute\",outcome=\"success\"} 1"
    ));
    let (status, body) = common::get(&format!("http://{addr}/health")).await;
    assert!(matches!(status, 200 | 503), "{status}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["providers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "contract-serve"),
        "{body}"
    );
}
