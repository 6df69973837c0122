//! The README's quick start is `examples/quick_start.rs`, which CI builds (and clippy
//! checks): the two must not drift apart.

// Without the runner's resilience variables, as every test binary (tests/hermetic).
mod hermetic;

#[test]
fn the_readme_quick_start_is_the_example() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let example = std::fs::read_to_string(format!("{root}/examples/quick_start.rs")).unwrap();
    let section = &readme[readme
        .find("\n## Quick start\n")
        .expect("a Quick start section")..];
    let block = section
        .split_once("```rust\n")
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .map(|(code, _)| code)
        .expect("a rust block in the Quick start");
    // The example's own header (`//!`, for those who open the file) is not in the README.
    let code: String = example
        .lines()
        .filter(|l| !l.starts_with("//!"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(block, code.trim_start_matches('\n'));
}

/// Every subscriber the README installs reads `RUST_LOG`, as its Logs section says: the
/// builder's `tracing_subscriber::fmt().init()` never does (whatever tracing-subscriber's
/// features), so a reader who sets `RUST_LOG=resilience=debug` to see the debug lines got
/// nothing more; `tracing_subscriber::fmt::init()` does.
#[test]
fn the_readme_s_subscribers_read_rust_log() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let example = std::fs::read_to_string(format!("{root}/examples/quick_start.rs")).unwrap();
    let code_lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| {
                let t = l.trim_start();
                t.starts_with("tracing_subscriber::") && !t.starts_with("//")
            })
            .map(str::to_owned)
            .collect()
    };
    let installs: Vec<String> = [readme.as_str(), example.as_str()]
        .into_iter()
        .flat_map(code_lines)
        .collect();
    assert!(!installs.is_empty());
    for line in installs {
        assert!(
            line.contains("tracing_subscriber::fmt::init()"),
            "a subscriber that ignores RUST_LOG: {line}"
        );
    }
}

/// Issue 3: "The README's first example is an annotated trait impl": its first Rust block has
/// an `impl … for …` with a `#[resilient(…)]` method in it.
#[test]
fn the_readme_s_first_example_is_an_annotated_trait_impl() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let first = readme
        .split_once("```rust\n")
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .map(|(code, _)| code)
        .expect("a rust block");
    let lines: Vec<&str> = first.lines().collect();
    let imp = lines
        .iter()
        .position(|l| l.starts_with("impl ") && l.contains(" for "))
        .expect("a trait impl in the README's first Rust block");
    let end = imp
        + lines[imp..]
            .iter()
            .position(|l| *l == "}")
            .expect("the impl's end");
    assert!(
        lines[imp..end]
            .iter()
            .any(|l| l.trim_start().starts_with("#[resilient(")),
        "no #[resilient] method in {}",
        lines[imp]
    );
}
