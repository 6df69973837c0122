//! A `fn(..)` pointer type inside a macro's tokens does not stop `self` being renamed there
//! (from helper-103's review: it was taken for a method definition with a `self` of its own,
//! and this failed with "borrow of moved value: `self`" at the attribute).
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

fn double(s: &S) -> u32 {
    s.n * 2
}

impl S {
    #[resilience::resilient(provider = "review")]
    pub async fn fn_ptr(&mut self) -> Result<u32, MyError> {
        self.n += 1;
        let v = vec![{
            let f: fn(&S) -> u32 = double;
            f(self)
        }];
        Ok(v[0])
    }
}

fn main() {
    let mut s = S { n: 0 };
    let _ = s.fn_ptr();
}
