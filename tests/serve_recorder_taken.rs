//! A `serve()` refused because the process's `metrics` recorder is someone else's binds first
//! now (c9dd7c0): the listener it made must be gone with the error, the port free again at
//! once. Its own test binary: it installs the process's recorder.

mod hermetic;

#[tokio::test]
async fn a_serve_refused_for_the_recorder_frees_its_port() {
    let theirs = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::set_global_recorder(theirs).unwrap();
    resilience::telemetry::use_installed_recorder();
    // A port nobody holds: bound and released.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for _ in 0..3 {
        let err = resilience::telemetry::serve(addr).await.unwrap_err();
        assert!(
            matches!(
                err,
                resilience::telemetry::TelemetryError::RecorderAlreadyInstalled
            ),
            "{err}"
        );
        // Bound again at once (SO_REUSEADDR, which std sets, allows no second listener).
        let again = std::net::TcpListener::bind(addr);
        assert!(again.is_ok(), "serve() left {addr} bound: {again:?}");
        drop(again);
        // And nothing answers there.
        assert!(std::net::TcpStream::connect(addr).is_err());
    }
    // Both wrong: the address is tried first now, so the port is what is reported.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = resilience::telemetry::serve(taken.local_addr().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, resilience::telemetry::TelemetryError::Bind { .. }),
        "{err}"
    );
}
