//! A `mut self` taken by value is cloned for each attempt (a failed attempt's changes must not
//! leak into the next), so it must be `Clone` unless `retry = false`.
use resilience::{Classify, ErrorClass, ResilienceError, resilient};

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

pub struct Request(Vec<u8>);

impl Request {
    #[resilient(provider = "kimi")]
    async fn send(mut self) -> Result<usize, MyError> {
        self.0.push(1);
        Ok(self.0.len())
    }
}

fn main() {}
