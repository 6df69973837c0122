//! End-to-end behaviour under fault profiles the main job and the reliability suite do not
//! cover, against the real fault server on 127.0.0.1 (`resilience-testkit`). Every test runs
//! on Tokio's paused clock (`start_paused`): the server's slow answers, outages and arrival
//! times, the backoff and the breaker all run on it, so minutes pass in milliseconds and the
//! numbers are exact. Each test has providers of its own names.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::client;
use resilience::{CallSite, CircuitState, HttpError, ResilienceError, ResponseExt, Settings};
use resilience_testkit::{Fault, FaultServer, Faults, Outage};
use tokio::time::Instant;

const BODY: &[u8] = b"file contents";

/// The error type the README recommends: derived, each variant forwarding its field's class
/// and `Retry-After`.
#[derive(Debug, resilience::Classify)]
enum UploadError {
    #[classify(transparent)]
    Network(reqwest::Error),
    #[classify(transparent)]
    Http(HttpError),
    #[classify(transparent)]
    Resilience(ResilienceError),
}

impl From<ResilienceError> for UploadError {
    fn from(e: ResilienceError) -> Self {
        UploadError::Resilience(e)
    }
}

#[derive(Debug)]
struct Uploaded {
    key: String,
}

/// One attempt: POST the body with the call's idempotency key.
async fn upload_once(c: &reqwest::Client, url: &str) -> Result<Uploaded, UploadError> {
    let key = resilience::current_call()
        .expect("inside a call")
        .idempotency_key
        .to_string();
    let resp = c
        .post(url)
        .header("Idempotency-Key", &key)
        .body(BODY)
        .send()
        .await
        .map_err(UploadError::Network)?
        .check_status()
        .map_err(UploadError::Http)?;
    let _: serde_json::Value = resp.json().await.map_err(UploadError::Network)?;
    Ok(Uploaded { key })
}

async fn upload(
    site: &'static CallSite,
    c: &reqwest::Client,
    url: &str,
) -> Result<Uploaded, UploadError> {
    site.execute(|| upload_once(c, url)).await
}

/// The main job's settings: base delay 50 ms, at most 1 s, a 2 s breaker timeout; the rest
/// default (3 attempts, 5 failures open it, 2 probe successes close it, 1 probe at a time).
fn main_job() -> Settings {
    Settings::new()
        .base_delay(Duration::from_millis(50))
        .max_delay(Duration::from_secs(1))
        .breaker_timeout(Duration::from_secs(2))
}

fn is_open_rejection(r: &Result<Uploaded, UploadError>) -> bool {
    matches!(
        r,
        Err(UploadError::Resilience(ResilienceError::CircuitOpen { .. }))
    )
}

/// Fails calls until the breaker opens (an outage of 503s), bounded.
async fn open_it(site: &'static CallSite, p: resilience::Provider, server: &FaultServer) {
    server.outage(Outage::Every(Fault::Status(503)));
    let c = client();
    for _ in 0..10 {
        if p.state() == CircuitState::Open {
            return;
        }
        let _ = upload(site, &c, &server.upload_url()).await;
    }
    assert_eq!(
        p.state(),
        CircuitState::Open,
        "the outage opened the breaker"
    );
}

