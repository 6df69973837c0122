//! A service's own test suite, as a team that put `#[resilient]` on its `LlmClient` would write
//! it: failover between two providers, a provider outage that opens the breaker, retries,
//! `Retry-After`, attempt and total timeouts on Tokio's paused clock, per-test configuration,
//! `reset()` and `drain()`, every test under `testing::isolate()` on the same provider names
//! (`kimi`, `glm`), so that `cargo test` runs them at once. Against the testkit's fault server
//! on loopback. Needs the `testing` feature.

// Without the runner's resilience variables, as every test binary (tests/hermetic).
mod hermetic;

use std::sync::Arc;
use std::time::Duration;

use resilience::testing::isolate;
use resilience::{
    Builder, CircuitState, Classify, HttpError, Jitter, ResilienceError, ResponseExt, Settings,
    resilient,
};
use resilience_testkit::{Fault, FaultServer, Faults, Outage};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// The service under test.

#[derive(Debug, thiserror::Error, Classify)]
enum LlmError {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Kimi,
    Glm,
}

struct LlmClient {
    http: reqwest::Client,
    kimi: String,
    glm: String,
}

impl LlmClient {
    fn new(kimi: &FaultServer, glm: &FaultServer) -> Self {
        LlmClient {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            kimi: kimi.upload_url(),
            glm: glm.upload_url(),
        }
    }

    async fn post(&self, url: &str, body: Vec<u8>) -> Result<String, LlmError> {
        let call = resilience::current_call().expect("inside a resilient call");
        Ok(self
            .http
            .post(url)
            .header("Idempotency-Key", call.idempotency_key)
            .body(body)
            .send()
            .await?
            .check_status()?
            .text()
            .await?)
    }

    #[resilient(provider = "kimi")]
    async fn kimi_chat(&self, prompt: &str) -> Result<String, LlmError> {
        self.post(&self.kimi, prompt.as_bytes().to_vec()).await
    }

    #[resilient(provider = "glm")]
    async fn glm_chat(&self, prompt: &str) -> Result<String, LlmError> {
        self.post(&self.glm, prompt.as_bytes().to_vec()).await
    }

    #[resilient(provider = "kimi")]
    async fn kimi_upload(&self, bytes: Vec<u8>) -> Result<String, LlmError> {
        self.post(&self.kimi, bytes).await
    }

    /// The service's failover: kimi first, glm when kimi's breaker refuses or its retries are
    /// spent on a transient error. A permanent error is the caller's.
    async fn chat(&self, prompt: &str) -> Result<(Which, String), LlmError> {
        match self.kimi_chat(prompt).await {
            Ok(s) => Ok((Which::Kimi, s)),
            Err(e) if !matches!(e.classify(), resilience::ErrorClass::Permanent) || is_open(&e) => {
                self.glm_chat(prompt).await.map(|s| (Which::Glm, s))
            }
            Err(e) => Err(e),
        }
    }
}

fn is_open(e: &LlmError) -> bool {
    matches!(e, LlmError::Resilience(ResilienceError::CircuitOpen { .. }))
}

/// The service's start-up configuration, called from each test as `main` calls it.
fn start_up(kimi: Settings) -> Result<(), resilience::ConfigError> {
    let quick = Settings::new()
        .jitter(Jitter::None)
        .base_delay(Duration::from_secs(1))
        .max_attempts(3);
    Builder::new()
        .defaults(quick)
        .provider("kimi", kimi)
        .provider("glm", Settings::new().failure_threshold(5))
        .init()
}

async fn servers() -> (Arc<FaultServer>, Arc<FaultServer>) {
    let kimi = FaultServer::start(Faults::none()).await.unwrap();
    let glm = FaultServer::start(Faults::none()).await.unwrap();
    (Arc::new(kimi), Arc::new(glm))
}

// ---------------------------------------------------------------------------------------------
// Failover and breaker.

