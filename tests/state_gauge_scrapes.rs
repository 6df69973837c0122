//! A breaker's state change is not held off by scrapes that follow each other. From
//! helper-105's review of `1396bbe`, which made a change and a render take turns through a
//! lock that prefers writers: two overlapping renders (`serve()` allows two) handed it to each
//! other, and a change, made on the caller's thread with the breaker's lock held, waited as
//! long as they kept coming (17 minutes, until stopped). Our recorder now renders the state
//! family from the breakers' states, with no lock. Its own test binary: its scrapers would
//! slow the other telemetry tests.

mod hermetic;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use resilience::{CircuitState, Settings};

#[test]
fn a_state_change_is_not_held_off_by_back_to_back_scrapes() {
    let handle = resilience::telemetry::install_recorder().unwrap();
    // Enough series that a render takes a while, as a real service's does.
    for i in 0..100 {
        resilience::configure(&format!("scrapes-pad-{i}"), Settings::new()).unwrap();
    }
    let p = resilience::configure("scrapes", Settings::new()).unwrap();
    let (stop, renders) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let scrapers: Vec<_> = (0..2)
        .map(|_| {
            let (handle, stop, renders) = (handle.clone(), stop.clone(), renders.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = handle.render();
                    renders.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Both scraping before the change.
    while renders.load(Ordering::Relaxed) < 2 {
        std::thread::yield_now();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        p.force_open();
        let forced = p.state();
        p.reset();
        let _ = tx.send((forced, p.state()));
    });
    // A deadline for a hang, not a speed: the change takes microseconds.
    let states = rx.recv_timeout(Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    for s in scrapers {
        s.join().unwrap();
    }
    assert_eq!(
        states.expect("force_open() and reset() still waiting after 30 s of scrapes"),
        (CircuitState::ForcedOpen, CircuitState::Closed)
    );
}
