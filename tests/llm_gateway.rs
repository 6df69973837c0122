//! A gateway's chat-completion client for two OpenAI-compatible LLM providers, against a
//! hand-rolled HTTP/1.1 server on 127.0.0.1: errors classified by their JSON body (a 400 that
//! is a rate limit, a 200 that holds an `error`), `Retry-After` in seconds or absent, long
//! attempts under `attempt_timeout`, and a streamed (SSE) answer. Paused clock throughout;
//! each test has provider names of its own.

mod common;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use resilience::{Classify, ErrorClass, HttpError, ResilienceError, Settings, resilient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// The server: each connection takes the next scripted answer.

#[derive(Clone)]
enum Answer {
    Json {
        status: u16,
        retry_after: Option<&'static str>,
        body: &'static str,
    },
    /// Answer after this long (paused clock).
    Slow(Duration, &'static str),
    /// 200 `text/event-stream`, these events, then the connection is cut (no final chunk).
    SseCut(&'static [&'static str]),
}

struct Server {
    addr: std::net::SocketAddr,
    script: Arc<Mutex<VecDeque<Answer>>>,
    hits: Arc<Mutex<Vec<Instant>>>,
}

impl Server {
    async fn start(answers: impl IntoIterator<Item = Answer>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(answers.into_iter().collect::<VecDeque<_>>()));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let (s, h) = (script.clone(), hits.clone());
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let (s, h) = (s.clone(), h.clone());
                tokio::spawn(async move {
                    // Read the head and a Content-Length body.
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                            if buf.len() >= end + 4 + len {
                                break;
                            }
                        }
                    }
                    h.lock().unwrap().push(Instant::now());
                    let answer = s.lock().unwrap().pop_front().expect("a scripted answer");
                    let reply = |status: u16, ra: Option<&str>, body: &str| {
                        let ra = ra.map_or(String::new(), |v| format!("retry-after: {v}\r\n"));
                        format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{ra}\
                             content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    match answer {
                        Answer::Json {
                            status,
                            retry_after,
                            body,
                        } => {
                            let _ = sock
                                .write_all(reply(status, retry_after, body).as_bytes())
                                .await;
                        }
                        Answer::Slow(d, body) => {
                            tokio::time::sleep(d).await;
                            let _ = sock.write_all(reply(200, None, body).as_bytes()).await;
                        }
                        Answer::SseCut(events) => {
                            let mut out = String::from(
                                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                                 transfer-encoding: chunked\r\n\r\n",
                            );
                            for e in events {
                                let ev = format!("data: {e}\n\n");
                                out.push_str(&format!("{:x}\r\n{ev}\r\n", ev.len()));
                            }
                            let _ = sock.write_all(out.as_bytes()).await;
                            // Cut: no terminating chunk.
                        }
                    }
                    let _ = sock.shutdown().await;
                });
            }
        });
        Server { addr, script, hits }
    }

    fn url(&self) -> String {
        format!("http://{}/v1/chat/completions", self.addr)
    }

    fn hits(&self) -> Vec<Instant> {
        self.hits.lock().unwrap().clone()
    }

    fn left(&self) -> usize {
        self.script.lock().unwrap().len()
    }
}

// ---------------------------------------------------------------------------------------------
// The client: an error of the provider's, read from its JSON body, classified by its type.

/// `{"error":{"type":"…","message":"…"}}` as the provider sent it, with the status and the
/// `Retry-After` read from the headers before the body was read.
#[derive(Debug)]
struct ApiError {
    http: HttpError,
    kind: String,
    message: String,
}

impl Classify for ApiError {
    fn classify(&self) -> ErrorClass {
        match self.kind.as_str() {
            // Kimi's and GLM's rate-limit and overload types, whatever the status.
            "rate_limit_reached_error" | "engine_overloaded_error" => ErrorClass::Throttled {
                retry_after: self.http.retry_after(),
            },
            _ => match self.http.status() {
                529 | 520..=524 => ErrorClass::Transient,
                _ => self.http.classify(),
            },
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        Classify::retry_after(&self.http)
    }
    fn log_summary(&self) -> Option<Cow<'_, str>> {
        Some(format!("{} {}", self.http, self.kind).into())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.http, self.kind, self.message)
    }
}
impl std::error::Error for ApiError {}

