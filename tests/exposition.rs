//! `/metrics` read strictly: the exposition checked line by line against the text format 0.0.4
//! (no lenient parser) while calls and scrapes run at once; the listener's connection cap
//! against one client that holds every slot; and the answers to requests a scraper never
//! sends. Its own test binary: it installs the process's recorder (`serve`).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::TestError;
use resilience::{CallSite, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Provider names a label value must carry exactly: a backslash, a quote, a line feed, runs
/// of backslashes, and a backslash at the end.
const NAMES: [&str; 5] = [
    r"expo-a\b",
    r"expo-a\\b",
    "expo-q\"t",
    "expo-nl\nx",
    r"expo-end\",
];

static SITES: [CallSite; 5] = [
    CallSite::new(NAMES[0], "m\"1"),
    CallSite::new(NAMES[1], r"m\2"),
    CallSite::new(NAMES[2], "m3"),
    // Refused by `configure`, so with the default backoff: no retry, or a call takes seconds.
    CallSite::new(NAMES[3], "m\n4").without_retry(),
    CallSite::new(NAMES[4], "m5"),
];

/// One sample: family-level name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// A label value between its quotes, unescaped; only `\\`, `\"` and `\n` are escapes.
fn label_value(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, String> {
    let mut v = String::new();
    loop {
        match chars.next().ok_or("unterminated label value")? {
            '"' => return Ok(v),
            '\\' => match chars.next().ok_or("dangling backslash")? {
                '\\' => v.push('\\'),
                '"' => v.push('"'),
                'n' => v.push('\n'),
                c => return Err(format!("invalid escape \\{c}")),
            },
            '\n' => return Err("raw line feed in a label value".into()),
            c => v.push(c),
        }
    }
}

fn is_name(s: &str, first: fn(char) -> bool) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(first) && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// One sample line, strictly.
fn sample_line(line: &str) -> Result<Sample, String> {
    let end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value: {line:?}"))?;
    let name = &line[..end];
    if !is_name(name, |c| c.is_ascii_alphabetic() || c == '_' || c == ':') {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut chars = line[end..].chars().peekable();
    let mut labels = Vec::new();
    if chars.peek() == Some(&'{') {
        chars.next();
        loop {
            if chars.peek() == Some(&'}') {
                chars.next();
                break;
            }
            let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
            if !is_name(&key, |c| c.is_ascii_alphabetic() || c == '_') || key.contains(':') {
                return Err(format!("bad label name {key:?} in {line:?}"));
            }
            if chars.next() != Some('=') || chars.next() != Some('"') {
                return Err(format!("expected =\" after {key} in {line:?}"));
            }
            let v = label_value(&mut chars).map_err(|e| format!("{e} in {line:?}"))?;
            if labels.iter().any(|(k, _)| *k == key) {
                return Err(format!("label {key} twice in {line:?}"));
            }
            labels.push((key, v));
            match chars.next() {
                Some(',') => {}
                Some('}') => break,
                other => return Err(format!("unexpected {other:?} in {line:?}")),
            }
        }
    }
    let rest: String = chars.collect();
    let value = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("no space before the value: {line:?}"))?;
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse()
            .map_err(|_| format!("bad value {v:?} in {line:?}"))?,
    };
    Ok((name.to_owned(), labels, value))
}

/// The whole exposition, strictly: every family's HELP and TYPE at most once and before its
/// samples, its samples together, and every histogram series' buckets cumulative and ending
/// in `+Inf` equal to its `_count`, with a `_sum`. Returns every sample by `name{labels}`.
fn check(text: &str) -> Result<BTreeMap<String, f64>, String> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashMap<String, ()> = HashMap::new();
    let mut closed: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut all = BTreeMap::new();
    // Histogram series: labels without `le` -> (buckets (le, count), sum, count).
    type H = (Vec<(f64, f64)>, Option<f64>, Option<f64>);
    let mut histograms: BTreeMap<String, H> = BTreeMap::new();
    let family_of = |name: &str, types: &HashMap<String, String>| -> String {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix)
                && types.get(base).map(String::as_str) == Some("histogram")
            {
                return base.to_owned();
            }
        }
        name.to_owned()
    };
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        let family = if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_owned();
            if helps.insert(name.clone(), ()).is_some() {
                return Err(format!("second HELP for {name}"));
            }
            name
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, kind) = (it.next().unwrap().to_owned(), it.next().unwrap_or(""));
            if types.insert(name.clone(), kind.to_owned()).is_some() {
                return Err(format!("second TYPE for {name}"));
            }
            if all
                .keys()
                .any(|k: &String| family_of(k.split('[').next().unwrap(), &types) == name)
            {
                return Err(format!("TYPE for {name} after its samples"));
            }
            name
        } else if line.starts_with('#') {
            continue;
        } else {
            let (name, labels, value) = sample_line(line)?;
            let family = family_of(&name, &types);
            let key = format!("{name}{labels:?}");
            if all.insert(key.clone(), value).is_some() {
                return Err(format!("duplicate series {key}"));
            }
            if types.get(&family).map(String::as_str) == Some("histogram") {
                let series: Vec<_> = labels.iter().filter(|(k, _)| k != "le").cloned().collect();
                let h = histograms.entry(format!("{family}{series:?}")).or_insert((
                    Vec::new(),
                    None,
                    None,
                ));
                if name.ends_with("_bucket") {
                    let le = labels
                        .iter()
                        .find(|(k, _)| k == "le")
                        .ok_or_else(|| format!("bucket without le: {line}"))?;
                    let le = if le.1 == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.1.parse().map_err(|_| format!("bad le in {line}"))?
                    };
                    h.0.push((le, value));
                } else if name.ends_with("_sum") {
                    h.1 = Some(value);
                } else {
                    h.2 = Some(value);
                }
            }
            family
        };
        if current.as_deref() != Some(family.as_str()) {
            if closed.contains(&family) {
                return Err(format!("family {family} split in two"));
            }
            if let Some(prev) = current.replace(family) {
                closed.push(prev);
            }
        }
    }
    for (series, (buckets, sum, count)) in &histograms {
        let count = count.ok_or_else(|| format!("{series}: no _count"))?;
        sum.ok_or_else(|| format!("{series}: no _sum"))?;
        let last = buckets
            .last()
            .ok_or_else(|| format!("{series}: no buckets"))?;
        if last.0 != f64::INFINITY || last.1 != count {
            return Err(format!("{series}: last bucket {last:?}, _count {count}"));
        }
        for w in buckets.windows(2) {
            if !(w[0].0 < w[1].0 && w[0].1 <= w[1].1) {
                return Err(format!("{series}: buckets not cumulative: {w:?}"));
            }
        }
    }
    Ok(all)
}

