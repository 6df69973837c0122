//! `testing::isolate()`: tests that run at the same time, on the same provider names, do not
//! see each other's breakers, budgets or configuration. Needs the `testing` feature (see
//! Cargo.toml: `cargo test --workspace` turns it on).

mod common;

use std::io;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use resilience::{CircuitState, Settings, resilient, testing};

fn fast() -> Settings {
    Settings::new()
        .base_delay(Duration::ZERO)
        .failure_threshold(1)
}

/// The state of the breaker that `name` means on this thread now.
fn state(name: &str) -> CircuitState {
    resilience::provider(name).state()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

struct Client;

impl Client {
    #[resilient(provider = "iso-macro")]
    async fn upload(&self, fail: bool) -> Result<u32, io::Error> {
        if fail {
            Err(io::ErrorKind::ConnectionReset.into())
        } else {
            Ok(7)
        }
    }
}

/// Two threads, as `cargo test` runs two tests: one opens its breaker, then the other calls
/// the same `#[resilient]` method and is let through, and neither's configuration is refused.
#[test]
fn a_test_that_opens_a_breaker_does_not_fail_another() {
    let opened = Arc::new(Barrier::new(2));
    let other = {
        let opened = opened.clone();
        std::thread::spawn(move || {
            let _isolated = testing::isolate();
            // Configured differently from the other test's provider of the same name.
            resilience::configure("iso-macro", Settings::new().max_attempts(2)).unwrap();
            opened.wait();
            let got = runtime().block_on(Client.upload(false));
            assert_eq!(got.unwrap(), 7, "refused by the other test's breaker");
            assert_eq!(state("iso-macro"), CircuitState::Closed);
        })
    };
    {
        let _isolated = testing::isolate();
        resilience::configure("iso-macro", fast()).unwrap();
        assert!(runtime().block_on(Client.upload(true)).is_err());
        assert_eq!(state("iso-macro"), CircuitState::Open);
        opened.wait();
        other.join().unwrap();
    }
    // The process's own provider saw none of it.
    assert_eq!(state("iso-macro"), CircuitState::Closed);
}

#[test]
fn each_guard_has_fresh_providers_and_nested_guards_restore() {
    let outer = testing::isolate();
    let a = resilience::configure("iso-nest", fast()).unwrap();
    a.force_open();
    {
        let _inner = testing::isolate();
        let b = resilience::provider("iso-nest");
        assert_ne!(a, b, "another provider of the same name");
        assert_eq!(b.state(), CircuitState::Closed, "a fresh provider");
        assert_eq!(
            b.config().failure_threshold,
            5,
            "the defaults, not the outer guard's"
        );
        let ok: Result<u8, io::Error> = runtime().block_on(b.execute(|| async { Ok(1) }));
        assert_eq!(ok.unwrap(), 1);
    }
    assert_eq!(
        state("iso-nest"),
        CircuitState::ForcedOpen,
        "the outer guard's provider again"
    );
    drop(outer);
    assert_eq!(state("iso-nest"), CircuitState::Closed);
}

#[test]
fn configure_under_a_guard_merges_and_refuses_changes_as_the_global_one() {
    let _isolated = testing::isolate();
    let made = resilience::configure("iso-conf", Settings::new().max_attempts(2)).unwrap();
    assert_eq!(made.config().max_attempts, 2);
    assert!(resilience::configure("iso-conf", Settings::new().max_attempts(2)).is_ok());
    // Merged with the first settings, so only the new one is a change.
    let err = resilience::configure("iso-conf", Settings::new().base_delay(Duration::ZERO))
        .unwrap_err()
        .to_string();
    assert!(err.contains("base_delay"), "{err}");
    assert!(!err.contains("max_attempts"), "{err}");
}

/// A test that forgot its guard, refused because another test (here: another thread, with no
/// guard either) made the process's provider first, is told how to get providers of its own:
/// the message used to say only "give settings before any of them, at start-up", which the
/// test did. `Builder::init` too. Under a guard, no such hint: the change is the test's own.
#[test]
fn a_change_refused_by_the_process_s_registry_points_a_test_to_isolate() {
    std::thread::spawn(|| {
        resilience::configure("iso-forgot", Settings::new().max_attempts(2)).unwrap();
    })
    .join()
    .unwrap();
    let hint = "resilience::testing::isolate()";
    let err = resilience::configure("iso-forgot", Settings::new().max_attempts(4))
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_attempts") && err.contains(hint), "{err}");
    let err = resilience::Builder::new()
        .provider("iso-forgot", Settings::new().max_attempts(5))
        .init()
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_attempts") && err.contains(hint), "{err}");
    let _isolated = testing::isolate();
    resilience::configure("iso-forgot", Settings::new().max_attempts(2)).unwrap();
    let err = resilience::configure("iso-forgot", Settings::new().max_attempts(4))
        .unwrap_err()
        .to_string();
    assert!(!err.contains(hint), "{err}");
}

/// helper-218's review: the hint is said once per error, not on each setting refused (three
/// settings changed read as three lines ending in the same 150 characters), and does not say
/// the other test ran "at the same time": an earlier test's provider, with `--test-threads=1`,
/// is refused as well.
#[test]
fn the_isolate_hint_is_said_once_and_fits_a_test_run_before() {
    let hint = "resilience::testing::isolate()";
    let one = || Settings::new().max_attempts(2).failure_threshold(3);
    let other = || Settings::new().max_attempts(4).failure_threshold(6);
    // "Another test", run before this one: made on a thread that has ended.
    std::thread::spawn(move || {
        resilience::configure("iso-hint-a", one()).unwrap();
        resilience::configure("iso-hint-b", one()).unwrap();
    })
    .join()
    .unwrap();
    let err = resilience::configure("iso-hint-a", other()).unwrap_err();
    assert_eq!(err.problems().len(), 2, "{err}");
    let text = err.to_string();
    assert_eq!(text.matches(hint).count(), 1, "{text}");
    assert!(!text.contains("at the same time"), "{text}");
    assert!(text.contains("run before it"), "{text}");
    let err = resilience::Builder::new()
        .provider("iso-hint-a", other())
        .provider("iso-hint-b", other())
        .init()
        .unwrap_err();
    assert_eq!(err.problems().len(), 4, "{err}");
    assert_eq!(err.to_string().matches(hint).count(), 1, "{err}");
}

/// Guards dropped in any order: the newest one alive decides, and once all are gone the
/// thread is back on the process's providers.
#[test]
fn guards_dropped_out_of_order_leave_no_scope_behind() {
    let first = testing::isolate();
    resilience::provider("iso-order").force_open();
    let second = testing::isolate();
    drop(first);
    assert_eq!(
        state("iso-order"),
        CircuitState::Closed,
        "the second guard's own"
    );
    drop(second);
    assert_eq!(
        state("iso-order"),
        CircuitState::Closed,
        "the process's, not the first guard's"
    );
}

/// A name the global `configure` refuses is refused under a guard too: a test must not pass
/// with what production refuses.
#[test]
fn a_name_refused_globally_is_refused_under_a_guard() {
    let _isolated = testing::isolate();
    assert!(resilience::configure("", Settings::new()).is_err());
}

/// A name the process's registry logs an error for at its first use (it makes the provider
/// all the same) is logged under a guard too: a test sees what its code will log.
#[test]
fn a_name_problem_at_first_use_is_logged_under_a_guard_too() {
    let _isolated = testing::isolate();
    let (logs, subscriber) = common::capture();
    tracing::subscriber::with_default(subscriber, || {
        let _ = resilience::provider(" iso-spaced");
        let _ = resilience::provider(" iso-spaced");
        let _ = resilience::provider("iso-fine");
    });
    let text = logs.text();
    assert_eq!(
        text.matches("ERROR resilience: [CONFIG] provider ` iso-spaced`: expected a provider name without leading or trailing spaces").count(),
        1,
        "{text}"
    );
    assert!(!text.contains("iso-fine"), "{text}");
}

/// A second `init()` (the application's after a library's) and a `configure()` after an
/// `init()` say what they change of the code settings before them under a guard too, as they
/// do for the process's providers: a test sees what its code will log.
#[test]
fn a_later_init_or_configure_says_what_it_changes_under_a_guard_too() {
    let _isolated = testing::isolate();
    let (logs, subscriber) = common::capture();
    tracing::subscriber::with_default(subscriber, || {
        resilience::Builder::new()
            .defaults(Settings::new().max_attempts(2))
            .provider("iso-layers", Settings::new().max_attempts(5))
            .init()
            .unwrap();
        resilience::Builder::new()
            .defaults(Settings::new().max_attempts(4))
            .init()
            .unwrap();
        resilience::configure("iso-layers", Settings::new().max_attempts(3)).unwrap();
    });
    let text = logs.text();
    for line in [
        "WARN resilience: [CONFIG] init() sets Settings::max_attempts of the defaults to 4, over \
         the 2 given in code before (an earlier init(), or configure()): settings in code layer \
         over those before them setting=\"max_attempts\" earlier=\"2\" value=\"4\"",
        "WARN resilience: [CONFIG] configure() sets Settings::max_attempts of provider \
         `iso-layers` to 3, over the 5 given in code before (an earlier init(), or \
         configure()): settings in code layer over those before them provider=\"iso-layers\" \
         setting=\"max_attempts\" earlier=\"5\" value=\"3\"",
    ] {
        assert_eq!(text.matches(line).count(), 1, "{line:?} in:\n{text}");
    }
    assert_eq!(text.matches("[CONFIG]").count(), 2, "{text}");
    assert_eq!(state("iso-layers"), CircuitState::Closed);
    assert_eq!(resilience::provider("iso-layers").config().max_attempts, 3);
}

/// A test's breaker moves are not the process's in the metrics: the state gauge of the name
/// stays the process's provider's.
#[test]
fn an_isolated_breaker_does_not_publish_its_state() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    resilience::telemetry::use_installed_recorder();
    assert_eq!(state("iso-gauge"), CircuitState::Closed);
    {
        let _isolated = testing::isolate();
        resilience::provider("iso-gauge").force_open();
    }
    let text = handle.render();
    let line = |state: &str| {
        format!("resilience_circuit_state{{provider=\"iso-gauge\",state=\"{state}\"}}")
    };
    assert!(text.contains(&format!("{} 1", line("closed"))), "{text}");
    assert!(
        text.contains(&format!("{} 0", line("forced_open"))),
        "{text}"
    );
}

