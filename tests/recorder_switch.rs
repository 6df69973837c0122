//! Switching the recorder on while another thread moves a breaker: the state gauge ends on the
//! breaker's state. Its own test binary, with a recorder of its own that holds the switch at
//! the moment the race needs: after it has read the breaker's state, before it publishes it.

mod hermetic;

use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

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
    // `go` and `there` moved in: a panic in here drops `go`, which ends the switch's wait,
    // where a `go` kept outside left the switch waiting and the scope waiting for it.
    let went_through = std::thread::scope(move |s| {
        let switch = s.spawn(resilience::telemetry::use_installed_recorder);
        // The switch has read `closed` and is about to publish it.
        there.recv().unwrap();
        let (moved_tx, moved) = mpsc::channel();
        let (tid_tx, tid) = mpsc::channel();
        let mover = s.spawn(move || {
            tid_tx.send(own_task()).unwrap();
            p.force_open();
            moved_tx.send(()).unwrap();
        });
        // The move must wait for the switch, which holds the breaker's lock while it reads
        // and publishes the state: either the move goes through (wrong: the switch's `closed`
        // would then overwrite its `forced_open`) or its thread goes to sleep on the lock, and
        // nothing else puts it to sleep between sending its task and being moved.
        let went_through = match tid.recv().unwrap() {
            Some(task) => {
                // For a /proc that never shows the sleep: a move not through by then waited.
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    if moved.try_recv().is_ok() {
                        break true;
                    }
                    if asleep(&task) || Instant::now() > deadline {
                        break false;
                    }
                    std::thread::yield_now();
                }
            }
            // No /proc to ask: a bounded time to go through instead.
            None => moved.recv_timeout(Duration::from_millis(200)).is_ok(),
        };
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

/// This thread's `/proc` task directory (Linux), which says whether it sleeps.
fn own_task() -> Option<std::path::PathBuf> {
    let own = std::fs::read_link("/proc/thread-self").ok()?;
    Some(std::path::Path::new("/proc").join(own))
}

/// Whether the task sleeps: the state field of its `stat`, after the command's parenthesis
/// (the command may hold spaces and parentheses of its own). An ended task (a mover that went
/// through) has no `stat`: not asleep, and the loop sees its move next.
fn asleep(task: &std::path::Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(task.join("stat")) else {
        return false;
    };
    stat.rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        == Some("S")
}

/// Review: once the mover has moved (the bug's case) it ends, and its task with it; read
/// then, its state is an error, which panicked before `go` was sent: the switch waited for
/// `go` and the scope for the switch, and the test hung instead of failing. An ended task
/// is not asleep: the loop then sees the move.
#[test]
fn a_task_that_has_ended_is_not_asleep() {
    let Some(task) = std::thread::spawn(own_task).join().unwrap() else {
        return;
    };
    // Joined, the thread may still be on its way out of the kernel.
    while task.exists() {
        std::thread::yield_now();
    }
    assert!(!asleep(&task));
}
