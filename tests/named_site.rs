//! `resilience::call_site(name, method)`: a site for a provider named at run time that makes
//! no provider until its first call, so a client made before `init()` takes `init()`'s
//! settings. Its own test binary: `init()` and the process's registry.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};

use common::TestError;
use resilience::{Builder, Settings};

#[tokio::test(start_paused = true)]
async fn a_named_site_finds_its_provider_at_its_first_call() {
    let upload = resilience::call_site("named-site", "upload");
    let once = resilience::call_site_without_retry("named-site", "upload");
    assert!(std::ptr::eq(
        upload,
        resilience::call_site("named-site", "upload")
    ));
    assert!(!std::ptr::eq(upload, once));
    assert!(!std::ptr::eq(
        upload,
        resilience::call_site("named-site", "list")
    ));
    assert!(!std::ptr::eq(
        upload,
        resilience::call_site("named-site-2", "upload")
    ));
    let made = || {
        resilience::providers()
            .iter()
            .any(|p| p.name() == "named-site")
    };
    assert!(!made(), "no provider before the first call");
    // Settings given after the sites were made: taken, not refused as a change.
    Builder::new()
        .provider(
            "named-site",
            Settings::new()
                .max_attempts(4)
                .base_delay(std::time::Duration::from_millis(10)),
        )
        .init()
        .unwrap();
    let n = AtomicU32::new(0);
    let op = || {
        n.fetch_add(1, Ordering::SeqCst);
        async { Err::<(), _>(TestError::Transient(0)) }
    };
    assert!(upload.execute(op).await.is_err());
    assert!(made());
    assert_eq!(n.swap(0, Ordering::SeqCst), 4, "init()'s max_attempts");
    assert!(once.execute(op).await.is_err());
    assert_eq!(n.load(Ordering::SeqCst), 1, "one attempt");
    assert_eq!(upload.method(), "upload");
    assert_eq!(upload.provider().config().max_attempts, 4);
}