/// A provider down for 90 s (503 on every request, or connection refused) then back, under
/// steady traffic (a call every 250 ms): how long after it comes back is the breaker closed?
/// The story's target is "within a minute". Returns the seconds from recovery to the close.
async fn outage_then_recovery(
    site: &'static CallSite,
    p: resilience::Provider,
    outage: Outage,
) -> f64 {
    let server = FaultServer::start(Faults::none()).await.unwrap();
    let c = client();
    let start = Instant::now();
    server.outage(outage);
    let mut recovered_at = None;
    loop {
        let now = Instant::now();
        if recovered_at.is_none() && now - start >= Duration::from_secs(90) {
            server.recover();
            recovered_at = Some(now);
        }
        if let Some(at) = recovered_at {
            if p.state() == CircuitState::Closed {
                return (now - at).as_secs_f64();
            }
            assert!(now - at < Duration::from_secs(600), "never closed");
        }
        let _ = upload(site, &c, &server.upload_url()).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Measured on the paused clock. With the main job's 2 s timeout the breaker closes about a
/// breaker timeout after the provider is back; with the plan's 60 s default it took 30–34 s
/// for this outage, in runs (the README says the default cannot promise a minute: the probe may come a
/// full timeout after the recovery, and a round that meets a fault costs another).
#[tokio::test(start_paused = true)]
async fn a_90_second_outage_then_recovery() {
    static DEFAULTS_503: CallSite = CallSite::new("e2e-outage-defaults-503", "upload");
    static MAIN_503: CallSite = CallSite::new("e2e-outage-main-503", "upload");
    static MAIN_REFUSE: CallSite = CallSite::new("e2e-outage-main-refuse", "upload");
    let defaults = resilience::configure("e2e-outage-defaults-503", Settings::new()).unwrap();
    let main = resilience::configure("e2e-outage-main-503", main_job()).unwrap();
    let refuse = resilience::configure("e2e-outage-main-refuse", main_job()).unwrap();
    let every_503 = Outage::Every(Fault::Status(503));
    let d = outage_then_recovery(&DEFAULTS_503, defaults, every_503).await;
    let m = outage_then_recovery(&MAIN_503, main, every_503).await;
    let r = outage_then_recovery(&MAIN_REFUSE, refuse, Outage::Refuse).await;
    eprintln!(
        "closed after recovery: defaults (60 s) + 503s {d:.2}s; main job (2 s) + 503s {m:.2}s; main job + refused {r:.2}s"
    );
    assert!(d <= 60.0 && m <= 3.0 && r <= 3.0, "{d} {m} {r}");
}

/// A provider that is back but whose uploads take longer than the breaker timeout (3 s
/// against the main job's 2 s: a large file) must still close the breaker. The README said:
/// "probes
/// that hold every slot without answering for CIRCUIT_BREAKER_TIMEOUT ... stop holding them:
/// the next call starts a new round of probes (from zero successes), their late answers are
/// ignored". Under steady traffic every probe is abandoned before it answers, so every
/// success is ignored, and the breaker stays half-open for good (one upload at a time gets
/// through, the others are rejected), although every probe succeeded.
#[tokio::test(start_paused = true)]
async fn slow_successes_longer_than_the_breaker_timeout_still_close_the_breaker() {
    static SITE: CallSite = CallSite::new("e2e-slow-probes", "upload");
    let p = resilience::configure("e2e-slow-probes", main_job()).unwrap();
    let server = Arc::new(FaultServer::start(Faults::none()).await.unwrap());
    open_it(&SITE, p, &server).await;
    // Back, but every upload takes 3 s.
    server.outage(Outage::Every(Fault::Slow(Duration::from_secs(3))));
    let url = server.upload_url();
    let back = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    let mut closed_after = None;
    // A call every 500 ms for two minutes.
    for _ in 0..240 {
        let url = url.clone();
        calls.spawn(async move { upload(&SITE, &client(), &url).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        if p.state() == CircuitState::Closed {
            closed_after = Some(back.elapsed());
            break;
        }
    }
    let (mut ok, mut rejected, mut other) = (0, 0, 0);
    while let Some(r) = calls.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            r if is_open_rejection(&r) => rejected += 1,
            _ => other += 1,
        }
    }
    eprintln!(
        "slow probes: closed after {closed_after:?}; {ok} ok, {rejected} rejected, {other} other; server accepted {}",
        server.stats().uploads_accepted
    );
    assert!(
        closed_after.is_some_and(|d| d < Duration::from_secs(60)),
        "the breaker never closed in 2 minutes though every probe succeeded ({ok} uploads \
         went through, {rejected} calls rejected)"
    );
}

/// 200 callers at once on a half-open breaker (one probe slot, two successes to close): how
/// many reach the server? Exactly the probe slots: one per round; the others are refused at
/// once with `CircuitOpen { retry_in: None }`.
#[tokio::test(start_paused = true)]
async fn two_hundred_callers_on_a_half_open_breaker() {
    static SITE: CallSite = CallSite::new("e2e-herd", "upload");
    let p = resilience::configure("e2e-herd", main_job()).unwrap();
    let server = Arc::new(FaultServer::start(Faults::none()).await.unwrap());
    open_it(&SITE, p, &server).await;
    server.outage(Outage::Every(Fault::Slow(Duration::from_millis(100))));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(p.state(), CircuitState::HalfOpen);
    for round in 1..=2 {
        let before = server.stats().requests;
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let url = server.upload_url();
            calls.spawn(async move { upload(&SITE, &client(), &url).await });
        }
        let (mut ok, mut rejected_without_time) = (0, 0);
        while let Some(r) = calls.join_next().await {
            match r.unwrap() {
                Ok(_) => ok += 1,
                Err(UploadError::Resilience(ResilienceError::CircuitOpen {
                    retry_in: None,
                    ..
                })) => rejected_without_time += 1,
                other => panic!("round {round}: {other:?}"),
            }
        }
        let reached = server.stats().requests - before;
        eprintln!(
            "half-open round {round}: {reached} request(s) reached the server, {ok} ok, {rejected_without_time} rejected; state {}",
            p.state()
        );
        assert_eq!((reached, ok, rejected_without_time), (1, 1, 199));
    }
    assert_eq!(p.state(), CircuitState::Closed);
}

/// `Retry-After` in its shapes, on a 429 and a 503: the gap between the two requests of one
/// call (the server's arrival times, on the paused clock), the call's result, the requests.
#[tokio::test(start_paused = true)]
async fn retry_after_shapes() {
    static SITE: CallSite = CallSite::new("e2e-retry-after", "upload");
    // No jitter and a 1 s base: a retry without a usable header comes after exactly 1 s.
    let p = resilience::configure(
        "e2e-retry-after",
        Settings::new()
            .jitter(resilience::Jitter::None)
            .failure_threshold(100),
    )
    .unwrap();
    let server = FaultServer::start(Faults::none()).await.unwrap();
    let c = client();
    // An HTTP date 5 s from now (the header has whole seconds: 4–5 s are left when it is read).
    let in_5s: &'static str = Box::leak(
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(5))
            .into_boxed_str(),
    );
    // Status, header, and the gap expected in seconds (at least, at most), or none: no retry.
    type Case = (u16, &'static str, Option<(f64, f64)>);
    let cases: [Case; 8] = [
        (429, "2", Some((2.0, 2.0))),
        (429, in_5s, Some((4.0, 5.0))),
        (429, "-1", Some((1.0, 1.0))), // invalid: ignored, plain backoff
        (429, "soon", Some((1.0, 1.0))),
        (429, "0", Some((1.0, 1.0))),
        (429, "86400", None), // above the 60 s max delay: gives up at once
        (503, "3", Some((3.0, 3.0))),
        (503, "86400", None),
    ];
    for (status, value, expect) in cases {
        server.script([Fault::RawRetryAfter {
            status,
            retry_after: value,
        }]);
        let before = server.stats().requests;
        let r = upload(&SITE, &c, &server.upload_url()).await;
        let requests = server.stats().requests - before;
        match expect {
            Some((lo, hi)) => {
                let key = r.as_ref().expect("the retry succeeds").key.clone();
                let t = server.requests_for(&key);
                let gap = (t[1] - t[0]).as_secs_f64();
                eprintln!("{status} Retry-After {value:?}: retried after {gap:.3}s");
                assert!(
                    (lo - 0.01..=hi + 0.01).contains(&gap),
                    "{status} {value:?}: {gap}"
                );
                assert_eq!(requests, 2);
            }
            None => {
                eprintln!(
                    "{status} Retry-After {value:?}: gave up at once with {:?}",
                    r.as_ref().err()
                );
                assert!(
                    matches!(&r, Err(UploadError::Http(e)) if e.status() == status),
                    "{r:?}"
                );
                assert_eq!(requests, 1);
            }
        }
    }
    assert_eq!(p.state(), CircuitState::Closed);

    // Retry-After beyond the call's deadline: the call fails at once with the 429.
    static DEADLINE: CallSite = CallSite::new("e2e-retry-after-deadline", "upload");
    resilience::configure(
        "e2e-retry-after-deadline",
        Settings::new().total_timeout(Some(Duration::from_secs(5))),
    )
    .unwrap();
    server.script([Fault::TooManyRequests {
        retry_after_secs: 10,
    }]);
    let started = Instant::now();
    let before = server.stats().requests;
    let r = upload(&DEADLINE, &c, &server.upload_url()).await;
    assert!(
        matches!(&r, Err(UploadError::Http(e)) if e.status() == 429),
        "{r:?}"
    );
    assert_eq!(server.stats().requests - before, 1);
    assert!(started.elapsed() < Duration::from_millis(100));
}

