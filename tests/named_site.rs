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

/// Threads asking for the same and different names at once, beside `check_names`,
/// `configure()` and `init()` (each taking the registry's lock, then the sites'): every ask of
/// one name and method gets the one site, a name's sites share one copy of the name, and
/// nothing deadlocks (helper-224's review of the map keyed by name).
#[test]
fn sites_asked_from_many_threads_at_once_are_one_per_key() {
    use std::sync::{Arc, Barrier, mpsc};
    use std::time::Duration;
    const THREADS: usize = 4;
    let names: Arc<Vec<String>> = Arc::new((0..40).map(|i| format!("conc-site-{i}")).collect());
    let start = Arc::new(Barrier::new(THREADS + 1));
    let (done, finished) = mpsc::channel();
    let askers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (names, start, done) = (names.clone(), start.clone(), done.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut got = Vec::new();
                for round in 0..200 {
                    // The same name on every thread, then one of this thread's own order.
                    let shared = &names[round % names.len()];
                    let own = &names[(round * 7 + t) % names.len()];
                    let method = if round % 2 == 0 { "chat" } else { "embed" };
                    got.push((
                        shared.clone(),
                        method,
                        true,
                        resilience::call_site(shared, method),
                    ));
                    let once = resilience::call_site_without_retry(own, "chat");
                    got.push((own.clone(), "chat", false, once));
                }
                done.send(()).unwrap();
                got
            })
        })
        .collect();
    let checker = {
        let (names, start, done) = (names.clone(), start.clone(), done.clone());
        std::thread::spawn(move || {
            start.wait();
            for i in 0..50 {
                let given: Vec<&str> = names.iter().map(String::as_str).take(i % 40 + 1).collect();
                resilience::check_names(given).unwrap();
                resilience::configure(&format!("conc-configured-{i}"), Settings::new()).unwrap();
                if i % 10 == 0 {
                    Builder::new().init().unwrap();
                }
            }
            done.send(()).unwrap();
        })
    };
    for _ in 0..=THREADS {
        finished
            .recv_timeout(Duration::from_secs(120))
            .expect("a thread is stuck: deadlock between the sites' lock and the registry's");
    }
    checker.join().unwrap();
    let mut seen: std::collections::HashMap<(String, &str, bool), usize> = Default::default();
    for asker in askers {
        for (name, method, retry, site) in asker.join().unwrap() {
            assert_eq!(site.method(), method);
            let at = std::ptr::from_ref(site) as usize;
            let first = *seen.entry((name.clone(), method, retry)).or_insert(at);
            assert_eq!(first, at, "two sites for {name} {method} {retry}");
        }
    }
    // And the same sites when asked again now, one thread alone.
    for ((name, method, retry), at) in seen {
        let site = if retry {
            resilience::call_site(&name, method)
        } else {
            resilience::call_site_without_retry(&name, method)
        };
        assert_eq!(
            std::ptr::from_ref(site) as usize,
            at,
            "{name} {method} {retry}"
        );
    }
}
