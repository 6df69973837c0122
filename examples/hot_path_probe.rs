//! A fixed loop of calls for counting instructions, which are exact where times are noisy:
//! the bare op; `floor`, a hand-written wrapper doing only the loads and the thread-local
//! pointer swap that the semantics need (what target (2) is measured against), and its two
//! parts, `floor_without_context` (the loads alone) and `context_only` (the bare op with
//! `current_call()`'s thread-local pointer set around it), and `layer`, the bare op behind an
//! `async fn` that does nothing else; `minimum`, the least any breaker can do (one load of a
//! state word before the op, one after), and `stores_only`, two stores to a `static` around
//! the op (the thread-local's cost, less the thread-local); the same op through `#[resilient]`
//! (closed breaker, success, no recorder); `once`, the same at a `retry = false` site;
//! `recorder`, the same as `resilient` with the Prometheus recorder installed; `exporter`, the
//! bare op plus the exporter's own three updates that such a call makes (what bounded target
//! (3) until our own storage took them); `forced`, a rejection by a breaker forced open; or
//! `open`, a rejection by a breaker opened by failures, which reads the kernel's coarse clock
//! (a system call's worth of instructions under valgrind, so only our part of it is counted,
//! per function; time it with the loop time this prints, or with `perf`).
//!
//! ```sh
//! cargo build --release --example hot_path_probe
//! sh benches/instructions.sh       # instructions per call in every mode but open (needs valgrind)
//! sh benches/instructions.sh open  # our part of an open breaker's rejection
//! target/release/examples/hot_path_probe open 20000000   # prints the loop's time per call
//! ```

use std::hint::black_box;

use resilience::resilient;

#[inline(never)]
async fn op() -> Result<u64, std::io::Error> {
    Ok(black_box(1))
}

#[resilient(provider = "probe")]
async fn resilient_op() -> Result<u64, std::io::Error> {
    op().await
}

/// The same at a `retry = false` site (one attempt: for operations that are not idempotent).
#[resilient(provider = "probe", retry = false)]
async fn once_op() -> Result<u64, std::io::Error> {
    op().await
}

#[path = "../benches/rejectable.rs"]
mod rejectable;

use rejectable::Rejectable;

#[resilient(provider = "probe-open")]
async fn open_op() -> Result<u64, Rejectable> {
    op().await.map_err(Rejectable::Io)
}

#[resilient(provider = "probe-forced")]
async fn forced_op() -> Result<u64, Rejectable> {
    op().await.map_err(Rejectable::Io)
}

#[path = "../benches/floor.rs"]
mod floor;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_default();
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    if which == "recorder" || which == "exporter" {
        resilience::telemetry::install_recorder().expect("the first recorder");
    }
    if which == "open" {
        // Opened by failures, under the running clock: its rejections read the coarse clock. Open for a
        // day, so a long run measures rejections to the end, not probes after the timeout.
        resilience::configure(
            "probe-open",
            resilience::Settings::new().breaker_timeout(std::time::Duration::from_secs(86_400)),
        )
        .expect("configured before first use");
        let p = resilience::provider("probe-open");
        for _ in 0..5 {
            let _: Result<(), std::io::Error> = p
                .execute(|| async { Err(std::io::ErrorKind::ConnectionReset.into()) })
                .await;
        }
        assert!(p.state().is_open());
    }
    resilience::provider("probe-forced").force_open();
    // The exporter alone, doing the three updates of a successful call (see benches/).
    let calls = metrics::counter!("probe_calls_total");
    let attempts = metrics::counter!("probe_attempts_total");
    let duration = metrics::histogram!("probe_duration_seconds");
    let start = std::time::Instant::now();
    for _ in 0..n {
        let out = match which.as_str() {
            "bare" => op().await,
            "floor" => floor::call(op).await,
            "floor_without_context" => floor::call_without_context(op).await,
            "context_only" => floor::with_context(op).await,
            "layer" => floor::layer(op).await,
            "minimum" => floor::minimum(op).await,
            "stores_only" => floor::stores_only(op).await,
            "resilient" | "recorder" => resilient_op().await,
            "open" => {
                black_box(&open_op().await);
                continue;
            }
            "forced" => {
                black_box(&forced_op().await);
                continue;
            }
            "exporter" => {
                let out = op().await;
                attempts.increment(1);
                calls.increment(1);
                duration.record(1e-6);
                out
            }
            "once" => once_op().await,
            other => {
                eprintln!(
                    "usage: hot_path_probe bare|floor|floor_without_context|context_only|layer|minimum|stores_only|resilient|once|recorder|exporter|open|forced [calls], \
                     not {other:?}"
                );
                std::process::exit(2);
            }
        };
        black_box(out.ok());
    }
    // The loop alone, without the set-up (the open mode's failing calls sleep between their
    // retries): a rough time, for comparing modes run back to back.
    let per_call = start.elapsed().as_secs_f64() * 1e9 / n.max(1) as f64;
    eprintln!("{which}: {per_call:.2} ns per call");
    if which == "open" {
        assert!(
            resilience::provider("probe-open").state().is_open(),
            "the breaker stayed open for the whole run"
        );
    }
}