/// One request on a connection of its own; `(status line, body)`.
async fn request(addr: std::net::SocketAddr, head: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A connection closed at once may refuse the write or reset the read: no answer.
    let _ = s.write_all(head.as_bytes()).await;
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got).await;
    let text = String::from_utf8(got).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let (status, body) = request(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    body
}

/// Scrapes taken while calls (successes, failures, retries, breakers opening and closing) run
/// on several threads: each one valid text format 0.0.4, read strictly; no series of a
/// counter, bucket, `_count` or `_sum` lower than in the scrape before; every provider name
/// read back from its label as itself; one state at 1 per provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scrape_under_load_is_valid_text_and_no_counter_goes_back() {
    for name in NAMES {
        // A name with a line feed is refused by `configure` (its call site still makes it,
        // with the defaults): it is here for its label value.
        let _ = resilience::configure(
            name,
            Settings::new()
                .max_attempts(2)
                .base_delay(Duration::from_millis(1))
                .max_delay(Duration::from_millis(2))
                .failure_threshold(3)
                .breaker_timeout(Duration::from_millis(20)),
        );
    }
    let server = resilience::telemetry::serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A permit per worker once its first call has ended: the first scrape waits for them, as
    // a provider has no series before its first call (a fresh clone's run scraped first).
    let started = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let mut workers = Vec::new();
    for (i, site) in SITES.iter().enumerate() {
        let (stop, started) = (stop.clone(), started.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let fail = !(n + i as u32).is_multiple_of(3);
                let _ = site
                    .execute(|| async move {
                        if fail {
                            Err(TestError::Transient(n))
                        } else {
                            Ok(n)
                        }
                    })
                    .await;
                if n == 1 {
                    started.add_permits(1);
                }
                if n.is_multiple_of(16) {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    let _all = started.acquire_many(SITES.len() as u32).await.unwrap();
    let mut before: BTreeMap<String, f64> = BTreeMap::new();
    for round in 0..60 {
        let text = scrape(addr).await;
        let now = check(&text).unwrap_or_else(|e| panic!("scrape {round}: {e}\n{text}"));
        for (series, v) in &now {
            let gauge = series.starts_with("resilience_circuit_state");
            if let Some(old) = before.get(series)
                && !gauge
            {
                assert!(v >= old, "scrape {round}: {series} went from {old} to {v}");
            }
        }
        for name in NAMES {
            let on: f64 = now
                .iter()
                .filter(|(k, _)| {
                    k.starts_with("resilience_circuit_state")
                        && k.contains(&format!("(\"provider\", {name:?})"))
                })
                .map(|(_, v)| *v)
                .sum();
            assert_eq!(on, 1.0, "scrape {round}: {name:?} has {on} states at 1");
            assert!(
                now.keys().any(|k| k.starts_with("resilience_calls_total")
                    && k.contains(&format!("(\"provider\", {name:?})"))),
                "scrape {round}: no calls series for {name:?}\n{text}"
            );
            assert!(
                now.keys()
                    .any(|k| k.starts_with("resilience_circuit_transitions_total")
                        && k.contains(&format!("(\"provider\", {name:?})"))),
                "scrape {round}: no transitions series for {name:?}\n{text}"
            );
        }
        before = now;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The load did what it is for: breakers opened, histograms filled.
    for name in NAMES {
        let p = format!("(\"provider\", {name:?})");
        let opened: f64 = before
            .iter()
            .filter(|(k, _)| {
                k.starts_with("resilience_circuit_transitions_total")
                    && k.contains(&p)
                    && k.contains("(\"to\", \"open\")")
            })
            .map(|(_, v)| *v)
            .sum();
        let calls: f64 = before
            .iter()
            .filter(|(k, _)| {
                k.starts_with("resilience_call_duration_seconds_count") && k.contains(&p)
            })
            .map(|(_, v)| *v)
            .sum();
        let configured = !name.contains('\n');
        assert!(
            (opened > 0.0 || !configured) && calls > 0.0,
            "{name:?}: {opened} openings, {calls} calls"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
}

/// One client that opens 256 connections and sends nothing on them (reconnecting each as the
/// 30 s header timeout closes it) kept every scrape from being answered while the cap refused
/// the newest connection, which is the scraper's; the oldest is closed now.
#[tokio::test]
async fn a_scrape_is_answered_while_one_client_holds_idle_connections() {
    let server = resilience::telemetry::serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut idle = Vec::new();
    for _ in 0..256 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // No wait for the listener to take them: it accepts in the order the kernel completed
    // the connections, so the scrape's comes after all 256.
    let (status, _) = tokio::time::timeout(
        Duration::from_secs(10),
        request(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        ),
    )
    .await
    .expect("answered within 10 s");
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "the scrape was refused while one client held {} idle connections: {status:?}",
        idle.len()
    );
}

/// The listener's answers to requests a scraper never sends: a head over its limits is 431,
/// other paths 404, a query string ignored, a body left unread (and what is pipelined after
/// it) closes the connection after the answer.
#[tokio::test]
async fn odd_requests_get_plain_answers() {
    let server = resilience::telemetry::serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr();
    let many: String = (0..40).map(|i| format!("X-H{i}: v\r\n")).collect();
    let big = format!("X-Big: {}\r\n", "a".repeat(20_000));
    let close = "Host: localhost\r\nConnection: close\r\n\r\n";
    let cases = [
        (
            format!("GET /metrics HTTP/1.1\r\n{many}{close}"),
            "HTTP/1.1 431",
        ),
        (
            format!("GET /metrics HTTP/1.1\r\n{big}{close}"),
            "HTTP/1.1 431",
        ),
        ("GET /metrics HTTP/1.0\r\n\r\n".to_owned(), "HTTP/1.0 200"),
        (format!("OPTIONS * HTTP/1.1\r\n{close}"), "HTTP/1.1 404"),
        (
            format!("GET /metrics?x=1 HTTP/1.1\r\n{close}"),
            "HTTP/1.1 200",
        ),
        (format!("GET /metrics/ HTTP/1.1\r\n{close}"), "HTTP/1.1 404"),
        (format!("GET //metrics HTTP/1.1\r\n{close}"), "HTTP/1.1 404"),
        ("\x16\x03\x01\x02\x00\x01\x00".to_owned(), "HTTP/1.1 400"),
    ];
    for (req, want) in cases {
        let (status, _) = tokio::time::timeout(Duration::from_secs(5), request(addr, &req))
            .await
            .expect("answered and closed within 5 s");
        assert!(
            status.starts_with(want),
            "{req:.60?}: {status:?}, not {want}"
        );
    }
}
