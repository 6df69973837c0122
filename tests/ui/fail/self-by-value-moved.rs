//! A native method's `self` taken by value without `mut` is not copied per attempt (that would
//! need `Self: Clone`): a body that moves it out is refused by rustc, "in previous iteration
//! of loop", with the move itself pointed at in the body. `mut self` (cloned per attempt) or
//! `retry = false` (one attempt, which may consume it) compile.
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
    async fn send(self) -> Result<usize, MyError> {
        let body = self.0;
        Ok(body.len())
    }
}

fn main() {}
