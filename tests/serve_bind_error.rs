//! A `serve()` that fails changes nothing: the process's `metrics` recorder is still free, so
//! the application can fall back to an exporter of its own (or to no metrics at all). Its own
//! test binary: it installs the process's recorder.

mod hermetic;

#[tokio::test]
async fn a_serve_that_cannot_bind_installs_no_recorder() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = resilience::telemetry::serve(taken.local_addr().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, resilience::telemetry::TelemetryError::Bind { .. }),
        "{err}"
    );
    // The fallback the error invites: another exporter, then `use_installed_recorder()`.
    let theirs = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    assert!(
        metrics::set_global_recorder(theirs).is_ok(),
        "the failed serve() left its recorder installed"
    );
    resilience::telemetry::use_installed_recorder();
    // And a serve() now says why it cannot.
    let err = resilience::telemetry::serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            resilience::telemetry::TelemetryError::RecorderAlreadyInstalled
        ),
        "{err}"
    );
}
