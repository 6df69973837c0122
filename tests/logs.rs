//! The log side: `[RETRY]` and `[CIRCUIT]` lines with their structured fields, the same
//! transition seen in the log and in the counter, no secret in any log line or metric, and the
//! warning for an abandoned half-open probe.
//!
//! One test function on purpose: the subscriber is process-global, installed before any log
//! callsite is first hit, and the scenarios run one after another, so no line can be missed or
//! borrowed from another test.

mod common;

use std::time::Duration;

use common::{TestError, UploadError, capture_globally, counter, current_thread, get};
use resilience::{CircuitState, Jitter, ResilienceError, Settings};

#[resilience::resilient(provider = "log-secret")]
async fn upload_with_secret(client: &reqwest::Client, url: &str) -> Result<u16, UploadError> {
    let resp = client
        .post(url)
        .header("Authorization", "Bearer HEADER-SECRET-42")
        .body("file body")
        .send()
        .await
        .map_err(UploadError::Network)?;
    Ok(resp.status().as_u16())
}

/// An error type that logs no text of its own (the default `log_summary`).
#[derive(Debug)]
struct Quiet;

impl From<resilience::ResilienceError> for Quiet {
    fn from(_: resilience::ResilienceError) -> Self {
        Quiet
    }
}

impl resilience::Classify for Quiet {
    fn classify(&self) -> resilience::ErrorClass {
        resilience::ErrorClass::Transient
    }
}

/// An error type that calls everything throttled, an attempt's timeout included.
#[derive(Debug)]
struct AllThrottled;

impl From<resilience::ResilienceError> for AllThrottled {
    fn from(_: resilience::ResilienceError) -> Self {
        AllThrottled
    }
}

impl resilience::Classify for AllThrottled {
    fn classify(&self) -> resilience::ErrorClass {
        resilience::ErrorClass::Throttled { retry_after: None }
    }
}

