use resilience::{Classify, ResilienceError, resilient};

#[derive(Debug, Classify)]
#[classify(crate = resilience)]
enum UploadError {
    #[classify(transparent)]
    Resilience(ResilienceError),
    #[classify(crate = resilience)]
    OnVariant,
    #[classify(permanent)]
    OnField(#[classify(crate = resilience)] u32),
}

impl From<ResilienceError> for UploadError {
    fn from(e: ResilienceError) -> Self {
        UploadError::Resilience(e)
    }
}

#[derive(Debug, Classify)]
#[classify(crate = resilience)]
#[classify(crate = "resilience")]
#[classify(permanent)]
struct Twice;

#[derive(Debug, Classify)]
#[classify(permanent, crate = resilience, crate = resilience)]
struct TwiceInOne;

#[derive(Debug, Classify)]
enum BesideAVariantsClass {
    #[classify(transient, crate = resilience)]
    Busy,
}

#[derive(Debug, Classify)]
#[classify(crate)]
#[classify(permanent)]
struct NoValue;

#[derive(Debug, Classify)]
#[classify(crate =)]
#[classify(permanent)]
struct NothingAfterEquals;

#[derive(Debug, Classify)]
#[classify(crate = Vec<u8>)]
#[classify(permanent)]
struct NotAPath;

// The path's one error, and none where the type is used.
impl From<ResilienceError> for NotAPath {
    fn from(_: ResilienceError) -> Self {
        NotAPath
    }
}

#[resilient(provider = "kimi")]
async fn uses_not_a_path() -> Result<(), NotAPath> {
    Ok(())
}

// A comma between angle brackets is the path's: one error, not a second for a class.
#[derive(Debug, Classify)]
#[classify(crate = a::<B, C>)]
#[classify(permanent)]
struct Generic;

#[resilient(provider = "kimi", crate = 3)]
async fn number() -> Result<(), UploadError> {
    Ok(())
}

#[resilient(provider = "kimi", crate = resilience::<u8>)]
async fn generic() -> Result<(), UploadError> {
    Ok(())
}

#[resilient(provider = "kimi", crate = "resilience::")]
async fn trailing() -> Result<(), UploadError> {
    Ok(())
}

fn main() {}