/// The README's example, as written there: three attempts, the third failure opens.
#[tokio::test(start_paused = true)]
async fn the_readme_example_holds() {
    let _isolated = testing::isolate();
    resilience::configure("glm", Settings::new().max_attempts(3).failure_threshold(3)).unwrap();
    let calls = std::sync::atomic::AtomicU32::new(0);
    let failed: Result<(), io::Error> = resilience::provider("glm")
        .execute(|| async {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            assert!(resilience::current_call().is_some());
            Err(io::ErrorKind::ConnectionReset.into())
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(calls.into_inner(), 3);
    assert_eq!(resilience::provider("glm").state(), CircuitState::Open);
}

/// A service's start-up code run under a guard (`Builder::init`) sets up the guard's
/// providers, not the process's: two tests that do it with different settings at the same
/// time each get their own, and what a test without a guard configured does not leak in.
#[test]
fn start_up_code_under_a_guard_configures_the_guard_s_providers() {
    fn start_up(attempts: u32) -> Result<(), resilience::ConfigError> {
        resilience::Builder::new()
            .defaults(Settings::new().base_delay(Duration::ZERO))
            .provider("iso-init", Settings::new().max_attempts(attempts))
            .init()
    }
    // Without a guard: the process's.
    resilience::configure("iso-init", Settings::new().failure_threshold(1)).unwrap();
    let both = Arc::new(Barrier::new(2));
    let tests: Vec<_> = [2, 4]
        .into_iter()
        .map(|attempts| {
            let both = both.clone();
            std::thread::spawn(move || {
                let _isolated = testing::isolate();
                start_up(attempts).unwrap();
                both.wait();
                let p = resilience::provider("iso-init");
                assert_eq!(p.config().max_attempts, attempts);
                assert_eq!(p.config().base_delay, Duration::ZERO);
                assert_eq!(p.config().failure_threshold, 5, "not the process's 1");
                // Changing a provider already made is refused, as globally.
                assert!(start_up(attempts + 1).is_err());
                assert!(start_up(attempts).is_ok());
            })
        })
        .collect();
    for t in tests {
        t.join().unwrap();
    }
    assert_eq!(
        resilience::provider("iso-init").config().max_attempts,
        3,
        "the process's provider kept its own settings"
    );
}

/// Tasks on a `multi_thread` runtime's workers share the test's providers through
/// `Isolation::run`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_tasks_run_under_the_test_s_isolation() {
    let isolated = testing::isolate();
    resilience::configure("iso-spawn", fast()).unwrap();
    let isolation = isolated.isolation();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(isolation.run(async {
                let failed: Result<(), io::Error> = resilience::provider("iso-spawn")
                    .execute(|| async { Err(io::ErrorKind::ConnectionReset.into()) })
                    .await;
                assert!(failed.is_err());
                resilience::provider("iso-spawn").config().failure_threshold
            }))
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 1, "the test's settings, on a worker");
    }
    assert_eq!(state("iso-spawn"), CircuitState::Open);
    drop(isolated);
    assert_eq!(state("iso-spawn"), CircuitState::Closed);
}