/// Permanent errors: one attempt each, the breaker neither closer to open nor reset.
#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried_and_leave_the_breaker_alone() {
    static SITE: CallSite = CallSite::new("e2e-permanent", "upload");
    let p = resilience::configure("e2e-permanent", main_job()).unwrap();
    let server = FaultServer::start(Faults::none()).await.unwrap();
    let c = client();
    // Two transient failures (one call: 503, then 503, then 400 ends it)...
    server.script([
        Fault::Status(503),
        Fault::Status(503),
        Fault::Status(400),
        Fault::Status(401),
        Fault::Status(404),
        Fault::Status(413),
    ]);
    let r = upload(&SITE, &c, &server.upload_url()).await;
    assert!(matches!(&r, Err(UploadError::Http(e)) if e.status() == 400));
    assert_eq!(p.consecutive_failures(), 2);
    for status in [401, 404, 413] {
        let before = server.stats().requests;
        let r = upload(&SITE, &c, &server.upload_url()).await;
        assert!(matches!(&r, Err(UploadError::Http(e)) if e.status() == status));
        assert_eq!(server.stats().requests - before, 1, "{status} not retried");
    }
    // ...neither reset nor added to by the permanent answers.
    assert_eq!(
        (p.state(), p.consecutive_failures()),
        (CircuitState::Closed, 2)
    );
}

