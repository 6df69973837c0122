// An unneeded `mut self` is reported at the `mut`, as it would be without the attribute.
#![deny(unused_mut)]
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

#[derive(Clone)]
pub struct Request(Vec<u8>);

impl Request {
    #[resilience::resilient(provider = "kimi")]
    async fn send(mut self) -> Result<usize, MyError> {
        Ok(self.0.len())
    }
}

fn main() {
    let _ = Request(vec![]).send();
}
