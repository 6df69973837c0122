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
#[classify(crate = Vec<u8>)]
#[classify(permanent)]
struct NotAPath;

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
