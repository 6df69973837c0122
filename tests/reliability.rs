//! The promise, held against a real HTTP fault server on 127.0.0.1: 85% first-attempt success
//! becomes 99%+, an outage is cut off at once and recovered from within a breaker timeout, a
//! healthy provider is never cut off, and nothing is lost or recorded twice.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{UploadError, Uploaded, client, upload_once};
use resilience::{CallSite, CircuitState, ResilienceError, Settings};
use resilience_testkit::{Fault, FaultServer, Faults, Outage};

const BODY: &[u8] = b"file contents";

/// Small delays and a short breaker timeout, so the suite stays fast; everything else default.
fn fast() -> Settings {
    Settings::new()
        .base_delay(Duration::from_millis(2))
        .max_delay(Duration::from_millis(50))
        .breaker_timeout(Duration::from_millis(300))
}

async fn upload(
    site: &'static CallSite,
    c: &reqwest::Client,
    url: &str,
) -> Result<Uploaded, UploadError> {
    site.execute(|| upload_once(c, url, BODY)).await
}

/// Metric values for `provider` from the process's Prometheus recorder.
fn metric(name: &str, provider: &str, label: Option<(&str, &str)>) -> f64 {
    let text = resilience::telemetry::install_recorder().unwrap().render();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && s.labels.get("provider") == Some(provider))
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// 1. Transient faults at 15%, 2,000 sequential calls, default 3 attempts: at least 99% succeed,
/// and with the seed fixed the count is the same on every run.
#[tokio::test]
async fn transient_faults_at_15_percent_reach_99_percent() {
    static RUN_A: CallSite = CallSite::new("rel-transient-a", "upload");
    static RUN_B: CallSite = CallSite::new("rel-transient-b", "upload");
    let mut results = Vec::new();
    for (site, name) in [(&RUN_A, "rel-transient-a"), (&RUN_B, "rel-transient-b")] {
        // Breaker timeout 0: if five failures in a row ever open the breaker, the next call
        // probes at once, so the run does not depend on timing and the count is reproducible.
        resilience::configure(name, fast().breaker_timeout(Duration::ZERO)).unwrap();
        let server = FaultServer::start(Faults::transient(0.15, 2026))
            .await
            .unwrap();
        let c = client();
        let mut ok = 0;
        for _ in 0..2000 {
            ok += upload(site, &c, &server.upload_url()).await.is_ok() as u32;
        }
        let stats = server.stats();
        let first_attempt_faults = stats.faults as f64 / stats.requests as f64;
        assert!(
            (0.12..0.18).contains(&first_attempt_faults),
            "fault rate {first_attempt_faults}"
        );
        assert_eq!(
            stats.uploads_accepted,
            u64::from(ok),
            "every success was accepted once"
        );
        results.push((ok, stats.requests));
    }
    let (ok, requests) = results[0];
    assert!(ok >= 1980, "final success {ok}/2000 is below 99%");
    assert_eq!(
        results[0], results[1],
        "the same seed gives the same numbers"
    );
    eprintln!("transient 15%: {ok}/2000 succeeded with {requests} requests");
}

