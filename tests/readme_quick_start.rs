//! The README's quick start is `examples/quick_start.rs`, which CI builds (and clippy
//! checks): the two must not drift apart.

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
