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

// A body whose last expression ends with `;`, and an empty one: reported at the body's
// braces, as without the attribute, not at the attribute.
#[resilience::resilient(provider = "kimi")]
async fn semicolon(x: u32) -> Result<u32, MyError> {
    Ok(x);
}

#[resilience::resilient(provider = "kimi")]
async fn empty(_x: u32) -> Result<u32, MyError> {}

fn main() {
    let _ = semicolon(1);
    let _ = empty(1);
}
