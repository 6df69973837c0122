//! The README's quick start, whole (`tests/readme_quick_start.rs` keeps the two the same).
//! Run it with a server of yours on 127.0.0.1:8080, or without one to watch it retry a refused
//! connection and give up (every line at INFO and above shows, or what `RUST_LOG` asks for).
use resilience::{Classify, HttpError, ResilienceError, ResponseExt, redact, resilient};

/// The method's error: `Classify` says which errors are retried, `From<ResilienceError>`
/// (thiserror's `#[from]`) how an open breaker or a timeout comes back as yours.
#[derive(Debug, thiserror::Error, Classify)]
enum UploadError {
    #[error(transparent)]
    #[classify(transparent)] // connection errors and timeouts are retried
    Network(#[from] reqwest::Error),
    #[error(transparent)]
    #[classify(transparent)] // 408/429/500/502/503/504 are retried, Retry-After waited for
    Http(#[from] HttpError),
    #[error(transparent)]
    #[classify(transparent)] // breaker open, timeouts, drain(): keep it transparent
    Resilience(#[from] ResilienceError),
    #[error("the provider sent no file id")]
    #[classify(permanent)] // a class of your own: never retried
    NoId,
}

/// What the service calls, one implementation per provider: `#[resilient]` keeps a method's
/// signature as it is, so it goes on a trait impl's methods.
trait FileProvider {
    async fn upload(&self, body: &[u8]) -> Result<String, UploadError>;
}

struct Kimi {
    client: reqwest::Client,
    url: String,
}

impl FileProvider for Kimi {
    /// Every call, from any task, goes through provider `kimi`'s one breaker, retry policy
    /// and retry budget.
    #[resilient(provider = "kimi")]
    async fn upload(&self, body: &[u8]) -> Result<String, UploadError> {
        let call = resilience::current_call().expect("inside a resilient call");
        let id = self
            .client
            .post(&self.url)
            .header("Idempotency-Key", call.idempotency_key) // the same on every retry
            .body(body.to_vec()) // made again for each attempt
            .send()
            .await?
            .check_status()? // an HttpError with the status and Retry-After
            .text()
            .await?;
        if id.is_empty() {
            return Err(UploadError::NoId);
        }
        Ok(id)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init(); // first, and by RUST_LOG: retries, breaker changes, config warnings
    resilience::init()?; // RESILIENCE_*, RETRY_*, CIRCUIT_BREAKER_*: every bad one, named
    let _metrics = resilience::telemetry::serve_from_env().await?; // /metrics, /health
    let kimi = Kimi {
        client: reqwest::Client::new(),
        url: "http://127.0.0.1:8080/v1/files".to_owned(),
    };
    match kimi.upload(b"hello").await {
        Ok(id) => println!("uploaded: {id}"),
        // redact(): an error's text may hold the URL's query or user-info (a key).
        Err(e) => println!("failed: {} ({:?})", redact(&e.to_string()), e.classify()),
    }
    resilience::drain(); // at shutdown: no more retries, backoffs end now
    Ok(())
}
