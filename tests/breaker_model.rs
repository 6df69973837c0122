//! The breaker against a model of what the README says it does, over long random sequences of
//! answers (helper-198's trial, a resilience4j user's check): in failure-rate mode, open
//! exactly when the window of the last `window_size` counted answers holds at least
//! `minimum_calls` of them and a share of failures at or above the rate (throttled and
//! permanent answers take no place in it); in the default mode, open exactly at
//! `failure_threshold` consecutive transient failures (a success resets the streak, throttled
//! and permanent answers leave it). One call at a time, on a paused clock.

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use common::TestError;
use resilience::{CircuitState, Settings};

/// A seeded generator (an LCG's high bits): the same sequence on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// An answer drawn with `fail_share` tenths of transient failures, one tenth throttled and one
/// permanent (the rest successes); `Some(failed)` when the breaker counts it.
fn draw(rng: &mut Lcg, fail_share: u64) -> (Result<u32, TestError>, Option<bool>) {
    match rng.below(10) {
        k if k < fail_share => (Err(TestError::Transient(0)), Some(true)),
        8 => (Err(TestError::Throttled(0, None)), None),
        9 => (Err(TestError::Permanent(0)), None),
        _ => (Ok(1), Some(false)),
    }
}

fn settings() -> Settings {
    Settings::new()
        .max_attempts(1)
        .breaker_timeout(Duration::from_secs(10))
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_exactly_when_the_model_says() {
    let mut rng = Lcg(12_345);
    let mut mismatches = Vec::new();
    let rate_configs = [
        (4, 4, 0.75),
        (10, 5, 0.5),
        (7, 3, 0.34),
        (100, 20, 0.5),
        (5, 1, 1.0),
        (3, 2, 0.6),
        (64, 64, 0.25),
        (65, 10, 0.3),
    ];
    for (i, &(window, minimum, rate)) in rate_configs.iter().enumerate() {
        let p = resilience::configure(
            &format!("model-rate-{i}"),
            settings()
                .failure_rate(Some(rate))
                .window_size(window)
                .minimum_calls(minimum),
        )
        .unwrap();
        let mut model: VecDeque<bool> = VecDeque::new();
        let mut opened = 0;
        for step in 0..3000 {
            // Phases of 300 answers, 30% and 60% failures in turn, so that it both opens and
            // stays closed for long stretches.
            let (answer, counted) = draw(&mut rng, if (step / 300) % 2 == 0 { 3 } else { 6 });
            let _ = p.execute(|| async { answer.clone() }).await;
            let mut want = false;
            if let Some(failed) = counted {
                model.push_back(failed);
                if model.len() > window as usize {
                    model.pop_front();
                }
                let failures = model.iter().filter(|f| **f).count();
                // The share as a quotient, as the breaker judges it: the product rounds
                // (`0.55 * 100.0` is above 55), and a model by it would disagree at the rate.
                want =
                    model.len() >= minimum as usize && failures as f64 / model.len() as f64 >= rate;
            }
            let got = p.state() == CircuitState::Open;
            if got != want {
                mismatches.push(format!("rate {window}/{minimum}/{rate} step {step}: {got}"));
            }
            if got || want {
                opened += 1;
                p.reset();
                model.clear();
            }
        }
        assert!(
            opened > 10,
            "rate {window}/{minimum}/{rate}: opened {opened} times"
        );
    }
    for threshold in [1u32, 2, 5] {
        let p = resilience::configure(
            &format!("model-consecutive-{threshold}"),
            settings().failure_threshold(threshold),
        )
        .unwrap();
        let mut streak = 0;
        for step in 0..3000 {
            let (answer, counted) = draw(&mut rng, 5);
            match counted {
                Some(true) => streak += 1,
                Some(false) => streak = 0,
                None => {}
            }
            let _ = p.execute(|| async { answer.clone() }).await;
            let want = streak >= threshold;
            let got = p.state() == CircuitState::Open;
            if got != want {
                mismatches.push(format!("consecutive {threshold} step {step}: {got}"));
            }
            if got || want {
                p.reset();
                streak = 0;
            }
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}
