//! A `break` outside any loop in a body is rustc's E0267, "`break` inside `async` block" (from
//! helper-108's review: a labeled block around the body turned it into E0695, about a block the
//! user never wrote).
use resilience::{Classify, ErrorClass, ResilienceError};
#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError { fn from(_: ResilienceError) -> Self { MyError } }
impl Classify for MyError { fn classify(&self) -> ErrorClass { ErrorClass::Transient } }
fn main() { let _ = f(1); }
#[resilience::resilient(provider = "p")]
pub async fn f(n: u32) -> Result<u32, MyError> {
    if n > 0 { break; }
    Ok(n)
}
