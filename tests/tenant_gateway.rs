//! A multi-tenant gateway whose upstreams are known only at run time: its config file names
//! them per tenant and region (some typed by users: spaces, upper case, unicode, long ones,
//! near duplicates, empty), and each is called through `resilience::call_site(name, "chat")`.
//! What such a service meets: bad names from its config, the cost of many providers (memory,
//! `/metrics`), isolation between tenants, reconfiguring at run time, and names in logs.
//!
//! Its own test binary: it uses the process's registry (each test its own names; `init()`,
//! which sees every name, is asserted on the names a test gives), installs the metrics
//! recorder and a global log subscriber, and sets tenants' variables before `main`; `drain()`
//! runs in a child process. Upstreams are fault servers on 127.0.0.1, port 0.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use resilience::{
    Builder, CallSite, CircuitState, HttpError, ResilienceError, ResponseExt, Settings,
};
use resilience_testkit::{Fault, FaultServer, Faults, Outage};

// ---------------------------------------------------------------------------------------
// A counting allocator: allocations and net bytes made on this thread while armed.

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static NET_BYTES: Cell<i64> = const { Cell::new(0) };
}

fn armed() -> bool {
    ARMED.try_with(Cell::get).unwrap_or(false)
}

fn add_bytes(n: i64) {
    let _ = NET_BYTES.try_with(|b| b.set(b.get() + n));
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if armed() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
            add_bytes(layout.size() as i64);
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if armed() {
            add_bytes(-(layout.size() as i64));
        }
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if armed() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
            add_bytes(new_size as i64 - layout.size() as i64);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations and net bytes (allocated minus freed) on this thread while `f` runs.
fn measured<T>(f: impl FnOnce() -> T) -> (T, u64, i64) {
    ARMED.with(|a| a.set(true));
    let (a0, b0) = (ALLOCATIONS.with(Cell::get), NET_BYTES.with(Cell::get));
    let out = f();
    let (a1, b1) = (ALLOCATIONS.with(Cell::get), NET_BYTES.with(Cell::get));
    ARMED.with(|a| a.set(false));
    (out, a1 - a0, b1 - b0)
}

// ---------------------------------------------------------------------------------------
// The environment an operator gives the gateway: set before `main`, while the binary has one
// thread, after removing the runner's own resilience variables.

#[ctor::ctor(unsafe)]
fn operators_environment() {
    let stale: Vec<_> = std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| {
            let k = k.to_string_lossy().to_ascii_uppercase();
            ["RESILIENCE", "RETRY_", "CIRCUIT_BREAKER"]
                .iter()
                .any(|p| k.starts_with(p))
        })
        .collect();
    for k in stale {
        // SAFETY: before `main`: no other thread exists yet.
        unsafe { std::env::remove_var(k) };
    }
    // Tenant globex's Asian upstream (`globex.ap-1`) gets 2 attempts from its operator.
    // SAFETY: as above.
    unsafe { std::env::set_var("RESILIENCE_GLOBEX_AP_1_RETRY_MAX_ATTEMPTS", "2") };
    // A user-typed upstream, `ünïcode-eu`, whose variables' part is `_N_CODE_EU`.
    // SAFETY: as above.
    unsafe { std::env::set_var("RESILIENCE__N_CODE_EU_RETRY_MAX_ATTEMPTS", "4") };
}

// ---------------------------------------------------------------------------------------
// A global log subscriber, whose lines the tests filter by the names they use.

// Not `tests/common`'s: that brings `hermetic`, whose own `ctor` would race this binary's
// (the order of two is not defined) and could remove the operator's variables set above.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> String {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    let captured = LOGS.get_or_init(|| {
        let out = Captured::default();
        let writer = out.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(sub).unwrap();
        out
    });
    String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned()
}

fn metrics() -> &'static resilience::telemetry::MetricsHandle {
    static HANDLE: OnceLock<resilience::telemetry::MetricsHandle> = OnceLock::new();
    HANDLE.get_or_init(|| resilience::telemetry::install_recorder().unwrap())
}

