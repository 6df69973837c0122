//! `classify_in_chains!` with no type says what it takes, at the call.
resilience::classify_in_chains!();

fn main() {}
