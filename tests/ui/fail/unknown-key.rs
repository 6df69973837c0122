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

#[resilience::resilient(provider = "kimi", timeout = 5)]
async fn upload() -> Result<(), MyError> {
    Ok(())
}

// `retries` as a switch is `retry`; another name for the method's label is `name`.
#[resilience::resilient(provider = "kimi", retries = false)]
async fn delete() -> Result<(), MyError> {
    Ok(())
}

#[resilience::resilient(provider = "kimi", method = "rename")]
async fn rename() -> Result<(), MyError> {
    Ok(())
}

fn main() {}