/// A provider that is back but answers every request with a permanent error (a revoked key:
/// 401) after an outage opened its breaker: the probes' answers are neutral, so the breaker
/// stays half-open for as long as that lasts, and of 200 concurrent callers one gets the 401
/// and 199 get `CircuitOpen`, which hides the provider's real answer.
#[tokio::test(start_paused = true)]
async fn a_half_open_breaker_whose_probes_get_permanent_errors() {
    static SITE: CallSite = CallSite::new("e2e-half-open-401", "upload");
    let p = resilience::configure("e2e-half-open-401", main_job()).unwrap();
    let server = Arc::new(FaultServer::start(Faults::none()).await.unwrap());
    open_it(&SITE, p, &server).await;
    server.outage(Outage::Every(Fault::Status(401)));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let url = server.upload_url();
        calls.spawn(async move { upload(&SITE, &client(), &url).await });
    }
    let (mut unauthorized, mut rejected) = (0, 0);
    while let Some(r) = calls.join_next().await {
        match r.unwrap() {
            Err(UploadError::Http(e)) if e.status() == 401 => unauthorized += 1,
            r if is_open_rejection(&r) => rejected += 1,
            other => panic!("{other:?}"),
        }
    }
    eprintln!(
        "half-open, provider answering 401: {unauthorized} got the 401, {rejected} got CircuitOpen; state {} a minute after the outage",
        p.state()
    );
    assert_eq!(p.state(), CircuitState::HalfOpen);
}

/// A 52x (Cloudflare's "origin down / unreachable / timed out", in front of many API
/// providers) is permanent by the status table: a provider down behind such a proxy is never
/// retried and never opens its breaker.
#[tokio::test(start_paused = true)]
async fn an_outage_seen_as_cloudflare_52x_never_opens_the_breaker() {
    static SITE: CallSite = CallSite::new("e2e-522", "upload");
    let p = resilience::configure("e2e-522", main_job()).unwrap();
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.outage(Outage::Every(Fault::Status(522)));
    let c = client();
    for _ in 0..50 {
        let _ = upload(&SITE, &c, &server.upload_url()).await;
    }
    eprintln!(
        "522 outage: 50 calls, {} requests, breaker {} with {} failures",
        server.stats().requests,
        p.state(),
        p.consecutive_failures()
    );
    assert_eq!(server.stats().requests, 50);
    assert_eq!(p.state(), CircuitState::Closed);
}

