//! Compile-time behaviour of `#[resilient]`: what must compile, and the exact errors for each
//! mistake. Update the checked-in `.stderr` files with `TRYBUILD=overwrite cargo test --test ui`.

mod hermetic;

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
