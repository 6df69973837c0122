//! A provider made before `init()` looks over the environment's `RESILIENCE_*` names first,
//! knowing only the providers named by then; `init()` then knows more (the names its builder
//! is given). Its own test binary: it sets the process's environment, which no other test may
//! see.

mod common;

use common::capture;
use resilience::{Builder, Settings};

/// The README: name a provider the program computes in code before `init()`
/// (`Builder::provider(name, Settings::new())`) and a misspelt provider part near it is a
/// warning. A provider made before `init()` (a health check, a lazy client) took the one look
/// at the names, when `kimii`'s near name was known to nobody, and `init()` then looked at no
/// name again: the operator's override, set under a misspelt name, was ignored without a word.
#[test]
fn a_near_miss_of_a_name_given_to_init_is_warned_about_after_an_earlier_provider() {
    // SAFETY: the only test in this process, and no other thread runs yet.
    unsafe {
        common::only_these_variables(&[("RESILIENCE_NEARX_TENANT_RETRY_MAX_ATTEMPTS", "5")]);
    }
    let (logs, subscriber) = capture();
    tracing::subscriber::with_default(subscriber, || {
        // Made before `init()`: it looks over the names, and knows no `nearx-tenants` yet.
        let _early = resilience::provider("nearx-early");
        Builder::new()
            .provider("nearx-tenants", Settings::new())
            .init()
            .expect("nothing is wrong but a slip");
        // A second `init()` says it no more.
        Builder::new()
            .provider("nearx-tenants", Settings::new())
            .init()
            .expect("nothing is wrong but a slip");
    });
    let text = logs.text();
    let warning = "RESILIENCE_NEARX_TENANT_… configures a provider that no #[resilient] method, \
                   call site, setting or provider made so far names: did you mean provider `nearx-tenants`";
    assert_eq!(text.matches(warning).count(), 1, "{text}");
}