/// An answer slower than `RETRY_ATTEMPT_TIMEOUT` that the server still accepts after the
/// client gave up, then a hung server (reads the request, never answers), then an answer
/// lost after the upload was accepted: each retry carries the call's one key, so a provider
/// that de-duplicates by it keeps one upload. (The duplicates counter is what a provider that
/// does not would have stored twice.)
#[tokio::test(start_paused = true)]
async fn timeouts_hangs_and_lost_answers_keep_one_upload_per_key() {
    static SITE: CallSite = CallSite::new("e2e-lost-answers", "upload");
    let p = resilience::configure(
        "e2e-lost-answers",
        main_job().attempt_timeout(Some(Duration::from_secs(1))),
    )
    .unwrap();
    let server = FaultServer::start(Faults::none()).await.unwrap();
    let c = client();

    // Slow, as the testkit's `Slow` has it: the first attempt is cut off at 1 s, and the
    // server, whose answer was to accept it at 3 s, drops it with the connection.
    server.script([Fault::Slow(Duration::from_secs(3))]);
    let up = upload(&SITE, &c, &server.upload_url()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let slow = server.stats();
    assert_eq!((slow.uploads_accepted, slow.duplicates), (1, 0), "{slow:?}");
    assert_eq!(server.requests_for(&up.key).len(), 2);

    // Processed for 3 s, and accepted then although the client left at 1 s (a provider that
    // keeps the file whatever the client does): the retry was accepted first, and the first
    // attempt's upload is the duplicate the key lets the provider recognise.
    server.script([Fault::AcceptedSlow(Duration::from_secs(3))]);
    let before = server.stats();
    let up = upload(&SITE, &c, &server.upload_url()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = server.stats();
    assert_eq!(after.uploads_accepted - before.uploads_accepted, 1);
    assert_eq!(after.duplicates - before.duplicates, 1, "{after:?}");
    assert_eq!(server.requests_for(&up.key).len(), 2);

    // Hung: both attempts time out, the third answers.
    server.script([Fault::Hang, Fault::Hang]);
    let t = Instant::now();
    let up = upload(&SITE, &c, &server.upload_url()).await.unwrap();
    assert!(t.elapsed() >= Duration::from_secs(2));
    assert_eq!(server.requests_for(&up.key).len(), 3);

    // Lost answer: accepted, the connection dropped before the answer; the retry gets the
    // same id.
    server.script([Fault::AcceptThenDrop]);
    let before = server.stats();
    let up = upload(&SITE, &c, &server.upload_url()).await.unwrap();
    let after = server.stats();
    assert_eq!(after.uploads_accepted - before.uploads_accepted, 1);
    assert_eq!(after.duplicates - before.duplicates, 1);
    assert_eq!(server.requests_for(&up.key).len(), 2);

    // Hung for good, no attempt timeout: the call never ends, and the breaker learns nothing.
    static NO_LIMIT: CallSite = CallSite::new("e2e-hang-no-limit", "upload");
    let q = resilience::configure("e2e-hang-no-limit", main_job()).unwrap();
    server.outage(Outage::Every(Fault::Hang));
    let hung = tokio::time::timeout(
        Duration::from_secs(3600),
        upload(&NO_LIMIT, &c, &server.upload_url()),
    )
    .await;
    assert!(hung.is_err(), "still waiting after an hour");
    assert_eq!(
        (q.state(), q.consecutive_failures()),
        (CircuitState::Closed, 0)
    );
    assert_eq!(p.state(), CircuitState::Closed);
}

/// A server that refuses a large upload early, as a proxy with a body-size limit does: it
/// reads the request head, answers 413 and closes the connection without reading the body.
/// Returns the URL and the count of requests.
async fn early_413_server() -> (String, Arc<std::sync::atomic::AtomicU32>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/upload", listener.local_addr().unwrap());
    let hits = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
                // Closed with the body unread.
            });
        }
    });
    (url, hits)
}

