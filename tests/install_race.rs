//! A call made after `install_recorder()` returned is counted, when another thread was
//! installing it at the same time (from helper-104's review: the handle was published before
//! recording was switched on, and a second caller could return in between; its calls were not
//! counted in 12 of 20 runs). Its own test binary: it installs the process's recorder.

mod common;

use common::TestError;

fn recorder_ptr() -> *const () {
    metrics::with_recorder(|r| std::ptr::from_ref(r).cast::<()>())
}

#[test]
fn a_call_after_install_recorder_returned_is_counted() {
    let noop = recorder_ptr();
    let p = resilience::configure("install-race", resilience::Settings::new()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let installer = std::thread::spawn(resilience::telemetry::install_recorder);
    // Until the other thread is past setting the process's recorder.
    while recorder_ptr() == noop {
        std::hint::spin_loop();
    }
    let handle = resilience::telemetry::install_recorder().expect("installed");
    rt.block_on(p.execute(|| async { Ok::<u32, TestError>(1) }))
        .unwrap();
    installer.join().unwrap().unwrap();
    let text = handle.render();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with(
                r#"resilience_calls_total{provider="install-race",method="execute",outcome="success"}"#,
            )
        })
        .unwrap_or("no series at all");
    assert!(line.ends_with(" 1"), "{line}");
}
