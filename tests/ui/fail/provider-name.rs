use resilience::{Classify, ErrorClass, ResilienceError};

#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError {
    fn from(_: ResilienceError) -> Self {
        MyError
    }
}
impl Classify for MyError {
    fn classify(&self) -> ErrorClass {
        ErrorClass::Transient
    }
}

// Names the runtime would refuse whatever the other names are: at the name, at compile time.
#[resilience::resilient(provider = " kimi")]
async fn spaced() -> Result<(), MyError> {
    Ok(())
}

#[resilience::resilient(provider = "--")]
async fn no_letter() -> Result<(), MyError> {
    Ok(())
}

// A zero-width space, pasted along: invisible in an editor, a breaker of its own.
#[resilience::resilient(provider = "kimi\u{200b}")]
async fn invisible() -> Result<(), MyError> {
    Ok(())
}

fn main() {}
