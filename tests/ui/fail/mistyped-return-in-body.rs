//! A body's value of the wrong type, by `return`, as its tail or through `?`, is reported at
//! the user's code, as without the attribute: rustc's notes on where the block's type comes
//! from (the body's first `return`, which is the expansion's) and on the block a `?` returns
//! from pointed at the attribute.
use resilience::{Classify, ErrorClass, ResilienceError};
#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError { fn from(_: ResilienceError) -> Self { MyError } }
impl Classify for MyError { fn classify(&self) -> ErrorClass { ErrorClass::Transient } }

#[resilience::resilient(provider = "p")]
pub async fn early(n: u32) -> Result<u32, MyError> {
    if n > 1 {
        return n;
    }
    Ok(n)
}

#[resilience::resilient(provider = "p")]
pub async fn tail(n: u32) -> Result<u32, MyError> {
    n
}

#[resilience::resilient(provider = "p")]
pub async fn option(n: Option<u32>) -> Result<u32, MyError> {
    let n = n?;
    Ok(n)
}

#[resilience::resilient(provider = "p", retry = false)]
pub async fn once(n: Option<u32>) -> Result<u32, MyError> {
    let n = n?;
    if n > 1 {
        return n;
    }
    Ok(n)
}

fn main() {
    let _ = (early(1), tail(1), option(None), once(None));
}
