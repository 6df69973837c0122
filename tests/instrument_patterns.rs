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

/// A pattern of one name (`ref x`, `x @ …`) gives its parameter that name, the one rustdoc
/// shows: skipped as the expansion's own names are, and a `skip` of it still compiles.
#[resilience::resilient(provider = "instr-pattern")]
#[tracing::instrument(skip(all))]
async fn one_name(
    ref creds: Creds,
    all @ (_, _): (String, String),
    name: &str,
) -> Result<(), CallError> {
    let _ = (&creds.user, &all.0, name);
    Err(timed_out())
}

/// The logs of `calls`, made on `provider` with two quick attempts each.
fn logs_of(provider: &str, calls: impl Future<Output = ()>) -> String {
    let (logs, subscriber) = common::capture();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            resilience::configure(
                provider,
                Settings::new()
                    .max_attempts(2)
                    .base_delay(Duration::ZERO)
                    .circuit_breaker_enabled(false),
            )
            .unwrap();
            calls.await;
        })
    });
    logs.text()
}

fn creds() -> Creds {
    Creds {
        user: "bob".into(),
        key: "sk-PATTERN-SECRET".into(),
    }
}

fn tenant() -> (String, String) {
    ("acme".into(), "TUPLE-SECRET".into())
}

/// Neither secret, nor the name of the whole value that holds it.
fn assert_no_secret(text: &str, generated: &str) {
    for secret in ["PATTERN-SECRET", "TUPLE-SECRET", generated] {
        assert!(!text.contains(secret), "{secret} in the logs:\n{text}");
    }
}

#[test]
fn a_pattern_arguments_hidden_fields_stay_out_of_the_span() {
    let text = logs_of("instr-pattern", async {
        let _ = bare(creds(), tenant()).await;
        let _ = listed("x", creds(), "report.pdf").await;
        let _ = skipped(creds()).await;
        let _ = conditional(tenant()).await;
        let _ = one_name(creds(), tenant(), "report.pdf").await;
    });
    // The spans are there, with what they record besides.
    assert!(text.contains("bare: resilience: [RETRY]"), "{text}");
    assert!(text.contains("listed{name=\"report.pdf\" job=7}"), "{text}");
    assert!(text.contains("skipped: resilience: [RETRY]"), "{text}");
    assert!(text.contains("conditional: resilience: [RETRY]"), "{text}");
    assert!(text.contains("one_name{name=\"report.pdf\"}"), "{text}");
    assert_no_secret(&text, "__resilience_arg");
}

#[async_trait::async_trait]
trait Upload {
    async fn up(
        &self,
        creds: Creds,
        tenant: (String, String),
        ignored: Creds,
    ) -> Result<(), CallError>;
}

/// An `Upload` whose method takes pattern arguments, with the `#[instrument]` given below
/// `#[resilient]`.
macro_rules! uploader {
    ($name:ident, $provider:tt, $($instrument:tt)*) => {
        struct $name;

        #[async_trait::async_trait]
        impl Upload for $name {
            #[resilience::resilient(provider = $provider)]
            #[$($instrument)*]
            async fn up(
                &self,
                Creds { user, .. }: Creds,
                (tenant, _): (String, String),
                _: Creds,
            ) -> Result<(), CallError> {
                let _ = (user, tenant);
                Err(timed_out())
            }
        }
    };
}

// In an `#[async_trait]` impl, where the README puts `#[instrument]` below `#[resilient]`
// too, async-trait has already given a pattern argument (or `_`) a name of its own, `__argN`,
// before either attribute runs: the same whole value, recorded the same way.
uploader!(
    Uploader,
    "instr-pattern-at",
    tracing::instrument(skip(self))
);

#[test]
fn an_async_trait_impls_pattern_arguments_stay_out_of_the_span() {
    let text = logs_of("instr-pattern-at", async {
        let _ = Uploader.up(creds(), tenant(), creds()).await;
    });
    assert!(text.contains("up: resilience: [RETRY]"), "{text}");
    assert_no_secret(&text, "__arg");
}

// Review: an `#[instrument]` that already skips a name the expansion adds, async-trait's for
// a pattern argument (which the README said to skip yourself) or an argument of one's own
// that is called `__arg1`, compiled before the expansion added the name; tracing refuses a
// name skipped twice ("tried to skip the same field twice").
uploader!(
    SkipsItself,
    "instr-pattern-own",
    tracing::instrument(skip(self, __arg1, __arg3))
);

#[resilience::resilient(provider = "instr-pattern-own")]
#[tracing::instrument(skip(__arg1))]
async fn own_name(__arg1: String, name: &str) -> Result<(), CallError> {
    let _ = (__arg1, name);
    Err(timed_out())
}

