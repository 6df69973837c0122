//! A key's value of the wrong kind, and a token that is no key, are one error each, at the
//! value or the token.
use resilience::{Classify, ErrorClass, ResilienceError};
#[derive(Debug)]
pub struct MyError;
impl From<ResilienceError> for MyError { fn from(_: ResilienceError) -> Self { MyError } }
impl Classify for MyError { fn classify(&self) -> ErrorClass { ErrorClass::Transient } }

#[resilience::resilient(provider = "p", retry = "no")]
pub async fn retry_not_bool() -> Result<u32, MyError> { Ok(1) }

#[resilience::resilient(provider = "p", name = upload)]
pub async fn name_not_string() -> Result<u32, MyError> { Ok(1) }

#[resilience::resilient(provider = "p", name = " ")]
pub async fn name_empty() -> Result<u32, MyError> { Ok(1) }

#[resilience::resilient(provider = "p", 3)]
pub async fn not_a_key() -> Result<u32, MyError> { Ok(1) }

#[resilience::resilient(provider = "ki\tmi")]
pub async fn control_character() -> Result<u32, MyError> { Ok(1) }

#[resilience::resilient(provider = "p", name = "up\nload")]
pub async fn name_control_character() -> Result<u32, MyError> { Ok(1) }

#[resilience::resilient(provider = "p", crate = ::resilience, crate = ::resilience)]
pub async fn crate_twice() -> Result<u32, MyError> { Ok(1) }

#[resilience::resilient(provider = "p", retry = false, retry = true)]
pub async fn retry_twice() -> Result<u32, MyError> { Ok(1) }

#[resilience::resilient(provider = "p", name = "a", name = "b")]
pub async fn name_twice() -> Result<u32, MyError> { Ok(1) }

#[resilience::resilient(provider = "p", crate = )]
pub async fn crate_empty() -> Result<u32, MyError> { Ok(1) }

#[resilience::resilient(provider = , retry = false)]
pub async fn provider_empty() -> Result<u32, MyError> { Ok(1) }

#[resilience::resilient(provider = "p", name =)]
pub async fn name_without_value() -> Result<u32, MyError> { Ok(1) }

fn main() {
    let _ = (retry_not_bool(), name_not_string(), name_empty(), not_a_key(), control_character(), name_control_character(), crate_twice(), retry_twice(), name_twice(), crate_empty(), provider_empty(), name_without_value());
}
