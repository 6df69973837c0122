//! `#[tracing::instrument]` below `#[resilient]` (the README's order: one span for the whole
//! call, the `[RETRY]` lines inside it) sees a pattern argument under the name the expansion
//! gives it, the whole value: a field the pattern leaves out (`Creds { user, .. }`,
//! `(tenant, _)`), a key say, was recorded by its `Debug` into the span, and so onto every
//! `[RETRY]` line of the call. The expansion adds those names to `#[instrument]`'s `skip`.

mod common;

use std::time::Duration;

use resilience::{Classify, ResilienceError, Settings};

#[derive(Debug, Classify)]
enum CallError {
    #[classify(transparent)]
    Resilience(ResilienceError),
}

impl From<ResilienceError> for CallError {
    fn from(e: ResilienceError) -> Self {
        CallError::Resilience(e)
    }
}

fn timed_out() -> CallError {
    CallError::Resilience(ResilienceError::AttemptTimeout {
        provider: "instr-pattern",
        timeout: Duration::from_millis(1),
    })
}

#[derive(Clone, Debug)]
#[allow(dead_code)] // `key` is read by `Debug` alone, which is the point
pub struct Creds {
    user: String,
    key: String,
}

#[resilience::resilient(provider = "instr-pattern")]
#[tracing::instrument]
async fn bare(Creds { user, .. }: Creds, (tenant, _): (String, String)) -> Result<(), CallError> {
    let _ = (user, tenant);
    Err(timed_out())
}

#[resilience::resilient(provider = "instr-pattern")]
#[tracing::instrument(level = "info", skip(plain), fields(job = 7))]
async fn listed(plain: &str, Creds { user, .. }: Creds, name: &str) -> Result<(), CallError> {
    let _ = (plain, user, name);
    Err(timed_out())
}

#[resilience::resilient(provider = "instr-pattern", retry = false)]
#[tracing::instrument(skip_all)]
async fn skipped(Creds { user, .. }: Creds) -> Result<(), CallError> {
    let _ = user;
    Err(timed_out())
}

#[resilience::resilient(provider = "instr-pattern")]
#[cfg_attr(all(), tracing::instrument)]
async fn conditional((tenant, _): (String, String)) -> Result<(), CallError> {
    let _ = tenant;
    Err(timed_out())
}

#[test]
fn a_pattern_arguments_hidden_fields_stay_out_of_the_span() {
    let (logs, subscriber) = common::capture();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            resilience::configure(
                "instr-pattern",
                Settings::new()
                    .max_attempts(2)
                    .base_delay(Duration::ZERO)
                    .circuit_breaker_enabled(false),
            )
            .unwrap();
            let creds = || Creds {
                user: "bob".into(),
                key: "sk-PATTERN-SECRET".into(),
            };
            let _ = bare(creds(), ("acme".into(), "TUPLE-SECRET".into())).await;
            let _ = listed("x", creds(), "report.pdf").await;
            let _ = skipped(creds()).await;
            let _ = conditional(("acme".into(), "TUPLE-SECRET".into())).await;
        })
    });
    let text = logs.text();
    // The spans are there, with what they record besides.
    assert!(text.contains("bare: resilience: [RETRY]"), "{text}");
    assert!(text.contains("listed{name=\"report.pdf\" job=7}"), "{text}");
    assert!(text.contains("skipped: resilience: [RETRY]"), "{text}");
    assert!(text.contains("conditional: resilience: [RETRY]"), "{text}");
    for secret in ["PATTERN-SECRET", "TUPLE-SECRET", "__resilience_arg"] {
        assert!(!text.contains(secret), "{secret} in the logs:\n{text}");
    }
}
