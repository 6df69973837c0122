//! Every test binary starts without the runner's resilience variables.
//!
//! A `RESILIENCE_*`, `RETRY_*` or `CIRCUIT_BREAKER_*` variable beats a default and a global
//! setting given in code (a provider's own, `RESILIENCE_<PROVIDER>_…`, beats its settings in
//! code too), and the tests' process-wide providers read the environment: a developer's
//! shell that exported `RETRY_MAX_ATTEMPTS=5` failed 9 tests, and `RESILIENCE_ENABLED=false`
//! hung one. So the variables are removed before `main`, while the binary has one thread,
//! the only time its environment may be written safely; tests that read variables set their
//! own (`common::only_these_variables`).
//!
//! Included by `common`, and alone by the test binaries, the example's tests and the crates
//! under `tests/` that do not use `common`. Written to pass `strict_lints`' lint levels, and
//! without naming `resilience` (`tests/renamed-dependency` knows it by another name).

use std::env;
use std::ffi::OsStr;

/// Removes the runner's resilience variables before `main`: `ctor` rather than a call at
/// each test's start, as tests run on several threads: a write made while another test's
/// thread reads the environment outside std's lock (a DNS lookup through libc) is undefined
/// behaviour, and one made while a provider is being made races its reads (std's own reads
/// and writes take one lock); and rather than unsetting them in `.ci/run` alone, as the
/// README's plain `cargo test --workspace` must pass too.
#[ctor::ctor(unsafe)]
fn without_the_runner_s_variables() {
    // SAFETY: before `main`: no other thread exists yet to read the environment.
    unsafe { remove_resilience_variables() }
}

/// Removes every variable of resilience's: every name it reads has one of the three prefixes
/// (`resilience::variables()`), and so do the near misses it warns about (a switch without
/// its prefix, `CIRCUIT_BREAKER_ENABLED`; a name that is not UTF-8, read with U+FFFD).
///
/// # Safety
/// Only where no other thread runs: before `main`.
unsafe fn remove_resilience_variables() {
    let stale: Vec<_> = env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| is_resilience_variable(name))
        .collect();
    for name in stale {
        // SAFETY: the caller's.
        unsafe { env::remove_var(name) };
    }
}

/// Whether resilience would read, or warn about, a variable of this name: one of the three
/// prefixes, in any case (read with U+FFFD where the name is not UTF-8).
pub(super) fn is_resilience_variable(name: &OsStr) -> bool {
    let mut shown = name.to_string_lossy().into_owned();
    // Windows finds a variable whatever the case of its name (`retry_max_attempts` set in a
    // shell is read as `RETRY_MAX_ATTEMPTS`); elsewhere only the upper-case name is read, and
    // one in another case is warned about as a typo.
    shown.make_ascii_uppercase();
    ["RESILIENCE_", "RETRY_", "CIRCUIT_BREAKER_"]
        .iter()
        .any(|prefix| shown.starts_with(prefix))
}
