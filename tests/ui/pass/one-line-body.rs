//! A body of one expression on one line is no "unnecessary braces" to rustc's `unused_braces`
//! (from helper-105's review: the block the user's statements are put in was spanned as the
//! user's own, and the lint suggested removing the method's braces, an error under
//! `-D warnings`). One line each, as written without rustfmt.
#![deny(warnings)]
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

pub struct S {
    n: u32,
}

impl S {
    #[resilience::resilient(provider = "review")]
    pub async fn get(&self) -> Result<u32, MyError> { Ok(self.n) }
}

#[resilience::resilient(provider = "review")]
pub async fn one(n: u32) -> Result<u32, MyError> { Ok(n + 1) }

fn main() {
    let s = S { n: 0 };
    let _ = s.get();
    let _ = one(1);
}
