//! The `idempotency_key` field of a call's log lines is made only when a subscriber takes the
//! line: a call nobody asks the key of, whose lines nobody takes, makes none (the key counter
//! of its thread does not move). Its own test binary: it installs a subscriber.

mod common;

use resilience::{Jitter, Settings};
use std::time::Duration;

fn counter(key: resilience::IdempotencyKey) -> u128 {
    key.as_u128() & 0x3FFF_FFFF_FFFF_FFFF
}

#[test]
fn a_key_is_made_for_a_line_only_when_the_line_is_taken() {
    // INFO and above: the first attempt's DEBUG line is not taken, a retry's INFO line is.
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(sub, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let p = resilience::configure(
                "lazy-key",
                Settings::new()
                    .jitter(Jitter::None)
                    .base_delay(Duration::from_millis(1)),
            )
            .unwrap();
            let ask = || async {
                Ok::<_, common::TestError>(resilience::current_call().unwrap().idempotency_key)
            };
            let a = p.execute(ask).await.unwrap();
            // Succeeds at once, asks nothing: its DEBUG line is not taken, no key is made.
            p.execute(|| async { Ok::<_, common::TestError>(()) })
                .await
                .unwrap();
            let b = p.execute(ask).await.unwrap();
            assert_eq!(counter(b), counter(a) + 1, "{a} then {b}");
            // A retry's INFO line is taken: its key is made for it.
            let mut first = true;
            p.execute(|| {
                let fail = std::mem::take(&mut first);
                async move {
                    if fail {
                        Err(common::TestError::Transient(1))
                    } else {
                        Ok(())
                    }
                }
            })
            .await
            .unwrap();
            let c = p.execute(ask).await.unwrap();
            assert_eq!(counter(c), counter(b) + 2, "{b} then {c}");
        });
    });
}