/// Names are checked against the names the isolation knows, as the registry checks the
/// process's: not against what other tests happened to make.
#[test]
fn names_are_checked_against_the_isolation_s_own() {
    resilience::provider("iso-other-a");
    let _isolated = testing::isolate();
    resilience::configure("iso-other_a", Settings::new()).expect("another test's name");
    resilience::configure("iso-own-b", Settings::new()).unwrap();
    let clash = resilience::configure("iso-own_b", Settings::new()).unwrap_err();
    assert!(clash.to_string().contains("iso-own-b"), "{clash}");
    let init = resilience::Builder::new()
        .provider("iso-init-c", Settings::new())
        .provider("iso-init_c", Settings::new())
        .init();
    assert!(init.is_err(), "two clashing names of its own");
}

/// Two threads of one isolation configuring one name at once: one is refused, as globally,
/// and the other gets what it asked for.
#[test]
fn two_threads_of_one_isolation_configure_a_name_as_one_registry() {
    for _ in 0..200 {
        let isolation = testing::Isolation::new();
        let start = Arc::new(Barrier::new(2));
        let results: Vec<_> = [2, 4]
            .into_iter()
            .map(|attempts| {
                let (isolation, start) = (isolation.clone(), start.clone());
                std::thread::spawn(move || {
                    let _entered = isolation.enter();
                    start.wait();
                    resilience::configure("iso-race", Settings::new().max_attempts(attempts))
                        .map(|p| (attempts, p.config().max_attempts))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(ok.len(), 1, "{results:?}");
        assert_eq!(ok[0].0, ok[0].1, "got what it asked for");
    }
}

/// A call keeps the provider it started with, its attempt limit included, when it is polled
/// on without the isolation it started under.
#[tokio::test(start_paused = true)]
async fn a_call_keeps_its_provider_when_polled_outside_its_isolation() {
    use futures_util::FutureExt;
    static SITE: resilience::CallSite = resilience::CallSite::new("iso-resume", "call");
    let seen = std::sync::Mutex::new(Vec::new());
    let mut call = Box::pin(SITE.execute(|| async {
        let call = resilience::current_call().unwrap();
        seen.lock().unwrap().push(call.max_attempts);
        Err::<(), _>(io::Error::from(io::ErrorKind::ConnectionReset))
    }));
    {
        let _isolated = testing::isolate();
        resilience::configure(
            "iso-resume",
            Settings::new()
                .max_attempts(2)
                .base_delay(Duration::from_secs(1))
                .jitter(resilience::Jitter::None),
        )
        .unwrap();
        assert!(call.as_mut().now_or_never().is_none(), "waiting to retry");
    }
    assert!(call.await.is_err());
    assert_eq!(
        *seen.lock().unwrap(),
        [2, 2],
        "the isolated provider's limit"
    );
    assert_eq!(
        SITE.provider().consecutive_failures(),
        0,
        "the process's saw none"
    );
}

/// One isolation entered twice on a thread, around another: dropping the first guard leaves
/// the newest alive deciding.
#[test]
fn one_isolation_entered_twice_keeps_each_entry_apart() {
    let (a, b) = (testing::Isolation::new(), testing::Isolation::new());
    let first = a.enter();
    resilience::provider("iso-twice").force_open();
    let _second = b.enter();
    let _third = a.enter();
    drop(first);
    assert_eq!(
        state("iso-twice"),
        CircuitState::ForcedOpen,
        "a's, entered last"
    );
}

struct SiteClient;

impl SiteClient {
    // Registered at load: `init()` knows this name before its first call, under a guard too.
    #[resilient(provider = "iso-init-site-v2")]
    async fn upload(&self) -> Result<u32, io::Error> {
        Ok(1)
    }
}

/// The service's start-up code run under a guard is checked as the process's `init()` checks
/// it: a provider whose variables are a `#[resilient]` method's provider's
/// (`RESILIENCE_ISO_INIT_SITE_V2_…`) is refused, though the method was never called.
#[test]
fn init_under_a_guard_knows_the_resilient_methods_providers() {
    let _isolated = testing::isolate();
    let refused = resilience::Builder::new()
        .provider("iso-init-site.v2", Settings::new())
        .init()
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("iso-init-site-v2") && refused.contains("iso-init-site.v2"),
        "{refused}"
    );
    // Unchanged: the method's provider still runs, and the name refused was not configured.
    assert_eq!(runtime().block_on(SiteClient.upload()).unwrap(), 1);
    resilience::Builder::new()
        .provider("iso-init-other", Settings::new())
        .init()
        .unwrap();
}

/// Never called: the provider a slip in code is told apart from.
#[allow(dead_code)]
#[resilient(provider = "iso-tenant-eu")]
async fn tenant_upload() -> io::Result<()> {
    Ok(())
}

/// `init()` under a guard warns of a name given settings in code one slip off a method's
/// provider, as the process's `init()` does (helper-116's review: it said nothing there).
#[test]
fn a_slip_in_code_is_warned_about_under_isolation_too() {
    let _isolated = testing::isolate();
    let (logs, subscriber) = common::capture();
    let r = tracing::subscriber::with_default(subscriber, || {
        resilience::Builder::new()
            .provider("iso-tenant-ue", Settings::new().max_attempts(2))
            .init()
    });
    assert!(r.is_ok(), "{r:?}");
    let text = logs.text();
    assert!(
        text.contains("did you mean provider `iso-tenant-eu`?"),
        "{text}"
    );
}

/// What the docs say of `flavor = "multi_thread"`: the test's body is under its guard, but a
/// task it spawns runs on a worker, where none is, and gets the process's provider unless it
/// is wrapped with `Isolation::run`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_multi_thread_runtime_only_wrapped_tasks_are_isolated() {
    let isolated = testing::isolate();
    let mine = resilience::configure("iso-multi", fast()).unwrap();
    assert_eq!(resilience::provider("iso-multi"), mine, "the test's body");
    let unwrapped = tokio::spawn(async { resilience::provider("iso-multi") })
        .await
        .unwrap();
    assert_ne!(unwrapped, mine, "a task on a worker, unwrapped");
    let wrapped = tokio::spawn(
        isolated
            .isolation()
            .run(async { resilience::provider("iso-multi") }),
    )
    .await
    .unwrap();
    assert_eq!(wrapped, mine, "a task on a worker, wrapped");
}

/// A site from `Provider::call_site` calls what a `#[resilient]` method would: in an
/// isolation, the isolation's provider of its name, though made from the process's (a client
/// made once for every test); outside any, the provider it was made from, though that is an
/// isolation's (a task a test spawns onto a worker, unwrapped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_site_calls_the_isolation_s_provider_and_elsewhere_its_own() {
    let fail = || async { Err::<(), _>(io::Error::from(io::ErrorKind::ConnectionReset)) };
    let process_site = resilience::provider("iso-site").call_site("upload");
    let isolated = testing::isolate();
    let mine = resilience::configure("iso-site", fast().max_attempts(1)).unwrap();
    assert!(process_site.execute(fail).await.is_err());
    assert_eq!(
        mine.state(),
        CircuitState::Open,
        "the isolation's breaker counted it"
    );
    let process = tokio::spawn(async { resilience::provider("iso-site").state() })
        .await
        .unwrap();
    assert_eq!(
        process,
        CircuitState::Closed,
        "the process's provider saw nothing"
    );

    let mine = resilience::configure("iso-site-2", fast().max_attempts(1)).unwrap();
    let site = resilience::provider("iso-site-2").call_site("upload");
    assert!(tokio::spawn(site.execute(fail)).await.unwrap().is_err());
    assert_eq!(
        mine.state(),
        CircuitState::Open,
        "made here, it called the isolation's"
    );
    drop(isolated);
    assert_eq!(
        resilience::provider("iso-site-2").state(),
        CircuitState::Closed
    );
}

/// A retry budget that never refills is warned about when an isolated provider is made, as
/// when the process's is (`configure`, or first use after `init()`), once per provider; not
/// for one allowed a single attempt, which never retries.
#[test]
fn a_budget_that_never_refills_is_warned_about_under_isolation_too() {
    let _isolated = testing::isolate();
    let never = || {
        Settings::new()
            .retry_budget_ratio(0.0)
            .retry_budget_min_per_second(0.0)
    };
    let (logs, subscriber) = common::capture();
    tracing::subscriber::with_default(subscriber, || {
        resilience::configure("iso-dry", never()).unwrap();
        resilience::configure("iso-dry", never()).unwrap();
        resilience::Builder::new()
            .provider("iso-dry-later", never())
            .provider("iso-one-attempt", never().max_attempts(1))
            .init()
            .unwrap();
        let _ = resilience::provider("iso-dry-later");
        let _ = resilience::provider("iso-dry-later");
        let _ = resilience::provider("iso-one-attempt");
    });
    let text = logs.text();
    let warned = |name: &str| {
        text.matches(&format!(
            "The retry budget of provider {name} never refills"
        ))
        .count()
    };
    assert_eq!(
        (
            warned("iso-dry"),
            warned("iso-dry-later"),
            warned("iso-one-attempt")
        ),
        (1, 1, 0),
        "{text}"
    );
}

/// The warning is logged with the isolation's lock released: a log layer that makes a
/// provider as the line goes out (a log shipper with a resilient client) does not wait on it.
#[test]
fn a_log_layer_that_makes_a_provider_while_the_budget_warning_is_logged_does_not_hang() {
    let isolation = testing::Isolation::new();
    let shipper = isolation.clone();
    common::re_enters(
        "making a provider while the budget warning was logged",
        move || {
            let _entered = shipper.enter();
            let _ = resilience::provider("iso-shipper");
        },
        move || {
            let _entered = isolation.enter();
            let never = Settings::new()
                .retry_budget_ratio(0.0)
                .retry_budget_min_per_second(0.0);
            resilience::configure("iso-dry-shipped", never.clone()).unwrap();
            resilience::Builder::new()
                .provider("iso-dry-first-use", never)
                .init()
                .unwrap();
            let _ = resilience::provider("iso-dry-first-use");
        },
    );
}

/// A site made by name (`resilience::call_site`) calls the isolation's provider inside a
/// guard, made there from its settings, and, first called outside one after, the process's:
/// what the isolation made is not cached in the site.
#[tokio::test]
async fn a_named_site_calls_the_isolation_s_provider_then_the_process_s() {
    let site = resilience::call_site("iso-named-site", "upload");
    let attempts = || {
        site.execute(|| async {
            Ok::<_, std::io::Error>(resilience::current_call().unwrap().max_attempts)
        })
    };
    {
        let _isolated = testing::isolate();
        resilience::configure("iso-named-site", Settings::new().max_attempts(7)).unwrap();
        assert_eq!(attempts().await.unwrap(), 7);
    }
    let outside = attempts().await.unwrap();
    assert_ne!(outside, 7);
    assert_eq!(
        outside,
        resilience::provider("iso-named-site").config().max_attempts
    );
    assert!(
        resilience::providers()
            .iter()
            .any(|p| p.name() == "iso-named-site")
    );
}

/// Under an isolation, as outside one (registry::tests::
/// init_knows_a_named_site_s_provider_before_its_first_call), settings given to a named site's
/// provider before its first call are no slip of a provider near it: strict, the test's
/// `init()` was refused where the program's is not.
#[tokio::test]
async fn an_isolation_s_init_knows_a_named_site_s_provider_before_its_first_call() {
    let _isolated = testing::isolate();
    let _called = resilience::provider("iso-nsite-harbor");
    let site = resilience::call_site("iso-nsite-harbar", "upload");
    resilience::Builder::new()
        .provider("iso-nsite-harbar", Settings::new().max_attempts(3))
        .strict()
        .init()
        .unwrap();
    let attempts = site
        .execute(|| async {
            Ok::<_, std::io::Error>(resilience::current_call().unwrap().max_attempts)
        })
        .await;
    assert_eq!(attempts.unwrap(), 3);
}