#[test]
fn a_name_already_skipped_is_skipped_once() {
    let text = logs_of("instr-pattern-own", async {
        let _ = SkipsItself.up(creds(), tenant(), creds()).await;
        let _ = own_name("OWN-SECRET".into(), "report.pdf").await;
    });
    assert!(text.contains("up: resilience: [RETRY]"), "{text}");
    assert!(text.contains("own_name{name=\"report.pdf\"}"), "{text}");
    assert_no_secret(&text, "OWN-SECRET");
}

// Review: `skip` may name a pattern's binding (`skip(key)` for `(tenant, key)`), which tracing
// accepts without the attribute; the expansion gave the pattern a name of its own and left the
// binding in the `skip`, which tracing then refused ("attempting to skip non-existent
// parameter"): code that compiled stopped compiling under the attribute.
#[resilience::resilient(provider = "instr-pattern-binding")]
#[tracing::instrument(skip(key), fields(job = 9))]
async fn skips_a_binding((tenant, key): (String, String), name: &str) -> Result<(), CallError> {
    let _ = (tenant, key, name);
    Err(timed_out())
}

#[resilience::resilient(provider = "instr-pattern-binding", retry = false)]
#[tracing::instrument(skip(user, tenant))]
async fn skips_every_binding(
    Creds { user, .. }: Creds,
    (tenant, _): (String, String),
    name: &str,
) -> Result<(), CallError> {
    let _ = (user, tenant, name);
    Err(timed_out())
}

#[test]
fn a_skipped_pattern_binding_compiles_and_the_pattern_stays_out() {
    let text = logs_of("instr-pattern-binding", async {
        let _ = skips_a_binding(tenant(), "report.pdf").await;
        let _ = skips_every_binding(creds(), tenant(), "invoice.pdf").await;
    });
    assert!(
        text.contains("skips_a_binding{name=\"report.pdf\" job=9}"),
        "{text}"
    );
    assert!(
        text.contains("skips_every_binding{name=\"invoice.pdf\"}"),
        "{text}"
    );
    assert_no_secret(&text, "__resilience_arg");
}

// Review of the above: a pattern's binding and a plain argument may share a name when they
// come from different macro contexts (here the binding is the macro's, the argument its
// caller's: no E0415). tracing matches `skip` by name, so without the attribute `skip(key)`
// skips the plain argument; taking `key` out of the `skip` as a binding recorded the plain
// argument, a secret, instead.
macro_rules! binding_and_argument {
    ($key:ident) => {
        #[resilience::resilient(provider = "instr-pattern-hygiene")]
        #[tracing::instrument(skip(key))]
        async fn shares_a_name(
            (tenant, key): (String, String),
            $key: &str,
            name: &str,
        ) -> Result<(), CallError> {
            let _ = (tenant, key, $key, name);
            Err(timed_out())
        }
    };
}
binding_and_argument!(key);

#[test]
fn a_skipped_name_that_is_also_a_plain_argument_stays_skipped() {
    let text = logs_of("instr-pattern-hygiene", async {
        let _ = shares_a_name(tenant(), "PLAIN-SECRET", "report.pdf").await;
    });
    assert!(
        text.contains("shares_a_name{name=\"report.pdf\"}"),
        "{text}"
    );
    assert_no_secret(&text, "PLAIN-SECRET");
}

#[async_trait::async_trait]
trait Refill {
    async fn refill(
        &self,
        batch: &mut (String, String),
        shared: &(String, String),
        name: &str,
    ) -> Result<(), CallError>;
}

// Review of the renaming of a pattern on a `&mut` in an `#[async_trait]` impl: the other name
// may be a binding of a pattern on a shared reference, which async-trait leaves in the
// signature as written, and tracing records each of its bindings by name. The pattern on the
// `&mut` was given a name of the expansion's and its `key` left the `skip`, so the shared
// pattern's `key`, a secret, was recorded.
macro_rules! refill_binding_and_pattern {
    ($key:ident) => {
        struct Refiller;

        #[async_trait::async_trait]
        impl Refill for Refiller {
            #[resilience::resilient(provider = "instr-pattern-hygiene-at")]
            #[tracing::instrument(skip(self, key))]
            async fn refill(
                &self,
                (tenant, key): &mut (String, String),
                (_, $key): &(String, String),
                name: &str,
            ) -> Result<(), CallError> {
                let _ = (tenant, key, $key, name);
                Err(timed_out())
            }
        }
    };
}
refill_binding_and_pattern!(key);

#[test]
fn a_binding_shared_with_a_kept_async_trait_pattern_stays_skipped() {
    let text = logs_of("instr-pattern-hygiene-at", async {
        let mut batch = tenant();
        let shared = ("acme".to_owned(), "SHARED-SECRET".to_owned());
        let _ = Refiller.refill(&mut batch, &shared, "report.pdf").await;
    });
    assert!(text.contains("refill{name=\"report.pdf\"}"), "{text}");
    assert_no_secret(&text, "SHARED-SECRET");
}