/// 2. Outage: the breaker opens after the threshold; while open only probes reach the server;
/// after recovery it closes within the timeout plus the success threshold's probes.
#[tokio::test]
async fn outage_is_cut_off_and_recovered_from() {
    static SITE: CallSite = CallSite::new("rel-outage", "upload");
    let timeout = Duration::from_millis(300);
    let p = resilience::configure(
        "rel-outage",
        fast().breaker_timeout(timeout).success_threshold(2),
    )
    .unwrap();
    let server = FaultServer::start(Faults::none()).await.unwrap();
    let c = client();
    server.outage(Outage::Every(Fault::Status(503)));
    // Bounded: a breaker that never opens (switched off, say) fails here, not hangs.
    for calls in 0.. {
        if p.state() == CircuitState::Open {
            break;
        }
        assert!(calls < 5, "not open after {calls} calls");
        assert!(upload(&SITE, &c, &server.upload_url()).await.is_err());
    }
    assert_eq!(
        server.stats().requests,
        5,
        "opened after exactly CIRCUIT_BREAKER_FAILURE_THRESHOLD failures"
    );

    // Counted, not timed: every call while the breaker is open is either rejected without a
    // request or is one probe, and only one probe per open window reaches the server.
    let opened_requests = server.stats().requests;
    let (mut calls, mut rejected, mut probes) = (0u64, 0u64, 0u64);
    while probes < 2 {
        let before = server.stats().requests;
        match upload(&SITE, &c, &server.upload_url()).await {
            Err(UploadError::Resilience(ResilienceError::CircuitOpen { .. })) => rejected += 1,
            Err(UploadError::Http(e)) => {
                assert_eq!(e.status(), 503);
                probes += 1;
                assert_eq!(p.state(), CircuitState::Open, "a failed probe reopens");
            }
            other => panic!("expected a rejection or a failed probe, got {other:?}"),
        }
        calls += 1;
        let reached = server.stats().requests - before;
        assert!(reached <= 1, "a probe is one attempt, no retry: {reached}");
        assert!(calls < 100_000, "no probe let through after {calls} calls");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        server.stats().requests - opened_requests,
        probes,
        "only the probes reached the server"
    );
    assert_eq!(rejected + probes, calls, "every other call was rejected");
    assert!(rejected > 0);

    server.recover();
    // Closed by exactly the success threshold's probes (2), the first one let in as soon as
    // the current window ends; no probe after the recovery fails.
    let recovered_requests = server.stats().requests;
    let start = Instant::now();
    while p.state() != CircuitState::Closed {
        match upload(&SITE, &c, &server.upload_url()).await {
            Ok(_) | Err(UploadError::Resilience(ResilienceError::CircuitOpen { .. })) => {}
            other => panic!("after recovery: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        // A bound for a hang, not a speed.
        assert!(start.elapsed() < Duration::from_secs(10), "never closed");
    }
    assert_eq!(server.stats().requests - recovered_requests, 2);
    assert!(upload(&SITE, &c, &server.upload_url()).await.is_ok());
    eprintln!("outage: {probes} probes, {rejected} rejections");
}

/// 3. A 400: exactly one attempt, the breaker unaffected.
#[tokio::test]
async fn bad_request_is_not_retried_and_not_a_failure() {
    static SITE: CallSite = CallSite::new("rel-400", "upload");
    let p = resilience::configure("rel-400", fast()).unwrap();
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.script([Fault::Status(400)]);
    match upload(&SITE, &client(), &server.upload_url()).await {
        Err(UploadError::Http(e)) => assert_eq!(e.status(), 400),
        other => panic!("expected the 400, got {other:?}"),
    }
    assert_eq!(server.stats().requests, 1);
    assert_eq!(
        (p.state(), p.consecutive_failures()),
        (CircuitState::Closed, 0)
    );
}

/// 4. A 429 with `Retry-After: 1`: the next attempt comes no earlier than a second later.
#[tokio::test]
async fn retry_after_is_respected() {
    static SITE: CallSite = CallSite::new("rel-429", "upload");
    resilience::configure("rel-429", fast().max_delay(Duration::from_secs(5))).unwrap();
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.script([Fault::TooManyRequests {
        retry_after_secs: 1,
    }]);
    let up = upload(&SITE, &client(), &server.upload_url())
        .await
        .expect("second attempt succeeds");
    let times = server.requests_for(&up.key);
    assert_eq!(times.len(), 2);
    assert!(
        times[1] - times[0] >= Duration::from_secs(1),
        "retried after {:?}",
        times[1] - times[0]
    );
}

/// 5. Calls dropped mid-flight while the breaker is half-open do not wedge it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_half_open_calls_do_not_wedge_the_breaker() {
    static SITE: CallSite = CallSite::new("rel-cancel", "upload");
    let p = resilience::configure(
        "rel-cancel",
        fast()
            .failure_threshold(2)
            .half_open_max_calls(2)
            .success_threshold(2)
            .breaker_timeout(Duration::from_millis(100)),
    )
    .unwrap();
    let server = FaultServer::start(Faults::none()).await.unwrap();
    let c = client();
    server.outage(Outage::Every(Fault::Status(503)));
    // One call of up to 3 attempts: two failures open the breaker.
    assert!(upload(&SITE, &c, &server.upload_url()).await.is_err());
    assert_eq!(p.state(), CircuitState::Open);
    server.outage(Outage::Every(Fault::Slow(Duration::from_secs(30))));
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(p.state(), CircuitState::HalfOpen);
    let url = server.upload_url();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (c, url) = (c.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            // The caller gives up: the call's future is dropped mid-flight.
            tokio::time::timeout(Duration::from_millis(30), upload(&SITE, &c, &url))
                .await
                .is_err()
        }));
    }
    let mut cancelled = 0;
    for t in tasks {
        cancelled += t.await.unwrap() as u32;
    }
    assert!(cancelled >= 1, "the probes hung and were cancelled");
    server.recover();
    // The cancelled probes gave their slots back as they were dropped: the next calls are
    // let in at once as probes and close the breaker (had the slots been kept, they would be
    // refused until the probes' wait, a breaker timeout, freed them).
    assert_eq!(p.state(), CircuitState::HalfOpen);
    for n in 1..=2 {
        let r = upload(&SITE, &c, &server.upload_url()).await;
        assert!(r.is_ok(), "probe {n} after the cancellations: {r:?}");
    }
    assert_eq!(p.state(), CircuitState::Closed);
}