#[tokio::test(start_paused = true)]
async fn a_kimi_outage_opens_its_breaker_and_chat_fails_over_to_glm() {
    let _isolated = isolate();
    let timeout = Duration::from_secs(30);
    start_up(
        Settings::new()
            .failure_threshold(3)
            .breaker_timeout(timeout)
            .success_threshold(1),
    )
    .unwrap();
    let (kimi_srv, glm_srv) = servers().await;
    let client = LlmClient::new(&kimi_srv, &glm_srv);
    kimi_srv.outage(Outage::Every(Fault::Status(503)));

    let (which, _) = client.chat("hi").await.unwrap();
    assert_eq!(which, Which::Glm);
    assert_eq!(
        kimi_srv.stats().requests,
        3,
        "three attempts, then the breaker opened"
    );
    let kimi = resilience::provider("kimi");
    assert_eq!(kimi.state(), CircuitState::Open);
    assert_eq!(
        kimi.retry_in(),
        Some(timeout),
        "the paused clock has not moved"
    );

    // While open, kimi is not asked at all.
    let (which, _) = client.chat("again").await.unwrap();
    assert_eq!(which, Which::Glm);
    assert_eq!(kimi_srv.stats().requests, 3);

    // The breaker's timeout passes on the paused clock, at once.
    tokio::time::advance(timeout).await;
    assert_eq!(kimi.state(), CircuitState::HalfOpen);
    kimi_srv.recover();
    let (which, _) = client.chat("back").await.unwrap();
    assert_eq!(which, Which::Kimi);
    assert_eq!(kimi.state(), CircuitState::Closed);
    assert_eq!(resilience::provider("glm").state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn both_down_degrades_to_an_error_the_caller_can_act_on() {
    let _isolated = isolate();
    start_up(Settings::new().failure_threshold(1)).unwrap();
    let (kimi_srv, glm_srv) = servers().await;
    let client = LlmClient::new(&kimi_srv, &glm_srv);
    kimi_srv.outage(Outage::Refuse);
    glm_srv.outage(Outage::Every(Fault::Status(502)));
    let err = client.chat("hi").await.unwrap_err();
    assert!(
        matches!(err, LlmError::Http(ref h) if h.status() == 502),
        "{err:?}"
    );
    assert_eq!(resilience::provider("kimi").state(), CircuitState::Open);
    // Another call: kimi refuses at once, glm's 502s go on until its fifth failure opens it
    // (its third attempt is then refused, and the call returns the 502 it had).
    let err = client.chat("hi").await.unwrap_err();
    assert!(matches!(err, LlmError::Http(_)), "{err:?}");
    assert_eq!(
        kimi_srv.stats().requests,
        0,
        "refused connections are no requests"
    );
    assert_eq!(glm_srv.stats().requests, 5);
    assert_eq!(resilience::provider("glm").state(), CircuitState::Open);
    // Now both refuse: the caller gets CircuitOpen from glm, with when to come back.
    let err = client.chat("hi").await.unwrap_err();
    assert!(is_open(&err), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_400_is_not_failed_over_and_leaves_the_breaker_alone() {
    let _isolated = isolate();
    start_up(Settings::new().failure_threshold(1)).unwrap();
    let (kimi_srv, glm_srv) = servers().await;
    let client = LlmClient::new(&kimi_srv, &glm_srv);
    kimi_srv.script([Fault::Status(400)]);
    let err = client.chat("bad").await.unwrap_err();
    assert!(
        matches!(err, LlmError::Http(ref h) if h.status() == 400),
        "{err:?}"
    );
    assert_eq!(glm_srv.stats().requests, 0);
    assert_eq!(resilience::provider("kimi").state(), CircuitState::Closed);
    assert_eq!(resilience::provider("kimi").consecutive_failures(), 0);
}

// ---------------------------------------------------------------------------------------------
// Retries, on the paused clock.

#[tokio::test(start_paused = true)]
async fn a_call_retried_twice_is_seen_by_the_server_three_times_at_its_backoffs() {
    let _isolated = isolate();
    start_up(Settings::new().exponential_base(2.0)).unwrap();
    let (kimi_srv, glm_srv) = servers().await;
    let client = LlmClient::new(&kimi_srv, &glm_srv);
    kimi_srv.script([Fault::Status(503), Fault::Status(503)]);
    let t0 = Instant::now();
    client.kimi_upload(b"file".to_vec()).await.unwrap();
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(3),
        "1 s then 2 s, no jitter"
    );
    let keys = kimi_srv.request_keys();
    assert_eq!(keys.len(), 1, "one call, one key");
    let times = kimi_srv.requests_for(&keys[0]);
    assert_eq!(times.len(), 3, "retried twice");
    assert_eq!(times[1] - times[0], Duration::from_secs(1));
    assert_eq!(times[2] - times[1], Duration::from_secs(2));
    assert_eq!(resilience::provider("kimi").consecutive_failures(), 0);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_on_the_paused_clock() {
    let _isolated = isolate();
    start_up(Settings::new().max_delay(Duration::from_secs(600))).unwrap();
    let (kimi_srv, glm_srv) = servers().await;
    let client = LlmClient::new(&kimi_srv, &glm_srv);
    kimi_srv.script([Fault::TooManyRequests {
        retry_after_secs: 120,
    }]);
    let t0 = Instant::now();
    client.kimi_chat("hi").await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(120));
    // A 503 with Retry-After too.
    kimi_srv.script([Fault::StatusRetryAfter {
        status: 503,
        retry_after_secs: 45,
    }]);
    let t0 = Instant::now();
    client.kimi_chat("hi").await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(45));
}

#[tokio::test(start_paused = true)]
async fn an_attempt_timeout_follows_the_paused_clock() {
    let _isolated = isolate();
    let limit = Duration::from_secs(20);
    start_up(Settings::new().attempt_timeout(Some(limit))).unwrap();
    let (kimi_srv, glm_srv) = servers().await;
    let client = LlmClient::new(&kimi_srv, &glm_srv);
    kimi_srv.script([Fault::Hang]);
    let t0 = Instant::now();
    client.kimi_chat("hi").await.unwrap();
    assert_eq!(
        t0.elapsed(),
        limit + Duration::from_secs(1),
        "timeout, then 1 s backoff"
    );
    assert_eq!(kimi_srv.stats().requests, 2);
}

#[tokio::test(start_paused = true)]
async fn a_total_deadline_follows_the_paused_clock() {
    let _isolated = isolate();
    let deadline = Duration::from_secs(90);
    start_up(
        Settings::new()
            .max_attempts(10)
            .total_timeout(Some(deadline)),
    )
    .unwrap();
    let (kimi_srv, glm_srv) = servers().await;
    let client = LlmClient::new(&kimi_srv, &glm_srv);
    kimi_srv.outage(Outage::Every(Fault::Hang));
    let t0 = Instant::now();
    let err = client.kimi_chat("hi").await.unwrap_err();
    assert!(
        matches!(
            err,
            LlmError::Resilience(ResilienceError::DeadlineExceeded { .. })
        ),
        "{err:?}"
    );
    assert_eq!(t0.elapsed(), deadline);
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_refills_on_the_paused_clock() {
    let _isolated = isolate();
    start_up(
        Settings::new()
            .retry_budget_capacity(2)
            .retry_budget_ratio(0.0)
            .retry_budget_min_per_second(0.5)
            .max_attempts(2)
            .failure_threshold(100),
    )
    .unwrap();
    let (kimi_srv, glm_srv) = servers().await;
    let client = LlmClient::new(&kimi_srv, &glm_srv);
    let kimi = resilience::provider("kimi");
    kimi_srv.outage(Outage::Every(Fault::Status(503)));
    assert_eq!(kimi.retry_budget_available(), 2.0);
    // Two calls at once, each retried once after 1 s: the two tokens are taken as the
    // retries are decided, and the 1 s backoff refills half of one.
    let (a, b) = tokio::join!(client.kimi_chat("a"), client.kimi_chat("b"));
    assert!(a.is_err() && b.is_err());
    assert!(kimi.retry_budget_available() < 1.0);
    // The paused clock refills it, half a token a second, up to the capacity.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(kimi.retry_budget_available() >= 1.0);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(kimi.retry_budget_available(), 2.0);
}

// ---------------------------------------------------------------------------------------------
// Per-test configuration and reset.

#[tokio::test(start_paused = true)]
async fn this_test_gives_kimi_one_attempt() {
    let _isolated = isolate();
    start_up(Settings::new().max_attempts(1)).unwrap();
    assert_eq!(resilience::provider("kimi").config().max_attempts, 1);
    let (kimi_srv, glm_srv) = servers().await;
    let client = LlmClient::new(&kimi_srv, &glm_srv);
    kimi_srv.script([Fault::Status(503)]);
    assert!(client.kimi_chat("hi").await.is_err());
    assert_eq!(kimi_srv.stats().requests, 1);
}

#[tokio::test(start_paused = true)]
async fn this_test_gives_kimi_seven_attempts() {
    let _isolated = isolate();
    start_up(Settings::new().max_attempts(7).failure_threshold(10)).unwrap();
    assert_eq!(resilience::provider("kimi").config().max_attempts, 7);
    let (kimi_srv, glm_srv) = servers().await;
    let client = LlmClient::new(&kimi_srv, &glm_srv);
    kimi_srv.script([Fault::Status(503); 6]);
    client.kimi_chat("hi").await.unwrap();
    assert_eq!(kimi_srv.stats().requests, 7);
}

#[tokio::test(start_paused = true)]
async fn reset_closes_the_breaker_and_fills_the_budget() {
    let _isolated = isolate();
    // A budget the clock does not refill, so the retry spent shows.
    start_up(
        Settings::new()
            .failure_threshold(2)
            .retry_budget_min_per_second(0.0),
    )
    .unwrap();
    let (kimi_srv, glm_srv) = servers().await;
    let client = LlmClient::new(&kimi_srv, &glm_srv);
    let kimi = resilience::provider("kimi");
    let full = kimi.retry_budget_available();
    kimi_srv.outage(Outage::Every(Fault::Status(500)));
    assert!(client.kimi_chat("hi").await.is_err());
    assert_eq!(kimi.state(), CircuitState::Open);
    assert!(kimi.retry_budget_available() < full);
    kimi.reset();
    assert_eq!(kimi.state(), CircuitState::Closed);
    assert_eq!(kimi.consecutive_failures(), 0);
    assert_eq!(kimi.retry_budget_available(), full);
    kimi_srv.recover();
    client.kimi_chat("hi").await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Shutdown.

#[tokio::test(start_paused = true)]
async fn drain_ends_a_call_asleep_in_its_backoff_and_the_next_call_does_not_retry() {
    let _isolated = isolate();
    start_up(Settings::new().base_delay(Duration::from_secs(60))).unwrap();
    let (kimi_srv, glm_srv) = servers().await;
    let client = Arc::new(LlmClient::new(&kimi_srv, &glm_srv));
    kimi_srv.outage(Outage::Every(Fault::Status(503)));
    let t_start = Instant::now();
    let sleeping = tokio::spawn({
        let client = client.clone();
        async move { client.kimi_chat("hi").await }
    });
    // Until the first attempt has failed and the call sleeps in its 60 s backoff: polled,
    // not slept for. A sleep lets the paused clock jump to its end whenever the runtime
    // idles, the request in flight or not; a yield keeps the runtime busy, so the clock stays
    // put, and each one polls the sockets.
    let kimi = resilience::provider("kimi");
    let real_deadline = std::time::Instant::now() + Duration::from_secs(10);
    while kimi.consecutive_failures() == 0 {
        assert!(
            std::time::Instant::now() < real_deadline,
            "no attempt failed"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(Instant::now() - t_start, Duration::ZERO);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(kimi_srv.stats().requests, 1);
    assert!(!resilience::is_draining());
    resilience::drain();
    assert!(resilience::is_draining());
    let t0 = Instant::now();
    let err = sleeping.await.unwrap().unwrap_err();
    assert_eq!(t0.elapsed(), Duration::ZERO, "woken at once");
    match err {
        LlmError::Resilience(ResilienceError::Draining { retry_in, .. }) => {
            assert_eq!(retry_in, Some(Duration::from_secs(50)));
        }
        other => panic!("{other:?}"),
    }
    // A new call still makes its first attempt, and no retry.
    assert!(client.kimi_chat("hi").await.is_err());
    assert_eq!(kimi_srv.stats().requests, 2);
    // glm is draining too: it is the isolation that drains.
    assert!(client.glm_chat("hi").await.is_ok());
}

#[test]
fn a_drained_isolation_leaves_the_process_and_other_isolations_undrained() {
    {
        let _isolated = isolate();
        resilience::drain();
        assert!(resilience::is_draining());
    }
    assert!(!resilience::is_draining());
    let _other = isolate();
    assert!(!resilience::is_draining());
}
