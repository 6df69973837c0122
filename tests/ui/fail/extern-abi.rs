//! An `extern` ABI other than "Rust" is refused at the ABI (helper-112's review): no foreign
//! caller can poll the future such a function returns.
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

#[resilience::resilient(provider = "kimi")]
pub async extern "C" fn upload() -> Result<(), MyError> {
    Ok(())
}

// The default ABI, written out, is no foreign one.
#[resilience::resilient(provider = "kimi")]
pub async extern "Rust" fn upload_rust() -> Result<(), MyError> {
    Ok(())
}

fn main() {
    let _ = upload_rust();
}