/// 6. Soak: 64 tasks on a 2-thread runtime, 20,000 calls with faults. Every call has exactly
/// one outcome, the metrics add up, and the database rows equal the server's accepted keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_64_tasks_20000_calls_nothing_lost_nothing_twice() {
    static SITE: CallSite = CallSite::new("rel-soak", "upload");
    resilience::telemetry::install_recorder().unwrap();
    resilience::configure(
        "rel-soak",
        fast().breaker_timeout(Duration::from_millis(50)),
    )
    .unwrap();
    let server = FaultServer::start(Faults::transient(0.15, 7))
        .await
        .unwrap();
    let db = Arc::new(Mutex::new(rusqlite::Connection::open_in_memory().unwrap()));
    db.lock()
        .unwrap()
        .execute(
            "CREATE TABLE uploads (idempotency_key TEXT PRIMARY KEY, file_id TEXT NOT NULL)",
            [],
        )
        .unwrap();
    let (ok, failed, rejected) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    const TASKS: u64 = 64;
    const PER_TASK: u64 = 313; // 64 × 313 = 20,032 calls
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (c, url, db) = (client(), server.upload_url(), db.clone());
        let (ok, failed, rejected) = (ok.clone(), failed.clone(), rejected.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..PER_TASK {
                match upload(&SITE, &c, &url).await {
                    Ok(up) => {
                        // Recorded only after the upload succeeded; the key makes it idempotent.
                        let inserted = db
                            .lock()
                            .unwrap()
                            .execute(
                                "INSERT INTO uploads VALUES (?1, ?2)",
                                (&up.key, &up.file_id),
                            )
                            .unwrap();
                        assert_eq!(inserted, 1, "recorded twice");
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(UploadError::Resilience(ResilienceError::CircuitOpen {
                        retry_in, ..
                    })) => {
                        rejected.fetch_add(1, Ordering::Relaxed);
                        // As a client should, and the main job does: back off until the
                        // probe. Looping straight back, 64 tasks spent most of their calls
                        // inside one 50 ms opening (95% of them in one run), and the soak
                        // then covered a thousand uploads, not twenty thousand.
                        tokio::time::sleep(retry_in.unwrap_or(Duration::from_millis(1))).await;
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (ok, failed, rejected) = (
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        rejected.load(Ordering::Relaxed),
    );
    let calls = TASKS * PER_TASK;
    assert_eq!(
        ok + failed + rejected,
        calls,
        "every call ended with exactly one outcome"
    );
    assert!(
        ok >= calls * 9 / 10,
        "the soak covers uploads, not rejections: {ok} of {calls} succeeded"
    );
    let m = |outcome| {
        metric(
            "resilience_calls_total",
            "rel-soak",
            Some(("outcome", outcome)),
        ) as u64
    };
    assert_eq!(m("success"), ok);
    assert_eq!(m("failure") + m("rejected"), failed + rejected);
    assert_eq!(
        m("success") + m("failure") + m("rejected"),
        calls,
        "the counters add up to the calls"
    );
    let attempts = metric("resilience_attempts_total", "rel-soak", None) as u64;
    assert_eq!(
        attempts,
        server.stats().requests,
        "every request is one counted attempt"
    );
    let rows: BTreeSet<String> = {
        let db = db.lock().unwrap();
        let mut stmt = db.prepare("SELECT idempotency_key FROM uploads").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let accepted: BTreeSet<String> = server.accepted_keys().into_iter().collect();
    assert_eq!(rows.len() as u64, ok);
    assert_eq!(
        rows, accepted,
        "rows equal the server's accepted unique keys"
    );
    let opened = metric(
        "resilience_circuit_transitions_total",
        "rel-soak",
        Some(("to", "open")),
    );
    eprintln!(
        "soak: opened {opened} times; {ok} ok, {failed} failed, {rejected} rejected of {calls}; {} requests, {} duplicates",
        server.stats().requests,
        server.stats().duplicates
    );
}

/// 7. An outage of one provider changes nothing for the other.
#[tokio::test]
async fn providers_are_isolated_during_an_outage() {
    static DOWN: CallSite = CallSite::new("rel-iso-down", "upload");
    static UP: CallSite = CallSite::new("rel-iso-up", "upload");
    let down = resilience::configure("rel-iso-down", fast()).unwrap();
    let up = resilience::configure("rel-iso-up", fast()).unwrap();
    let (bad, good) = (
        FaultServer::start(Faults::none()).await.unwrap(),
        FaultServer::start(Faults::none()).await.unwrap(),
    );
    bad.outage(Outage::Refuse);
    let c = client();
    for _ in 0..200 {
        let _ = upload(&DOWN, &c, &bad.upload_url()).await;
        assert!(upload(&UP, &c, &good.upload_url()).await.is_ok());
    }
    assert!(down.state().is_open() || down.state() == CircuitState::HalfOpen);
    assert_eq!(
        (up.state(), up.consecutive_failures()),
        (CircuitState::Closed, 0)
    );
    assert_eq!(good.stats().requests, 200);
}

/// 8. A healthy provider (1% faults, never two in a row) never opens its breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_provider_never_opens() {
    static SITE: CallSite = CallSite::new("rel-healthy", "upload");
    resilience::telemetry::install_recorder().unwrap();
    let p = resilience::configure("rel-healthy", fast()).unwrap();
    let server = FaultServer::start(Faults {
        no_consecutive: true,
        ..Faults::transient(0.01, 11)
    })
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (c, url) = (client(), server.upload_url());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            for _ in 0..250 {
                ok += upload(&SITE, &c, &url).await.is_ok() as u32;
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    assert_eq!(ok, 2000, "every call succeeded");
    assert!(server.stats().faults > 0, "faults were injected");
    assert_eq!(p.state(), CircuitState::Closed);
    let transitions: HashMap<&str, f64> = [(
        "open",
        metric(
            "resilience_circuit_transitions_total",
            "rel-healthy",
            Some(("to", "open")),
        ),
    )]
    .into();
    assert_eq!(transitions["open"], 0.0, "the breaker never opened");
}
