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

// Nested, each call would retry inside the other's retries.
#[resilience::resilient(provider = "kimi")]
#[resilience::resilient(provider = "kimi")]
async fn upload() -> Result<(), MyError> {
    Ok(())
}

fn main() {
    let _ = upload();
}
