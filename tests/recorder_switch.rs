//! Switching the recorder on while another thread moves a breaker: the state gauge ends on the
//! breaker's state. Its own test binary, with a recorder of its own that holds the switch at
//! the moment the race needs: after it has read the breaker's state, before it publishes it.

use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use resilience::CircuitState;

const PROVIDER: &str = "switch-race";

/// Prometheus's recorder, except that the first registration of `PROVIDER`'s transitions
/// counter (made by `use_installed_recorder()` with the breaker's state read, before the state
/// gauge is set) tells the test it is there, then waits for the test's go.
struct Holding {
    inner: PrometheusRecorder,
    hold: Mutex<Option<(Sender<()>, Receiver<()>)>>,
}

impl Recorder for Holding {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        if key.name() == resilience::telemetry::CIRCUIT_TRANSITIONS_TOTAL
            && key.labels().any(|l| l.value() == PROVIDER)
        {
            let hold = self.hold.lock().unwrap().take();
            if let Some((there, go)) = hold {
                there.send(()).unwrap();
                go.recv().unwrap();
            }
        }
        self.inner.register_counter(key, metadata)
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.inner.register_gauge(key, metadata)
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.inner.register_histogram(key, metadata)
    }
}

#[test]
fn a_move_made_while_the_recorder_is_switched_on_is_not_overwritten() {
    let inner = PrometheusBuilder::new().build_recorder();
    let handle = inner.handle();
    let (there_tx, there) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    metrics::set_global_recorder(Holding {
        inner,
        hold: Mutex::new(Some((there_tx, go_rx))),
    })
    .unwrap();
    let p = resilience::provider(PROVIDER);
    assert_eq!(p.state(), CircuitState::Closed);
    let went_through = std::thread::scope(|s| {
        let switch = s.spawn(resilience::telemetry::use_installed_recorder);
        // The switch has read `closed` and is about to publish it.
        there.recv().unwrap();
        let (moved_tx, moved) = mpsc::channel();
        let mover = s.spawn(move || {
            p.force_open();
            moved_tx.send(()).unwrap();
        });
        // The move must wait for the switch, which holds the breaker's lock while it reads
        // and publishes the state. Nothing says that a thread waits on a lock, so the test
        // gives it a bounded time to go through instead: done within it, the move has
        // published `forced_open`, and the switch's `closed` would now overwrite it.
        let went_through = moved.recv_timeout(Duration::from_millis(200)).is_ok();
        go.send(()).unwrap();
        switch.join().unwrap();
        mover.join().unwrap();
        went_through
    });
    assert_eq!(p.state(), CircuitState::ForcedOpen);
    let text = handle.render();
    let gauge = |state: &str| {
        let prefix =
            format!("resilience_circuit_state{{provider=\"{PROVIDER}\",state=\"{state}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in:\n{text}"))
            .to_owned()
    };
    assert_eq!(
        (gauge("forced_open"), gauge("closed")),
        ("1".into(), "0".into()),
        "the gauge shows the state read before the move (which went through at once: {went_through})"
    );
    assert!(!went_through, "the move did not wait for the switch");
}