// ---------------------------------------------------------------------------------------
// The gateway.

#[derive(Debug, thiserror::Error, resilience::Classify)]
enum ChatError {
    #[error(transparent)]
    #[classify(transparent)]
    Network(#[from] reqwest::Error),
    #[error(transparent)]
    #[classify(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    #[classify(transparent)]
    Resilience(#[from] ResilienceError),
}

/// One upstream: a provider name from the config file, its URL and its one call site.
struct Upstream {
    name: String,
    url: String,
    chat: &'static CallSite,
}

struct Gateway {
    client: reqwest::Client,
    upstreams: Vec<Upstream>,
}

impl Gateway {
    /// Every upstream of the config, its site made once.
    fn new(config: &[(String, String)]) -> Self {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let upstreams = config
            .iter()
            .map(|(name, url)| Upstream {
                name: name.clone(),
                url: url.clone(),
                chat: resilience::call_site(name, "chat"),
            })
            .collect();
        Gateway { client, upstreams }
    }

    fn upstream(&self, name: &str) -> &Upstream {
        self.upstreams.iter().find(|u| u.name == name).unwrap()
    }

    async fn chat(&self, name: &str, prompt: &str) -> Result<String, ChatError> {
        let up = self.upstream(name);
        up.chat
            .execute(|| async {
                let call = resilience::current_call().unwrap();
                let id: serde_json::Value = self
                    .client
                    .post(&up.url)
                    .header("Idempotency-Key", call.idempotency_key)
                    .body(prompt.to_owned())
                    .send()
                    .await?
                    .check_status()?
                    .json()
                    .await?;
                Ok(id["id"].as_str().unwrap_or_default().to_owned())
            })
            .await
    }
}

async fn server(faults: Faults) -> FaultServer {
    FaultServer::start(faults).await.unwrap()
}

/// The problems of `err` that name `name` (as `provider `…``).
fn problems_of(err: &resilience::ConfigError, name: &str) -> Vec<String> {
    let subject = format!("provider `{}`", name.escape_debug());
    err.problems()
        .iter()
        .filter(|p| p.variable == subject)
        .map(ToString::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Bad names from the config file.

#[tokio::test(start_paused = true)]
async fn config_names_are_checked_at_start_up_not_at_each_call() {
    let up = server(Faults::none()).await;
    let url = up.upload_url();
    let long = format!("tenant-{}", "x".repeat(2_000));
    let mut names: Vec<String> = Vec::new();
    for t in 0..60 {
        for r in ["eu", "us", "ap-1"] {
            names.push(format!("cfg-tenant{t}-{r}"));
        }
    }
    let good = names.clone();
    let bad = [
        "",                 // empty
        "   ",              // blank
        " cfg-acme",        // a stray space
        "cfg-acme\n",       // a line feed from the file
        "cfg-acme\u{200b}", // a zero-width space from a paste
        "東京",             // no ASCII letter or digit
        "retry",            // reads the global RESILIENCE_RETRY_ENABLED
    ];
    let clashing = [
        ("cfg-Acme EU", "cfg-acme-eu"), // case and punctuation
        ("cfg-globex.ap-1", "cfg-globex-ap-1"),
        ("cfg-Ünïcode", "cfg-ünïcode"), // unicode letters become `_`
    ];
    names.extend(bad.iter().map(|s| s.to_string()));
    for (a, b) in clashing {
        names.extend([a.to_owned(), b.to_owned()]);
    }
    names.push(long.clone());
    names.push("cfg-tenant0-eu".to_owned()); // listed twice: one upstream
    let config: Vec<(String, String)> = names.iter().map(|n| (n.clone(), url.clone())).collect();
    // Sites made from the config: no Result, no panic, nothing logged yet.
    let gw = Gateway::new(&config);

    // Settings in code for two tenants, then `init()`: every bad name at once.
    let err = Builder::new()
        .provider("cfg-tenant1-eu", Settings::new().max_attempts(5))
        .provider(
            "cfg-tenant2-eu",
            Settings::new().breaker_timeout(Duration::from_secs(7)),
        )
        .init()
        .unwrap_err();
    let text = err.to_string();
    println!("{text}");
    for name in bad {
        let found = problems_of(&err, name);
        assert!(!found.is_empty(), "{name:?} not reported:\n{text}");
    }
    for (a, b) in clashing {
        let (pa, pb) = (problems_of(&err, a), problems_of(&err, b));
        assert!(
            pa.iter()
                .any(|p| p.contains(&format!("provider `{b}` reads them too"))),
            "{pa:?}"
        );
        assert!(
            pb.iter()
                .any(|p| p.contains(&format!("provider `{a}` reads them too"))),
            "{pb:?}"
        );
    }
    for name in &good {
        assert!(
            problems_of(&err, name).is_empty(),
            "{name}: {:?}",
            problems_of(&err, name)
        );
    }
    assert!(
        problems_of(&err, &long).is_empty(),
        "a long name is a valid one"
    );
    // The error holds only problems with names: the code settings were installed.
    assert!(
        err.problems()
            .iter()
            .all(|p| p.variable.starts_with("provider `")),
        "{text}"
    );
    assert_eq!(gw.chat("cfg-tenant1-eu", "hi").await.unwrap(), "file-1");
    let t1 = resilience::provider("cfg-tenant1-eu");
    assert_eq!(t1.config().max_attempts, 5);
    assert_eq!(
        resilience::provider("cfg-tenant2-eu")
            .config()
            .breaker_timeout,
        Duration::from_secs(7)
    );

    // A bad name still works when called: a provider of its own, logged at its first call.
    let _ = logs();
    gw.chat("", "hi").await.unwrap();
    gw.chat("cfg-acme\n", "hi").await.unwrap();
    let lines = logs();
    assert!(lines.lines().any(|l| l.contains("ERROR")
        && l.contains("[CONFIG] provider ``: expected a provider name with at least one ASCII")));
    assert!(lines.lines().any(|l| l.contains("ERROR")
        && l.contains(r"[CONFIG] provider `cfg-acme\n`: expected a provider name without")));
    // Two clashing names, both called: the second's first call logs the clash.
    gw.chat("cfg-globex.ap-1", "hi").await.unwrap();
    assert!(!logs().contains("provider `cfg-globex.ap-1`: expected a name whose"));
    gw.chat("cfg-globex-ap-1", "hi").await.unwrap();
    assert!(logs().lines().any(|l| l.contains("ERROR")
        && l.contains("provider `cfg-globex-ap-1`: expected a name whose RESILIENCE_CFG_GLOBEX_AP_1_… variables are its own, but provider `cfg-globex.ap-1` reads them too")));

    // configure() sees the providers made so far: a tenant given settings at run time whose
    // name clashes with one called is refused, naming both.
    let err = resilience::configure("cfg-GLOBEX_AP_1", Settings::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("provider `cfg-GLOBEX_AP_1`: expected a name whose"),
        "{err}"
    );
    assert!(err.to_string().contains("cfg-globex"), "{err}");
    // But not the sites made and not called yet: `cfg-acme-eu` clashes with `cfg-Acme EU`,
    // whose site exists; that is init()'s to find (above), not configure()'s.
    resilience::configure("cfg-acme-eu", Settings::new()).unwrap();

    // The config is fixed and reloaded without the bad names: init() still names them, as
    // every name given to call_site() is known for the life of the process.
    let fixed: Vec<(String, String)> = good.iter().map(|n| (n.clone(), url.clone())).collect();
    let _reloaded = Gateway::new(&fixed);
    let again = Builder::new().init().unwrap_err();
    for name in bad {
        assert!(!problems_of(&again, name).is_empty(), "{name:?} forgotten");
    }
}

/// `check_names`: the config's names checked before any site is made, nothing remembered.
#[test]
fn check_names_refuses_bad_names_without_remembering_them() {
    let config = [
        "chk-acme-eu",
        "chk-acme-us",
        "chk-Acme EU",
        "chk-acme-eu", // listed twice: one name
        "",
        " chk-acme",
        "chk-acme\u{200b}",
        "chk-globex.ap-1",
    ];
    let err = resilience::check_names(config).unwrap_err();
    let text = err.to_string();
    let first_text = text.clone();
    let mut refused: BTreeSet<&str> = BTreeSet::new();
    for name in config {
        if !problems_of(&err, name).is_empty() {
            refused.insert(name);
        }
    }
    assert_eq!(
        refused,
        BTreeSet::from([
            "chk-acme-eu",
            "chk-Acme EU",
            "",
            " chk-acme",
            "chk-acme\u{200b}"
        ]),
        "{text}"
    );
    assert!(
        problems_of(&err, "chk-Acme EU")[0].contains("but provider `chk-acme-eu` reads them too"),
        "{text}"
    );
    assert!(
        problems_of(&err, "")[0]
            .contains("expected a provider name with at least one ASCII letter or digit")
    );
    // The other name of a clash is escaped as the problem's own is (it was written raw).
    let err = resilience::check_names(["chk-o'hara\\eu", "chk-O_HARA_EU"]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(r"provider `chk-O_HARA_EU`: expected a name whose RESILIENCE_CHK_O_HARA_EU_… variables are its own, but provider `chk-o\'hara\\eu` reads them too"),
        "{text}"
    );
    let err = resilience::check_names(["chk-it's", "chk-it's-retry"]).unwrap_err();
    assert!(
        err.to_string()
            .contains(r"is provider `chk-it\'s`'s RESILIENCE_RETRY_ENABLED"),
        "{err}"
    );
    // Against names known already.
    resilience::call_site("chk-known-eu", "chat");
    let err = resilience::check_names(["chk-KNOWN_EU"]).unwrap_err();
    assert!(
        err.to_string()
            .contains("provider `chk-known-eu` reads them too"),
        "{err}"
    );
    // Nothing made, nothing remembered: each half of the clash alone is fine.
    assert!(
        resilience::providers()
            .iter()
            .all(|p| !p.name().starts_with("chk-"))
    );
    resilience::check_names(["chk-Acme EU"]).unwrap();
    resilience::check_names(["chk-acme-eu", "chk-acme-us", "chk-globex.ap-1"]).unwrap();
    // The names as a config file gives them, `String`s: taken as they are (helper-224's
    // review; `&'a str` items only made a gateway map each to `as_str` first).
    let read: Vec<String> = config.iter().map(|n| (*n).to_owned()).collect();
    let err = resilience::check_names(&read).unwrap_err();
    assert_eq!(err.to_string(), first_text);
    resilience::check_names(read.iter().filter(|n| n.starts_with("chk-acme-"))).unwrap();
}

// ---------------------------------------------------------------------------------------
// Memory and metrics with many providers.

/// A chat that succeeds without I/O: the provider's own cost, not reqwest's.
async fn ok_call(site: &'static CallSite) {
    let r: Result<(), ChatError> = site.execute(|| async { Ok(()) }).await;
    r.unwrap();
}

#[tokio::test(start_paused = true)]
async fn many_providers_cost_and_metrics() {
    let metrics = metrics();
    const N: usize = 300;
    let names: Vec<String> = (0..N).map(|i| format!("mem-tenant{i:03}-eu")).collect();
    // Making the sites, once each: each keeps its name, a `CallSite` and its counters.
    let t0 = std::time::Instant::now();
    let (sites, _, site_bytes) = measured(|| {
        names
            .iter()
            .map(|n| resilience::call_site(n, "chat"))
            .collect::<Vec<_>>()
    });
    // The first call of each makes its provider (breaker, budget, its series).
    let mut provider_bytes = 0i64;
    for site in &sites {
        ARMED.with(|a| a.set(true));
        let before = NET_BYTES.with(Cell::get);
        ok_call(site).await;
        provider_bytes += NET_BYTES.with(Cell::get) - before;
        ARMED.with(|a| a.set(false));
    }
    println!(
        "made in {:?} (real time, sites and providers)",
        t0.elapsed()
    );
    let (site_each, provider_each) = (site_bytes / N as i64, provider_bytes / N as i64);
    println!("a site: {site_each} bytes kept; a provider: {provider_each} bytes kept");
    assert!(site_each > 0 && provider_each > 0);
    assert!(
        site_each + provider_each < 64 * 1024,
        "{site_each} + {provider_each}"
    );

    // Asked again, per request: the same site, with nothing allocated (it was one allocation
    // per ask: the map's key was a `String` made from the name).
    let (again, allocations, bytes) = measured(|| resilience::call_site(&names[7], "chat"));
    assert!(std::ptr::eq(again, sites[7]));
    assert_eq!((allocations, bytes), (0, 0));
    let (_, allocations, bytes) = measured(|| {
        for name in &names {
            std::hint::black_box(resilience::call_site(name, "chat"));
        }
    });
    assert_eq!((allocations, bytes), (0, 0), "asking again for {N} sites");
    // Another method of a provider shares the name's one copy: one site's worth more. The
    // least of three: a table of the registry's, which the binary's other tests fill at the
    // same time, may grow during one of them (seen once: 361 bytes more). Three methods of one provider.
    let embed_bytes = ["embed", "rerank", "moderate"]
        .into_iter()
        .map(|method| measured(|| resilience::call_site(&names[7], method)).2)
        .min()
        .unwrap();
    assert!(embed_bytes < site_each + 64, "{embed_bytes} vs {site_each}");

    // Cardinality: 140 lines a provider with one method (130 of the method's, 10 of the
    // provider's own), all made by the first call; none carry anything but the name.
    let t1 = std::time::Instant::now();
    let text = metrics.render();
    println!("rendered in {:?}", t1.elapsed());
    // Lines and bytes by provider label, in one pass.
    let mut by_provider: std::collections::HashMap<&str, (usize, usize)> = Default::default();
    for line in text.lines() {
        if let Some(rest) = line.split_once("provider=\"").map(|(_, r)| r)
            && let Some((name, _)) = rest.split_once('"')
        {
            let e = by_provider.entry(name).or_default();
            e.0 += 1;
            e.1 += line.len() + 1;
        }
    }
    // + 10 counters at 0 for each of the three methods above.
    assert_eq!(by_provider["mem-tenant007-eu"].0, 140 + 30);
    assert_eq!(by_provider["mem-tenant008-eu"].0, 140);
    let (lines, bytes) = names
        .iter()
        .map(|n| by_provider[n.as_str()])
        .fold((0, 0), |(l, b), (l2, b2)| (l + l2, b + b2));
    println!("/metrics: {lines} lines, {bytes} bytes for {N} providers");
    assert_eq!(lines, 140 * N + 30);
    assert!(bytes > 4_000_000, "{bytes}");

    // /health lists every provider with its settings.
    let health = resilience::telemetry::health().into_body();
    let health_bytes = health.to_string().len();
    println!("/health: {health_bytes} bytes");

    // A user-typed name of 2,000 characters is a valid one, and a label value 140 times over.
    let long = format!("mem-{}", "x".repeat(2_000));
    ok_call(resilience::call_site(&long, "chat")).await;
    let long_bytes: usize = metrics
        .render()
        .lines()
        .filter(|l| l.contains(&long))
        .map(|l| l.len() + 1)
        .sum();
    println!("a 2,000-character name: {long_bytes} bytes of /metrics");
    assert!(long_bytes > 140 * 2_000, "{long_bytes}");

    // Names from user input, one per request: everything above, kept for ever.
    let (_, _, grown) = measured(|| {
        for i in 0..100 {
            let _ = resilience::call_site(&format!("mem-user-typed-{i}"), "chat");
        }
    });
    println!("100 user-typed names: {grown} bytes kept");
    assert!(grown >= 100 * 1_000, "{grown}");
}

// ---------------------------------------------------------------------------------------
// Isolation between tenants.

fn circuit_open_of(e: &ChatError) -> Option<&'static str> {
    match e {
        ChatError::Resilience(ResilienceError::CircuitOpen { provider, .. }) => Some(provider),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn one_tenant_s_outage_opens_only_its_breaker_and_spends_only_its_budget() {
    let metrics = metrics();
    let (a, b, c) = (
        server(Faults::none()).await,
        server(Faults::none()).await,
        server(Faults::none()).await,
    );
    let config = vec![
        ("iso-acme-eu".to_owned(), a.upload_url()),
        ("iso-acme-us".to_owned(), b.upload_url()),
        ("iso-initech-eu".to_owned(), c.upload_url()),
    ];
    let gw = Gateway::new(&config);
    // acme-eu has its own settings in code: a small budget that never refills.
    resilience::configure(
        "iso-acme-eu",
        Settings::new()
            .retry_budget_capacity(3)
            .retry_budget_ratio(0.0)
            .retry_budget_min_per_second(0.0)
            .failure_threshold(20),
    )
    .unwrap();
    for name in ["iso-acme-eu", "iso-acme-us", "iso-initech-eu"] {
        gw.chat(name, "warm-up").await.unwrap();
    }
    a.outage(Outage::Every(Fault::Status(503)));
    // Three retries, then acme-eu's budget is spent: one attempt a call.
    let before = a.stats().requests;
    for _ in 0..4 {
        assert!(gw.chat("iso-acme-eu", "hi").await.is_err());
    }
    assert_eq!(
        a.stats().requests - before,
        4 + 3,
        "4 first attempts, 3 retries"
    );
    let acme_eu = resilience::provider("iso-acme-eu");
    assert_eq!(acme_eu.retry_budget_available(), 0.0);
    // The other tenants retry as before: their budgets are their own.
    let us = resilience::provider("iso-acme-us");
    assert_eq!(us.retry_budget_available(), 100.0);
    b.script([Fault::Status(503), Fault::Status(503)]);
    gw.chat("iso-acme-us", "hi").await.unwrap();
    assert_eq!(b.stats().requests, 1 + 3);

    // acme-eu fails on until its breaker opens (20 failures): the others stay closed.
    while acme_eu.state() == CircuitState::Closed {
        let _ = gw.chat("iso-acme-eu", "hi").await;
    }
    assert_eq!(acme_eu.state(), CircuitState::Open);
    let e = gw.chat("iso-acme-eu", "hi").await.unwrap_err();
    assert_eq!(circuit_open_of(&e), Some("iso-acme-eu"), "{e:?}");
    for name in ["iso-acme-us", "iso-initech-eu"] {
        let p = resilience::provider(name);
        assert_eq!(p.state(), CircuitState::Closed, "{name}");
        assert_eq!(p.consecutive_failures(), 0, "{name}");
        gw.chat(name, "hi").await.unwrap();
    }
    let text = metrics.render();
    let opened = |p: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("resilience_circuit_transitions_total{")
                    && l.contains(&format!("provider=\"{p}\""))
                    && l.contains("from=\"closed\",to=\"open\"")
            })
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
    };
    assert_eq!(opened("iso-acme-eu").as_deref(), Some("1"));
    assert_eq!(opened("iso-acme-us").as_deref(), Some("0"));
    assert!(
        text.contains("resilience_circuit_state{provider=\"iso-acme-eu\",state=\"open\"} 1"),
        "{text}"
    );

    // The upstream comes back: after the breaker's timeout its probes close it.
    a.recover();
    tokio::time::sleep(acme_eu.retry_in().unwrap()).await;
    gw.chat("iso-acme-eu", "hi").await.unwrap();
    gw.chat("iso-acme-eu", "hi").await.unwrap();
    assert_eq!(acme_eu.state(), CircuitState::Closed);
}

// ---------------------------------------------------------------------------------------
// Settings: in code per tenant, by the environment, and changed at run time.

#[tokio::test(start_paused = true)]
async fn a_tenant_s_settings_by_env_and_changes_refused_at_run_time() {
    let up = server(Faults::none()).await;
    // The operator's RESILIENCE_GLOBEX_AP_1_RETRY_MAX_ATTEMPTS=2 (set before main).
    let gw = Gateway::new(&[("globex.ap-1".to_owned(), up.upload_url())]);
    up.outage(Outage::Every(Fault::Status(502)));
    assert!(gw.chat("globex.ap-1", "hi").await.is_err());
    assert_eq!(up.stats().requests, 2, "the operator's 2 attempts");
    let globex = resilience::provider("globex.ap-1");
    assert_eq!(globex.config().max_attempts, 2);

    // A config reload that sets what the operator's variable overrides is accepted: it
    // changes nothing (the variable beats code).
    let same = resilience::configure("globex.ap-1", Settings::new().max_attempts(4)).unwrap();
    assert_eq!(same.config().max_attempts, 2);
    // One that changes a tenant already called is refused, naming the setting, its variable
    // and the value the provider keeps.
    let err = resilience::configure(
        "globex.ap-1",
        Settings::new().breaker_timeout(Duration::from_secs(30)),
    )
    .unwrap_err();
    let text = err.to_string();
    println!("{text}");
    assert_eq!(err.problems().len(), 1, "{text}");
    assert!(text.contains("provider `globex.ap-1`"), "{text}");
    assert!(text.contains("Settings::breaker_timeout"), "{text}");
    assert!(
        text.contains("RESILIENCE_GLOBEX_AP_1_CIRCUIT_BREAKER_TIMEOUT"),
        "{text}"
    );
    assert!(text.contains("expected 60"), "{text}");
    // The same settings again are fine; nothing changed.
    resilience::configure("globex.ap-1", Settings::new().max_attempts(2)).unwrap();
    assert_eq!(globex.config().max_attempts, 2);
    // A tenant added by the reload is configured before its first call.
    let p = resilience::configure("globex.ap-2", Settings::new().max_attempts(4)).unwrap();
    assert_eq!(p.config().max_attempts, 4);
    // A user-typed unicode name reads the variables of its environment form.
    let u = resilience::provider("ünïcode-eu");
    assert_eq!(u.config().max_attempts, 4);

    // A reload through init() that adds a tenant's settings and changes one already made:
    // refused as a whole, the new tenant's settings not installed either.
    let err = Builder::new()
        .provider("globex.ap-3", Settings::new().max_attempts(5))
        .provider(
            "globex.ap-1",
            Settings::new().breaker_timeout(Duration::from_secs(30)),
        )
        .init()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("provider `globex.ap-1`: Settings::breaker_timeout"),
        "{err}"
    );
    assert_eq!(
        resilience::provider("globex.ap-3").config().max_attempts,
        3,
        "not installed"
    );

    // A breaker can still be forced open and reset at run time, per tenant.
    globex.force_open();
    let e = gw.chat("globex.ap-1", "hi").await.unwrap_err();
    assert_eq!(circuit_open_of(&e), Some("globex.ap-1"));
    assert_eq!(p.state(), CircuitState::Closed);
    globex.reset();
    up.recover();
    gw.chat("globex.ap-1", "hi").await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Names in logs, errors and metrics.

#[tokio::test(start_paused = true)]
async fn names_are_escaped_but_not_redacted() {
    let _ = logs();
    let metrics = metrics();
    let up = server(Faults::none()).await;
    // An upstream named after its URL, key and all (as a config file may have it).
    let secret = "https://bob:hunter2@log-acme.example/v1?api_key=abc123";
    let odd = "log-acme \"eu\"\nx";
    let gw = Gateway::new(&[
        (secret.to_owned(), up.upload_url()),
        (odd.to_owned(), up.upload_url()),
    ]);
    resilience::provider(secret).force_open();
    resilience::provider(odd).force_open();
    let e = gw.chat(secret, "hi").await.unwrap_err();
    let e2 = gw.chat(odd, "hi").await.unwrap_err();
    // As the README says (Metrics: "none of them redacted"): the error's text, every log line
    // and the metrics' label hold the password and the key.
    assert!(e.to_string().contains("bob:hunter2@"), "{e}");
    assert!(e.to_string().contains("api_key=abc123"), "{e}");
    let lines = logs();
    let transition = lines
        .lines()
        .find(|l| l.contains("forced_open for https://bob"))
        .unwrap();
    assert!(transition.contains("hunter2") && transition.contains("api_key=abc123"));
    let text = metrics.render();
    assert!(text.contains(&format!(
        "resilience_circuit_state{{provider=\"{secret}\",state=\"forced_open\"}} 1"
    )));
    let health = resilience::telemetry::health().into_body();
    assert!(health.to_string().contains("hunter2"));
    // A name with a line feed and quotes: escaped in text, one line each; refused by init().
    assert_eq!(e2.to_string().lines().count(), 1, "{e2}");
    assert!(e2.to_string().contains(r#"log-acme \"eu\"\nx"#), "{e2}");
    let refused = lines
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("log-acme"))
        .unwrap();
    assert!(
        refused.contains("expected a provider name without"),
        "{refused}"
    );
    assert!(text.contains(
        r#"resilience_circuit_state{provider="log-acme \"eu\"\nx",state="forced_open"} 1"#
    ));
}

// ---------------------------------------------------------------------------------------
// Shutting down: `drain()` is the process's, so it runs in a process of its own (this binary,
// run again for the one ignored test below).

#[test]
fn drain_ends_every_tenant_s_backoff() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "drain_child", "--include-ignored", "--nocapture"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 passed"), "{text}");
}

#[tokio::test(start_paused = true)]
#[ignore = "run by drain_ends_every_tenant_s_backoff, in a process of its own"]
async fn drain_child() {
    let _ = logs();
    let (a, b, c) = (
        server(Faults::none()).await,
        server(Faults::none()).await,
        server(Faults::none()).await,
    );
    let gw = Arc::new(Gateway::new(&[
        ("drain-acme-eu".to_owned(), a.upload_url()),
        ("drain-acme-us".to_owned(), b.upload_url()),
        ("drain-initech".to_owned(), c.upload_url()),
    ]));
    for name in ["drain-acme-eu", "drain-acme-us"] {
        resilience::configure(
            name,
            Settings::new()
                .base_delay(Duration::from_secs(10))
                .jitter(resilience::Jitter::None),
        )
        .unwrap();
    }
    a.outage(Outage::Every(Fault::Status(503)));
    b.outage(Outage::Every(Fault::Status(503)));
    let calls: Vec<_> = ["drain-acme-eu", "drain-acme-us"]
        .into_iter()
        .map(|name| {
            let gw = gw.clone();
            tokio::spawn(async move { gw.chat(name, "hi").await })
        })
        .collect();
    // Both calls asleep in their 10 s backoff: each logs its retry's line as the backoff
    // starts, in the poll that then sleeps (one thread, paused clock: the clock does not move
    // while this task yields).
    let asleep = |name: &str| {
        logs().lines().any(|l| {
            l.contains("[RETRY] Attempt 2/") && l.contains(&format!("provider=\"{name}\""))
        })
    };
    while !(asleep("drain-acme-eu") && asleep("drain-acme-us")) {
        tokio::task::yield_now().await;
    }
    let start = tokio::time::Instant::now();
    resilience::drain();
    for (call, name) in calls.into_iter().zip(["drain-acme-eu", "drain-acme-us"]) {
        match call.await.unwrap() {
            Err(ChatError::Resilience(ResilienceError::Draining { provider, retry_in })) => {
                assert_eq!(provider, name);
                assert_eq!(retry_in, Some(Duration::from_secs(10)));
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(start.elapsed(), Duration::ZERO, "woken at once");
    assert_eq!((a.stats().requests, b.stats().requests), (1, 1), "no retry");
    // A healthy tenant's first attempts still go; a failing one's are not retried.
    gw.chat("drain-initech", "hi").await.unwrap();
    c.script([Fault::Status(503)]);
    assert!(gw.chat("drain-initech", "hi").await.is_err());
    assert_eq!(c.stats().requests, 2);
}
