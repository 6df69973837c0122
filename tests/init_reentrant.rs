//! A log layer that calls into resilience while `init()` logs one of its warnings (a log
//! shipper with a resilient client) must not wait on the registry, which `init()` holds while
//! it checks. Its own test binary: it sets the process's environment, and `init()` warns about
//! names only if no provider has looked at them before in the process.

mod common;

use common::re_enters;

/// Never called: known from program load, so that a variable one edit off its provider part
/// is a near miss `init()` warns about.
#[allow(dead_code)]
#[resilience::resilient(provider = "reinit-kimi-v2")]
async fn upload() -> Result<(), common::TestError> {
    Ok(())
}

#[test]
fn a_log_layer_that_makes_a_provider_while_init_warns_does_not_hang() {
    // SAFETY: the only test in this process, and no thread of its own runs yet.
    unsafe {
        common::only_these_variables(&[("RESILIENCE_REINIT_KIMIV2_RETRY_MAX_ATTEMPTS", "5")]);
    }
    re_enters(
        "making a provider while init() warned of a near miss",
        || {
            let _ = resilience::provider("reinit-shipper");
        },
        || resilience::init().expect("a near miss is a warning, not an error"),
    );
}
