//! A qualified path's generic commas (`<HashMap<u8, u8> as Default>::default()`) do not move
//! a format macro's format string, as a turbofish's do not (from helper-105's review).
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

use std::collections::HashMap;

#[derive(Debug)]
pub struct S {
    n: u32,
}

impl S {
    #[resilience::resilient(provider = "review")]
    pub async fn check(&mut self, m: HashMap<u8, u8>) -> Result<u32, MyError> {
        self.n += 1;
        assert_eq!(m, <HashMap<u8, u8> as Default>::default(), "{self:?}");
        Ok(self.n)
    }
}

fn main() {
    let mut s = S { n: 0 };
    let _ = s.check(HashMap::new());
}
