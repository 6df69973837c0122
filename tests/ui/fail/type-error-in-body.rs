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

// A type error in the body is reported at the user's own expression, as without the attribute.
#[resilience::resilient(provider = "kimi")]
async fn upload(name: &str) -> Result<u32, MyError> {
    let size: u32 = name;
    Ok(size)
}

fn main() {
    let _ = upload("a");
}