fn lines_with(all: &str, needle: &str) -> String {
    all.lines()
        .filter(|l| l.contains(needle))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn log_lines_fields_and_secrets() {
    let logs = capture_globally();
    let rt = current_thread();
    rt.block_on(async {
        let server = resilience::telemetry::serve("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();

        // 1. Retries and a transition: the text and the structured fields.
        let exact = Settings::new()
            .jitter(Jitter::None)
            .base_delay(Duration::from_millis(100))
            .failure_threshold(3);
        let p = resilience::configure("log-retry", exact).unwrap();
        let keys = std::sync::Mutex::new(Vec::new());
        let r: Result<u32, TestError> = p
            .execute(|| async {
                let key = resilience::current_call().unwrap().idempotency_key;
                keys.lock().unwrap().push(key.to_string());
                Err(TestError::Transient(1))
            })
            .await;
        assert!(r.is_err());
        // Every line of that call carries the key its attempts were given: the first
        // attempt's, each retry's and the giving up.
        let keys = keys.into_inner().unwrap();
        assert!(
            keys.len() == 3 && keys.iter().all(|k| *k == keys[0]),
            "{keys:?}"
        );
        let first_call = lines_with(&logs.text(), "log-retry");
        let with_key = format!("idempotency_key={} ", keys[0]);
        assert_eq!(
            first_call.lines().filter(|l| l.contains("[RETRY]")).count(),
            4
        );
        for line in first_call.lines().filter(|l| l.contains("[RETRY]")) {
            assert!(line.contains(&with_key), "{line}");
        }
        let r: Result<u32, TestError> = p.execute(|| async { Err(TestError::Permanent(1)) }).await;
        assert!(r.is_err());
        assert_eq!(p.state(), CircuitState::Open);
        let text = lines_with(&logs.text(), "log-retry");
        for expected in [
            "DEBUG resilience: [RETRY] Attempt 1/3 for execute",
            "INFO resilience: [RETRY] Attempt 2/3 for execute in 0.100s after a transient error",
            "[RETRY] Attempt 3/3 for execute in 0.200s",
            "class=\"transient\" result=\"transient\"",
            "delay_ms=100",
            "WARN resilience: [CIRCUIT] State transition: closed → open for log-retry",
            // With how long it stays open: the default breaker timeout, 60 s.
            "provider=\"log-retry\" from=\"closed\" to=\"open\" failures=3 open_for_ms=60000",
            "[CIRCUIT] Call to execute rejected: breaker for log-retry is open",
            "state=\"open\"",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        // Every call line has a key, the rejection's too (its call never reached the
        // operation, so its key was made for the line).
        let call_lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("[RETRY]") || l.contains("rejected: breaker"))
            .collect();
        assert_eq!(call_lines.len(), 5, "{text}");
        // The rejection says when the breaker lets a probe through: the 60 s open timeout,
        // less the little that passed since the opening.
        let rejection = lines_with(&text, "rejected: breaker");
        let retry_in_ms: u64 = rejection
            .split_once("retry_in_ms=")
            .and_then(|(_, rest)| rest.split(' ').next()?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no retry_in_ms in {rejection}"));
        assert!((50_000..=60_000).contains(&retry_in_ms), "{rejection}");
        for line in call_lines {
            let key = line
                .split_once("idempotency_key=")
                .map(|(_, rest)| rest.split(' ').next().unwrap_or(""))
                .unwrap_or_else(|| panic!("no idempotency_key in {line}"));
            assert_eq!(key.len(), 36, "{line}");
        }

        // The text and the field show the same milliseconds, not one rounded, one cut.
        let odd = Settings::new()
            .jitter(Jitter::None)
            .max_attempts(2)
            .base_delay(Duration::from_micros(10_900));
        let p = resilience::configure("log-odd-delay", odd).unwrap();
        let r: Result<u32, TestError> = p.execute(|| async { Err(TestError::Transient(1)) }).await;
        assert!(r.is_err());
        let odd_text = lines_with(&logs.text(), "log-odd-delay");
        assert!(
            odd_text.contains("in 0.010s after a transient error")
                && odd_text.contains("delay_ms=10 "),
            "{odd_text}"
        );

        // 2. The same transition, counted: one log line, one increment.
        let (_, metrics) = get(&server.metrics_url()).await;
        let opened = counter(
            &metrics,
            "resilience_circuit_transitions_total",
            &[
                ("provider", "log-retry"),
                ("from", "closed"),
                ("to", "open"),
            ],
        );
        assert_eq!(opened, 1.0);
        assert_eq!(text.matches("State transition: closed → open").count(), 1);

        // 3. Secrets in the URL (query, user-info) and in a header reach neither logs nor metrics.
        resilience::configure(
            "log-secret",
            Settings::new()
                .base_delay(Duration::from_millis(1))
                .jitter(Jitter::None),
        )
        .unwrap();
        // A server that drops every connection unanswered: every attempt fails with an error
        // that embeds the URL. (A port bound, then let go, may be anyone's by the time the
        // request is sent, which then goes there, header and all.)
        let closing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closing.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((conn, _)) = closing.accept().await {
                drop(conn);
            }
        });
        let url = format!(
            "http://user:PASSWORD-SECRET@127.0.0.1:{port}/v1/files?api_key=QUERY-SECRET-7&x=1"
        );
        let r = upload_with_secret(&common::client(), &url).await;
        assert!(matches!(r, Err(UploadError::Network(_))));
        let (_, metrics) = get(&server.metrics_url()).await;
        let all = logs.text();
        let mine = lines_with(&all, "log-secret");
        assert!(
            mine.contains("[RETRY] Attempt 2/3 for upload_with_secret"),
            "{mine}"
        );
        assert!(
            mine.contains("127.0.0.1"),
            "the redacted error is still useful: {mine}"
        );
        for secret in [
            "QUERY-SECRET-7",
            "PASSWORD-SECRET",
            "HEADER-SECRET-42",
            "api_key",
        ] {
            assert!(
                !all.contains(secret),
                "{secret} leaked into the logs:\n{all}"
            );
            assert!(!metrics.contains(secret), "{secret} leaked into /metrics");
        }
    });

    // 4. A half-open probe that never answers: its slot is freed after the breaker timeout,
    // with a warning, and the next call is let in. On a paused clock, in its own runtime.
    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    paused.block_on(async {
        let settings = Settings::new()
            .max_attempts(1)
            .failure_threshold(1)
            .breaker_timeout(Duration::from_secs(2));
        let p = resilience::configure("log-probe", settings).unwrap();
        let r: Result<u32, TestError> = p.execute(|| async { Err(TestError::Transient(1)) }).await;
        assert!(r.is_err());
        tokio::time::advance(Duration::from_secs(2)).await;
        let mut hung = Box::pin(p.execute(std::future::pending::<Result<u32, TestError>>));
        let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(hung.as_mut().poll(cx)));
        assert!(polled.await.is_pending(), "the probe hangs");
        let r: Result<u32, TestError> = p.execute(|| async { Ok(1) }).await;
        assert!(r.is_err(), "its slot is still held");
        tokio::time::advance(Duration::from_secs(2)).await;
        let r: Result<u32, TestError> = p.execute(|| async { Ok(2) }).await;
        assert_eq!(r, Ok(2), "a new round lets the next call in");
        let text = lines_with(&logs.text(), "log-probe");
        let warning = "WARN resilience: [CIRCUIT] Probes for log-probe unanswered after 2.000s: \
                       their slots are freed; their answers still count";
        assert_eq!(text.matches(warning).count(), 1, "{text}");
        drop(hung);

        // 5. An attempt cut off by its time limit says so, though the error type logs no
        // text of its own; with retries off, a failure is a warning, not an error.
        let settings = Settings::new()
            .max_attempts(2)
            .jitter(Jitter::None)
            .attempt_timeout(Some(Duration::from_secs(1)));
        let p = resilience::configure("log-timeout", settings).unwrap();
        let r: Result<u32, Quiet> = p.execute(std::future::pending).await;
        assert!(r.is_err());
        let text = lines_with(&logs.text(), "log-timeout");
        assert!(
            text.contains("INFO resilience: [RETRY] Attempt 2/2 for execute in ")
                && text.contains("class=\"transient\" result=\"timeout\"")
                && text
                    .contains("error=\"attempt to provider `log-timeout` timed out after 1.000s\""),
            "{text}"
        );
        assert!(
            text.contains("ERROR resilience: [RETRY] Giving up on execute after 2/2 attempts")
                && text.contains("reason=\"attempts_exhausted\""),
            "{text}"
        );
        // One failing call with one attempt: retries on (`max_attempts(1)`) keeps its error
        // line; retries off says it failed, as a warning.
        for (name, settings, line) in [
            (
                "log-single",
                Settings::new().max_attempts(1),
                "ERROR resilience: [RETRY] Giving up on execute after 1/1 attempts",
            ),
            (
                "log-once",
                Settings::new().retry_enabled(false),
                "WARN resilience: [RETRY] execute failed on its one attempt (transient error; \
                 retries are off)",
            ),
        ] {
            let p = resilience::configure(name, settings).unwrap();
            let r: Result<u32, TestError> =
                p.execute(|| async { Err(TestError::Transient(1)) }).await;
            assert!(r.is_err());
            let text = lines_with(&logs.text(), name);
            assert!(text.contains(line), "{text}");
            assert_eq!(
                text.matches("ERROR").count(),
                usize::from(line.starts_with("ERROR"))
            );
        }

        // 6. A `Retry-After` too long to wait for is logged in milliseconds, capped, not
        // wrapped: 1e17 s is 1e20 ms, above `u64::MAX` (it logged 7766279631452241920). The
        // `HttpError` comes inside an `io::Error`, whose `Classify` forwards its `Retry-After`.
        let p = resilience::configure("log-retry-after", Settings::new()).unwrap();
        let r: Result<u32, std::io::Error> = p
            .execute(|| async {
                Err(std::io::Error::other(resilience::HttpError::from_header(
                    503,
                    Some("100000000000000000"),
                )))
            })
            .await;
        assert!(r.is_err());
        let text = lines_with(&logs.text(), "log-retry-after");
        assert!(
            text.contains("is above the maximum delay")
                && text.contains(&format!("retry_after_ms={}", u64::MAX)),
            "{text}"
        );

        // 7. A backoff that wakes past the deadline (the clock moved on by hand while the call
        // sleeps): the giving-up line names the attempt that failed last, as the others do.
        let settings = Settings::new()
            .jitter(Jitter::None)
            .base_delay(Duration::from_millis(10))
            .total_timeout(Some(Duration::from_millis(100)));
        let p = resilience::configure("log-late-wake", settings).unwrap();
        let call = p.execute(|| async {
            Err::<u32, _>(TestError::Throttled(1, Some(Duration::from_millis(10))))
        });
        let (r, ()) = tokio::join!(call, async {
            tokio::task::yield_now().await;
            tokio::time::advance(Duration::from_millis(150)).await;
        });
        assert!(r.is_err());
        let text = lines_with(&logs.text(), "log-late-wake");
        assert!(
            text.contains(
                "WARN resilience: [RETRY] Giving up on execute after attempt 1/3: the call's \
                 deadline passed during the backoff"
            ) && text.contains("attempt=1 max_attempts=3 class=\"throttled\" result=\"throttled\"")
                && text.contains("reason=\"deadline_passed\""),
            "{text}"
        );
        // The same after an attempt cut off by its time limit, whose error the method's type
        // calls throttled: the class is that error's, as on the retry line before it.
        let settings = Settings::new()
            .jitter(Jitter::None)
            .base_delay(Duration::from_millis(10))
            .attempt_timeout(Some(Duration::from_millis(5)))
            .total_timeout(Some(Duration::from_millis(100)));
        let p = resilience::configure("log-late-timeout", settings).unwrap();
        let call = p.execute(std::future::pending::<Result<u32, AllThrottled>>);
        let (r, ()) = tokio::join!(call, async {
            tokio::time::sleep(Duration::from_millis(6)).await;
            tokio::time::advance(Duration::from_millis(150)).await;
        });
        assert!(r.is_err());
        let text = lines_with(&logs.text(), "log-late-timeout");
        assert!(
            text.contains("the call's deadline passed during the backoff")
                && text
                    .matches("class=\"throttled\" result=\"timeout\"")
                    .count()
                    == 2,
            "{text}"
        );

        // 8. An attempt the call's deadline cuts off: its error is permanent, but the line
        // says the deadline, not a caller's error.
        let settings = Settings::new().total_timeout(Some(Duration::from_millis(50)));
        let p = resilience::configure("log-deadline-cut", settings).unwrap();
        let r: Result<u32, TestError> = p.execute(std::future::pending).await;
        assert!(r.is_err());
        let text = lines_with(&logs.text(), "log-deadline-cut");
        assert!(
            text.contains(
                "WARN resilience: [RETRY] Giving up on execute after attempt 1/3: the call's \
                 deadline passed during it"
            ) && text.contains("result=\"timeout\"")
                && text.contains("reason=\"deadline_exceeded\"")
                && !text.contains("Non-retryable"),
            "{text}"
        );

        // 9. A retry the breaker refuses after its backoff (an operator forced it open
        // meanwhile): the call gives up with a line of its own, as when the refusal is seen
        // before the backoff.
        let settings = Settings::new()
            .jitter(Jitter::None)
            .base_delay(Duration::from_millis(100));
        let p = resilience::configure("log-refused-retry", settings).unwrap();
        let call = p.execute(|| async { Err::<u32, _>(TestError::Transient(1)) });
        let (r, ()) = tokio::join!(call, async {
            tokio::task::yield_now().await;
            p.force_open();
        });
        assert!(r.is_err());
        let text = lines_with(&logs.text(), "log-refused-retry");
        assert!(
            text.contains(
                "WARN resilience: [RETRY] Giving up on execute after attempt 1/3: the breaker \
                 for log-refused-retry rejects its retry"
            ) && text.contains("reason=\"circuit_open\"")
                && !text.contains("retry_after_ms"),
            "{text}"
        );
        // Its rejection's line: forced open, so no time to a probe.
        let rejection = lines_with(&text, "rejected: breaker");
        assert!(
            rejection.contains("breaker for log-refused-retry is forced_open")
                && !rejection.contains("retry_in_ms"),
            "{text}"
        );

        // 9a. A half-open breaker whose probe is out: its rejection's line names half_open (a
        // load of the state, the error having no field for it), with no time to a probe.
        let h = resilience::configure(
            "log-half-open",
            Settings::new()
                .max_attempts(1)
                .failure_threshold(1)
                .breaker_timeout(Duration::ZERO),
        )
        .unwrap();
        let r: Result<(), TestError> = h.execute(|| async { Err(TestError::Transient(1)) }).await;
        assert!(r.is_err());
        let (started, release) = (
            std::sync::Arc::new(tokio::sync::Notify::new()),
            std::sync::Arc::new(tokio::sync::Notify::new()),
        );
        let probe = tokio::spawn({
            let (started, release) = (started.clone(), release.clone());
            async move {
                h.execute(|| {
                    let (started, release) = (started.clone(), release.clone());
                    async move {
                        started.notify_one();
                        release.notified().await;
                        Ok::<(), TestError>(())
                    }
                })
                .await
            }
        });
        started.notified().await;
        let r: Result<(), TestError> = h.execute(|| async { Ok(()) }).await;
        assert!(
            matches!(
                r,
                Err(TestError::Resilience(ResilienceError::CircuitOpen {
                    retry_in: None,
                    ..
                }))
            ),
            "{r:?}"
        );
        release.notify_one();
        probe.await.unwrap().unwrap();
        let rejection = lines_with(&logs.text(), "log-half-open");
        let rejection = lines_with(&rejection, "rejected: breaker");
        assert!(
            rejection.contains("breaker for log-half-open is half_open")
                && !rejection.contains("retry_in_ms"),
            "{rejection}"
        );

        // 9b. A fixed class with `log`: its `Display` text is on the line, redacted.
        #[derive(Debug, thiserror::Error, resilience::Classify)]
        enum Refused {
            #[error("refused by https://user:LOG-SECRET-7@example.com/v1/files?key=LOG-SECRET-8")]
            #[classify(permanent, log)]
            Policy,
            #[error(transparent)]
            #[classify(transparent)]
            Resilience(#[from] resilience::ResilienceError),
        }
        let p = resilience::configure("log-fixed-text", Settings::new()).unwrap();
        let r: Result<u32, Refused> = p.execute(|| async { Err(Refused::Policy) }).await;
        assert!(r.is_err());
        let text = lines_with(&logs.text(), "log-fixed-text");
        assert!(
            text.contains("[RETRY] Non-retryable error for execute on attempt 1/3")
                && text.contains(
                    "error=\"refused by https://<redacted>@example.com/v1/files?<redacted>\""
                )
                && !text.contains("LOG-SECRET"),
            "{text}"
        );

        // 9c. A call its caller gives up on says so by its key: mid-attempt, or in its
        // backoff. And a provider with no attempt timeout, whose attempt a caller's own
        // timeout cut off, is told once that its breaker cannot see a provider that hangs.
        let p =
            resilience::configure("log-abandoned", Settings::new().jitter(Jitter::None)).unwrap();
        for _ in 0..2 {
            let hung = p.execute(std::future::pending::<Result<u32, TestError>>);
            assert!(
                tokio::time::timeout(Duration::from_millis(5), hung)
                    .await
                    .is_err()
            );
        }
        let in_backoff = p.execute(|| async { Err::<u32, _>(TestError::Transient(1)) });
        assert!(
            tokio::time::timeout(Duration::from_millis(50), in_backoff)
                .await
                .is_err()
        );
        let text = lines_with(&logs.text(), "log-abandoned");
        assert_eq!(
            text.matches(
                "[RETRY] Call to execute abandoned during attempt 1: cancelled by its caller"
            )
            .count(),
            2,
            "{text}"
        );
        assert!(
            text.contains("[RETRY] Call to execute abandoned in the backoff after attempt 1"),
            "{text}"
        );
        let warned: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warned.len(), 1, "{text}");
        assert!(
            warned[0].contains("has no attempt or total timeout")
                && warned[0].contains("RESILIENCE_LOG_ABANDONED_RETRY_ATTEMPT_TIMEOUT"),
            "{text}"
        );
        // Each abandoned line carries the key of its call's first attempt.
        let key_of = |line: &str| {
            line.split_once("idempotency_key=")
                .map(|(_, rest)| rest.split(' ').next().unwrap_or("").to_owned())
                .unwrap_or_else(|| panic!("no key in {line}"))
        };
        let started: Vec<String> = text
            .lines()
            .filter(|l| l.contains("[RETRY] Attempt 1/"))
            .map(key_of)
            .collect();
        for line in text.lines().filter(|l| l.contains("execute abandoned")) {
            assert!(started.contains(&key_of(line)), "{line}\n{text}");
        }
        // With an attempt timeout, or a total one (whose deadline cuts a hung attempt off
        // too), the breaker sees hangs: nothing to warn of.
        let minute = Some(Duration::from_secs(60));
        for (name, bounded) in [
            (
                "log-abandoned-timed",
                Settings::new().attempt_timeout(minute),
            ),
            ("log-abandoned-total", Settings::new().total_timeout(minute)),
        ] {
            let p = resilience::configure(name, bounded).unwrap();
            let hung = p.execute(std::future::pending::<Result<u32, TestError>>);
            assert!(
                tokio::time::timeout(Duration::from_millis(5), hung)
                    .await
                    .is_err()
            );
            let text = lines_with(&logs.text(), name);
            assert!(
                text.contains("abandoned during attempt 1") && !text.contains("WARN"),
                "{text}"
            );
        }

        // 10. A name with a line feed (refused by init(), logged as a problem, and still a
        // provider) is escaped in the text of a line, which it would otherwise split, and in
        // the error's text: no line starts with what follows it.
        let p = resilience::provider("log-escaped\nforged");
        p.force_open();
        let r: Result<u32, TestError> = p.execute(|| async { Ok(1) }).await;
        let Err(TestError::Resilience(e)) = r else {
            panic!("{r:?}")
        };
        let shown = e.to_string();
        assert!(shown.contains(r"log-escaped\nforged"), "{shown}");
        let text = logs.text();
        assert!(
            text.contains(
                r"[CIRCUIT] State transition: closed → forced_open for log-escaped\nforged"
            ),
            "{text}"
        );
        let split: Vec<&str> = text.lines().filter(|l| l.starts_with("forged")).collect();
        assert!(split.is_empty(), "{split:?}");
        // Its problem's advice: `init()` checks only the names it is told of, and no
        // `#[resilient]` method names this one.
        assert!(
            text.contains(
                "provider `log-escaped\\nforged`: expected a provider name without leading or \
                 trailing spaces, control characters or invisible ones (this one reads \
                 RESILIENCE_LOG_ESCAPED_FORGED_… variables). Call resilience::init() at \
                 start-up, with this provider named in code (Builder::provider), to turn \
                 this into an error."
            ),
            "{text}"
        );

        // 11. A method label written by hand (`CallSite::new`, which no compile-time check
        // sees) with a line feed: escaped in the text of its retry and giving-up lines too.
        static SITE: resilience::CallSite = resilience::CallSite::new("log-method", "up\nforged");
        let r: Result<u32, TestError> = SITE
            .execute(|| async { Err(TestError::Transient(1)) })
            .await;
        assert!(r.is_err());
        let text = lines_with(&logs.text(), "log-method");
        assert!(
            text.contains(r"[RETRY] Attempt 2/3 for up\nforged in ")
                && text.contains(r"[RETRY] Giving up on up\nforged after 3/3 attempts"),
            "{text}"
        );
        let all = logs.text();
        let split: Vec<&str> = all.lines().filter(|l| l.starts_with("forged")).collect();
        assert!(split.is_empty(), "{split:?}");
    });
}
