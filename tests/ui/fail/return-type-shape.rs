//! A return type that cannot be a `Result` (none, a tuple, a reference) is the macro's own
//! error, at the return type (at the `)` when there is none).
use resilience::{Classify, ErrorClass, ResilienceError};
#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError { fn from(_: ResilienceError) -> Self { MyError } }
impl Classify for MyError { fn classify(&self) -> ErrorClass { ErrorClass::Transient } }

#[resilience::resilient(provider = "p")]
pub async fn none(_n: u32) {}

#[resilience::resilient(provider = "p")]
pub async fn tuple(n: u32) -> (u32, MyError) {
    (n, MyError)
}

#[resilience::resilient(provider = "p")]
pub async fn reference(_n: u32) -> &'static Result<u32, MyError> {
    &Ok(1)
}

fn main() {
    let _ = (none(1), tuple(1), reference(1));
}