/// A 413 is permanent by the status table: one attempt, and no breaker failure. Answered
/// before the body is read (the usual way a size limit answers), what does the client see?
#[tokio::test]
async fn a_413_sent_before_the_body_is_read() {
    static SITE: CallSite = CallSite::new("e2e-early-413", "upload");
    let p = resilience::configure(
        "e2e-early-413",
        main_job().base_delay(Duration::from_millis(1)),
    )
    .unwrap();
    let (url, hits) = early_413_server().await;
    let big = vec![b'x'; 16 << 20];
    let c = client();
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let r: Result<(), UploadError> = SITE
            .execute(|| async {
                c.post(&url)
                    .body(big.clone())
                    .send()
                    .await
                    .map_err(UploadError::Network)?
                    .check_status()
                    .map_err(UploadError::Http)?;
                Ok(())
            })
            .await;
        outcomes.push(match r {
            Err(UploadError::Http(e)) => format!("HTTP {}", e.status()),
            Err(UploadError::Network(e)) => format!("network error: {e:?}"),
            other => format!("{other:?}"),
        });
    }
    let requests = hits.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!(
        "early 413, 3 calls of 16 MiB: {requests} requests, breaker {} with {} failures; {outcomes:#?}",
        p.state(),
        p.consecutive_failures()
    );
    assert_eq!(requests, 3, "one attempt a call");
    assert_eq!(p.consecutive_failures(), 0);
}

/// Garbled answers (no HTTP at all, a bad status line, a bad length, a chunked body that
/// breaks off, headers cut short): each is transient, retried under the same key, and a
/// breaker failure.
#[tokio::test(start_paused = true)]
async fn garbled_answers_are_transient_and_retried() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    static SITE: CallSite = CallSite::new("e2e-garbled", "upload");
    let p = resilience::configure("e2e-garbled", main_job().failure_threshold(1000)).unwrap();
    let c = client();
    for raw in [
        "garbage\r\n\r\n",
        "HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"id\"",
        "HTTP/1.1 200 OK\r\nContent-Le",
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/upload", listener.local_addr().unwrap());
        let keys = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = keys.clone();
        let server = tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 8192];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
                let key = head
                    .lines()
                    .find_map(|l| l.strip_prefix("idempotency-key: "))
                    .map(str::to_owned);
                seen.lock().unwrap().push(key);
                let _ = s.write_all(raw.as_bytes()).await;
            }
        });
        let before = p.consecutive_failures();
        let r = upload(&SITE, &c, &url).await;
        server.abort();
        let keys = keys.lock().unwrap().clone();
        let class = match &r {
            Err(e) => resilience::Classify::classify(e).to_string(),
            Ok(_) => "ok".into(),
        };
        eprintln!(
            "{raw:?}: {class}, {} requests, {} breaker failures",
            keys.len(),
            p.consecutive_failures() - before
        );
        assert_eq!(class, "transient", "{raw:?}: {r:?}");
        assert_eq!(keys.len(), 3, "{raw:?}");
        assert!(
            keys.iter().all(|k| k.is_some() && *k == keys[0]),
            "{keys:?}"
        );
        assert_eq!(p.consecutive_failures() - before, 3);
    }
}

/// An attempt cut off by `RETRY_ATTEMPT_TIMEOUT` whose upload the provider goes on
/// processing: the retry, with the call's one key, comes while it is in progress. A provider
/// that follows the IETF `Idempotency-Key` draft answers it 409 Conflict, which the status
/// table calls permanent: the call ends with the 409 at once, no retry, and the caller is
/// told the upload failed while the provider goes on to accept it. (A provider that instead
/// processes the retry as a request of its own is the case above: one upload, one duplicate.)
#[tokio::test(start_paused = true)]
async fn a_retry_that_meets_its_first_attempt_in_progress_ends_with_a_permanent_409() {
    static SITE: CallSite = CallSite::new("e2e-in-progress", "upload");
    resilience::configure(
        "e2e-in-progress",
        main_job().attempt_timeout(Some(Duration::from_secs(1))),
    )
    .unwrap();
    let server = FaultServer::start(Faults::none()).await.unwrap();
    server.conflict_while_in_progress(true);
    server.script([Fault::AcceptedSlow(Duration::from_secs(3))]);
    let r = upload(&SITE, &client(), &server.upload_url()).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stats = server.stats();
    eprintln!(
        "in progress: the caller got {:?}; the server saw {} requests and accepted {}",
        r.as_ref().err(),
        stats.requests,
        stats.uploads_accepted
    );
    assert!(
        matches!(&r, Err(UploadError::Http(e)) if e.status() == 409),
        "{r:?}"
    );
    assert_eq!(
        resilience::Classify::classify(r.as_ref().unwrap_err()),
        resilience::ErrorClass::Permanent
    );
    assert_eq!((stats.requests, stats.uploads_accepted), (2, 1));
}
