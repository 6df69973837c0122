//! A crate that forbids `unreachable_code` can use the attribute (the expansion used to allow
//! it, which a `forbid` refuses: E0453), with bodies that diverge, loop or return early.
#![forbid(unreachable_code)]
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
async fn diverges() -> Result<u32, MyError> {
    todo!()
}

#[resilience::resilient(provider = "kimi")]
async fn loops() -> Result<u32, MyError> {
    loop {}
}

#[resilience::resilient(provider = "kimi")]
async fn returns() -> Result<u32, MyError> {
    return Ok(1);
}

fn main() {
    let _ = diverges();
    let _ = loops();
    let _ = returns();
}
