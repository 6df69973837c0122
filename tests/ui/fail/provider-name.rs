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

fn main() {}