#[derive(Debug, thiserror::Error, Classify)]
enum LlmError {
    #[error(transparent)]
    #[classify(transparent)]
    Network(#[from] reqwest::Error),
    #[error(transparent)]
    #[classify(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    #[classify(transparent)]
    Resilience(#[from] ResilienceError),
    #[error("bad JSON from the provider: {0}")]
    #[classify(permanent)]
    BadJson(#[source] serde_json::Error),
}

struct Llm {
    client: reqwest::Client,
    url: String,
}

/// The body read once, as bytes; the status and headers kept before.
async fn completion(
    client: &reqwest::Client,
    url: &str,
    model: &str,
) -> Result<serde_json::Value, LlmError> {
    answer(client.post(url), model).await
}

/// The request's answer, read as `completion` reads it: a method with a bound of its own sets
/// it on the request it passes.
async fn answer(
    request: reqwest::RequestBuilder,
    model: &str,
) -> Result<serde_json::Value, LlmError> {
    let resp = request
        .json(&serde_json::json!({"model": model, "messages": []}))
        .send()
        .await?;
    let status = resp.status().as_u16();
    let http = HttpError::from_headers(status, resp.headers());
    let bytes = resp.bytes().await?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(LlmError::BadJson)?;
    if let Some(err) = value.get("error") {
        let field = |k: &str| err.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
        return Err(ApiError {
            http,
            kind: field("type"),
            message: field("message"),
        }
        .into());
    }
    if !(200..300).contains(&status) {
        return Err(ApiError {
            http,
            kind: String::new(),
            message: String::from_utf8_lossy(&bytes).into_owned(),
        }
        .into());
    }
    Ok(value)
}

type Events = Pin<Box<dyn Stream<Item = Result<Vec<u8>, reqwest::Error>> + Send>>;

/// A streamed answer, its error (a status other than 2xx) read whole: the call ends at the
/// headers, and the stream is handed on.
async fn events(client: &reqwest::Client, url: &str, model: &str) -> Result<Events, LlmError> {
    let resp = client
        .post(url)
        .json(&serde_json::json!({"model": model, "stream": true}))
        .send()
        .await?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let http = HttpError::from_headers(status, resp.headers());
        return Err(ApiError {
            http,
            kind: String::new(),
            message: resp.text().await?,
        }
        .into());
    }
    Ok(Box::pin(resp.bytes_stream().map(|r| r.map(|b| b.to_vec()))))
}

/// Chat methods that differ by their provider alone (each test needs its own breaker, or its
/// own attempt timeout): `completion` through `#[resilient]` on each.
macro_rules! chat_on {
    ($($(#[$doc:meta])* $name:ident => $provider:literal,)*) => {$(
        $(#[$doc])*
        #[resilient(provider = $provider)]
        async fn $name(&self, model: &str) -> Result<serde_json::Value, LlmError> {
            completion(&self.client, &self.url, model).await
        }
    )*};
}

impl Llm {
    chat_on! {
        chat => "gw-kimi",
        chat_glm => "gw-glm",
        chat_429 => "gw-429",
        /// Long generations: a provider of its own for its own attempt timeout.
        chat_long => "gw-long",
        /// One provider, two bounds: the provider's attempt timeout for a long answer, and a
        /// per-request one (reqwest's, a transient timeout error) for a quick one.
        chat_mixed_long => "gw-mixed",
        chat_short => "gw-short",
    }

    #[resilient(provider = "gw-mixed")]
    async fn chat_mixed_quick(&self, model: &str) -> Result<serde_json::Value, LlmError> {
        let request = self.client.post(&self.url).timeout(Duration::from_secs(10));
        answer(request, model).await
    }

    /// A streamed answer, handed on as it arrives: `impl Stream` cannot be named in the
    /// `Result`, so it is boxed.
    #[resilient(provider = "gw-stream")]
    async fn chat_stream(&self, model: &str) -> Result<Events, LlmError> {
        events(&self.client, &self.url, model).await
    }

    /// The same, read whole inside the call: a cut stream is a failed attempt.
    #[resilient(provider = "gw-stream-read")]
    async fn chat_stream_read(&self, model: &str) -> Result<Vec<u8>, LlmError> {
        let resp = self
            .client
            .post(&self.url)
            .json(&serde_json::json!({"model": model, "stream": true}))
            .send()
            .await?;
        let mut out = Vec::new();
        let mut s = resp.bytes_stream();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }
}

fn llm(server: &Server) -> Llm {
    Llm {
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        url: server.url(),
    }
}

const OK: &str = r#"{"choices":[{"message":{"content":"hi"}}]}"#;

// ---------------------------------------------------------------------------------------------

/// A 400 whose body says `rate_limit_reached_error`, then a 200 holding an `error` object,
/// then an answer: both retried (as throttled), the body read once and kept in the error.
#[tokio::test(start_paused = true)]
async fn errors_are_classified_by_their_json_body() {
    let server = Server::start([
        Answer::Json {
            status: 400,
            retry_after: Some("2"),
            body: r#"{"error":{"type":"rate_limit_reached_error","message":"slow down"}}"#,
        },
        Answer::Json {
            status: 200,
            retry_after: None,
            body: r#"{"error":{"type":"engine_overloaded_error","message":"busy"}}"#,
        },
        Answer::Json {
            status: 200,
            retry_after: None,
            body: OK,
        },
    ])
    .await;
    resilience::configure("gw-kimi", Settings::new().max_attempts(3)).unwrap();
    let start = Instant::now();
    let v = llm(&server).chat("moonshot-v1-8k").await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "hi");
    let hits = server.hits();
    assert_eq!(hits.len(), 3);
    // The 400's Retry-After: 2 was waited for.
    assert!(
        hits[1] - start >= Duration::from_secs(2),
        "{:?}",
        hits[1] - start
    );
    // Throttled answers are no breaker failures.
    assert_eq!(resilience::provider("gw-kimi").consecutive_failures(), 0);
}

/// When every attempt fails, the caller gets the last error with the provider's message.
#[tokio::test(start_paused = true)]
async fn the_last_error_keeps_the_providers_message() {
    let body = r#"{"error":{"type":"invalid_request_error","message":"model not found"}}"#;
    let server = Server::start([Answer::Json {
        status: 400,
        retry_after: None,
        body,
    }])
    .await;
    let err = llm(&server).chat_glm("glm-4").await.unwrap_err();
    match &err {
        LlmError::Api(e) => {
            assert_eq!(e.message, "model not found");
            assert_eq!(e.http.status(), 400);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.classify(), ErrorClass::Permanent);
    assert_eq!(server.hits().len(), 1);
}

/// The statuses an LLM gateway meets, as `classify_status` has them.
#[test]
fn status_classes() {
    use resilience::classify_status;
    // Permanent by default, as the README's table says: a gateway that wants 529 and a
    // CDN's 520-524 retried says so in its own `Classify` (`ApiError` above).
    for s in [529, 520, 521, 522, 523, 524, 409, 425] {
        assert_eq!(classify_status(s, None), ErrorClass::Permanent, "{s}");
    }
}

/// A 429 with no `Retry-After`: how soon is it retried?
#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_is_retried_on_plain_backoff() {
    let mut answers = Vec::new();
    for _ in 0..40 {
        answers.push(Answer::Json {
            status: 429,
            retry_after: None,
            body: r#"{"error":{"type":"rate_limit_reached_error","message":"x"}}"#,
        });
        answers.push(Answer::Json {
            status: 200,
            retry_after: None,
            body: OK,
        });
    }
    let server = Server::start(answers).await;
    resilience::configure("gw-429", Settings::new().base_delay(Duration::from_secs(1))).unwrap();
    let c = llm(&server);
    for _ in 0..40 {
        c.chat_429("m").await.unwrap();
    }
    let hits = server.hits();
    let waits: Vec<Duration> = hits.chunks(2).map(|p| p[1] - p[0]).collect();
    // Plain backoff, full jitter: the first retry anywhere in [0, base_delay], however
    // soon (a few milliseconds now and then).
    assert!(
        waits.iter().all(|w| *w <= Duration::from_secs(1)),
        "{waits:?}"
    );
}

/// A long answer (40 s) for the long method, then a 40 s one the short method must cut off
/// and a 1 s one its retry takes; `provider`'s attempt timeout is the long method's, 120 s.
async fn long_then_short(provider: &str) -> Server {
    let server = Server::start([
        Answer::Slow(Duration::from_secs(40), OK),
        Answer::Slow(Duration::from_secs(40), OK),
        Answer::Slow(Duration::from_secs(1), OK),
    ])
    .await;
    resilience::configure(
        provider,
        Settings::new().attempt_timeout(Some(Duration::from_secs(120))),
    )
    .unwrap();
    server
}

/// Two methods with different attempt timeouts: two providers (and so two breakers).
#[tokio::test(start_paused = true)]
async fn attempt_timeouts_per_method_need_a_provider_each() {
    let server = long_then_short("gw-long").await;
    resilience::configure(
        "gw-short",
        Settings::new()
            .attempt_timeout(Some(Duration::from_secs(10)))
            .max_attempts(2),
    )
    .unwrap();
    let c = llm(&server);
    c.chat_long("m").await.unwrap();
    // 40 s answer, 10 s limit: cut off, retried, and the retry's 1 s answer is taken.
    c.chat_short("m").await.unwrap();
    assert_eq!(server.left(), 0);
    assert_eq!(resilience::provider("gw-short").consecutive_failures(), 0);
}

/// Or one provider, one breaker: the quick method bounds its own request, each attempt anew.
#[tokio::test(start_paused = true)]
async fn a_method_s_own_bound_is_set_on_its_request() {
    let server = long_then_short("gw-mixed").await;
    let c = llm(&server);
    c.chat_mixed_long("m").await.unwrap();
    // 40 s answer, the request's 10 s limit: reqwest's timeout, transient, retried; the
    // retry's 1 s answer is taken.
    let started = tokio::time::Instant::now();
    c.chat_mixed_quick("m").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(11),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.left(), 0);
    assert_eq!(resilience::provider("gw-mixed").consecutive_failures(), 0);
}

/// A stream handed on: the call succeeded at the headers; the cut comes later, unseen.
#[tokio::test(start_paused = true)]
async fn a_stream_cut_after_the_call_is_not_seen_by_the_breaker() {
    let server = Server::start([Answer::SseCut(&[
        "{\"delta\":\"he\"}",
        "{\"delta\":\"llo\"}",
    ])])
    .await;
    resilience::configure("gw-stream", Settings::new().failure_threshold(1)).unwrap();
    let mut s = llm(&server).chat_stream("m").await.unwrap();
    let mut saw_error = false;
    while let Some(item) = s.next().await {
        if item.is_err() {
            saw_error = true;
        }
    }
    assert!(saw_error, "the cut reaches the reader");
    assert_eq!(
        resilience::provider("gw-stream").state(),
        resilience::CircuitState::Closed
    );
}

/// Read inside the call, the cut is a transient failure: retried and counted.
#[tokio::test(start_paused = true)]
async fn a_stream_read_inside_the_call_is_retried_when_cut() {
    let server = Server::start([
        Answer::SseCut(&["{\"delta\":\"he\"}"]),
        Answer::SseCut(&["{\"delta\":\"he\"}"]),
    ])
    .await;
    resilience::configure(
        "gw-stream-read",
        Settings::new().max_attempts(2).failure_threshold(2),
    )
    .unwrap();
    let err = llm(&server).chat_stream_read("m").await.unwrap_err();
    assert_eq!(err.classify(), ErrorClass::Transient, "{err:?}");
    assert_eq!(server.hits().len(), 2);
    assert_eq!(
        resilience::provider("gw-stream-read").state(),
        resilience::CircuitState::Open
    );
}

// ---------------------------------------------------------------------------------------------
// Compile-time shapes a gateway uses: a trait object over both providers, and a stream that
// borrows `&self`.

#[async_trait::async_trait]
trait ChatProvider: Send + Sync {
    async fn chat(&self, model: &str, prompt: &str) -> Result<serde_json::Value, LlmError>;
}

struct Kimi(Llm);
struct Glm(Llm);

#[async_trait::async_trait]
impl ChatProvider for Kimi {
    #[resilient(provider = "gw-dyn-kimi")]
    async fn chat(&self, model: &str, prompt: &str) -> Result<serde_json::Value, LlmError> {
        let _ = prompt;
        completion(&self.0.client, &self.0.url, model).await
    }
}

#[async_trait::async_trait]
impl ChatProvider for Glm {
    #[resilient(provider = "gw-dyn-glm")]
    async fn chat(&self, model: &str, prompt: &str) -> Result<serde_json::Value, LlmError> {
        let _ = prompt;
        completion(&self.0.client, &self.0.url, model).await
    }
}

type BorrowedEvents<'a> = Pin<Box<dyn Stream<Item = Result<Vec<u8>, reqwest::Error>> + Send + 'a>>;

impl Llm {
    #[resilient(provider = "gw-borrow")]
    async fn chat_stream_borrowing(&self, model: &str) -> Result<BorrowedEvents<'_>, LlmError> {
        let resp = self
            .client
            .post(&self.url)
            .body(model.to_owned())
            .send()
            .await?;
        let prefix: &[u8] = self.url.as_bytes();
        Ok(Box::pin(
            resp.bytes_stream()
                .map(move |r| r.map(|b| [prefix, &b[..]].concat())),
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn a_trait_object_over_two_providers() {
    let server = Server::start([
        Answer::Json {
            status: 200,
            retry_after: None,
            body: OK,
        },
        Answer::Json {
            status: 200,
            retry_after: None,
            body: OK,
        },
        Answer::SseCut(&["x"]),
    ])
    .await;
    let all: Vec<Box<dyn ChatProvider>> =
        vec![Box::new(Kimi(llm(&server))), Box::new(Glm(llm(&server)))];
    for p in &all {
        p.chat("m", "hello").await.unwrap();
    }
    let c = llm(&server);
    let s = c.chat_stream_borrowing("m").await.unwrap();
    let _ = s.collect::<Vec<_>>().await;
}

/// Stands for a client's `#[derive(Deserialize)] struct ChatCompletion { choices: Vec<…> }`
/// (no serde derive among this crate's dev-dependencies): `{"error":{…}}` is not one.
type ChatCompletion = std::collections::HashMap<String, Vec<serde_json::Value>>;

impl Llm {
    /// The README's shape: `check_status()`, then typed JSON.
    #[resilient(provider = "gw-typed")]
    async fn chat_typed(&self) -> Result<ChatCompletion, LlmError> {
        use resilience::ResponseExt;
        let resp = self.client.post(&self.url).send().await?;
        let resp = resp.check_status().map_err(|http| ApiError {
            http,
            kind: String::new(),
            message: String::new(),
        })?;
        Ok(resp.json().await?)
    }

    #[resilient(provider = "gw-529")]
    async fn chat_529(&self, model: &str) -> Result<serde_json::Value, LlmError> {
        completion(&self.client, &self.url, model).await
    }
}

/// A 200 that holds an `error` object, read with `check_status()` and typed `json()`: the
/// JSON is not the type asked for, a permanent error, never retried. Reading the body as a
/// `Value` first (`completion`) is what lets the error object be classified.
#[tokio::test(start_paused = true)]
async fn a_200_holding_an_error_read_as_typed_json_is_permanent() {
    let server = Server::start([Answer::Json {
        status: 200,
        retry_after: None,
        body: r#"{"error":{"type":"engine_overloaded_error","message":"busy"}}"#,
    }])
    .await;
    let err = llm(&server).chat_typed().await.unwrap_err();
    assert!(matches!(err, LlmError::Network(_)), "{err:?}");
    assert_eq!(err.classify(), ErrorClass::Permanent);
    assert_eq!(server.hits().len(), 1);
}

/// A 529 made transient in the error's own `Classify`: retried after its `Retry-After`, a
/// breaker failure each time.
#[tokio::test(start_paused = true)]
async fn a_529_made_transient_waits_for_its_retry_after_and_counts() {
    let overloaded = Answer::Json {
        status: 529,
        retry_after: Some("3"),
        body: r#"{"error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    };
    let server = Server::start([overloaded.clone(), overloaded]).await;
    resilience::configure("gw-529", Settings::new().max_attempts(2)).unwrap();
    let err = llm(&server).chat_529("m").await.unwrap_err();
    assert_eq!(err.classify(), ErrorClass::Transient);
    let hits = server.hits();
    assert_eq!(hits.len(), 2);
    assert!(
        hits[1] - hits[0] >= Duration::from_secs(3),
        "{:?}",
        hits[1] - hits[0]
    );
    assert_eq!(resilience::provider("gw-529").consecutive_failures(), 2);
}

impl Llm {
    #[resilient(provider = "gw-stream-probe")]
    async fn chat_stream_probe(&self, model: &str) -> Result<Events, LlmError> {
        events(&self.client, &self.url, model).await
    }
}

/// A half-open probe that returns a stream is a success on its headers: the breaker closes,
/// and the stream's cut, read after, changes nothing.
#[tokio::test(start_paused = true)]
async fn a_streaming_probe_closes_the_breaker_on_its_headers() {
    let server = Server::start([
        Answer::Json {
            status: 503,
            retry_after: None,
            body: r#"{"error":{"type":"server_error","message":"down"}}"#,
        },
        Answer::SseCut(&["{\"delta\":\"he\"}"]),
    ])
    .await;
    resilience::configure(
        "gw-stream-probe",
        Settings::new()
            .max_attempts(1)
            .failure_threshold(1)
            .success_threshold(1)
            .breaker_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    let c = llm(&server);
    assert!(c.chat_stream_probe("m").await.is_err());
    let p = resilience::provider("gw-stream-probe");
    assert_eq!(p.state(), resilience::CircuitState::Open);
    tokio::time::advance(Duration::from_secs(5)).await;
    let s = c.chat_stream_probe("m").await.unwrap();
    assert_eq!(p.state(), resilience::CircuitState::Closed);
    let items = s.collect::<Vec<_>>().await;
    assert!(
        items.iter().any(Result::is_err),
        "the cut reaches the reader"
    );
    assert_eq!(p.state(), resilience::CircuitState::Closed);
    assert_eq!(p.consecutive_failures(), 0);
}
