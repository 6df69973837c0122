//! A `macro_rules!` in a body that defines a method whose name is a fragment (`fn $name(&self)`)
//! has a `self` of its own, which is not renamed (from helper-105's review: for a while an
//! identifier was required after `fn`, and `fn $name(&resilience_self)` did not parse).
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
    pub async fn bump(&mut self) -> Result<u32, MyError> {
        // Local to the body, as its `impl` is (rustc's `non_local_definitions` otherwise).
        struct T(u32);
        macro_rules! getter {
            ($name:ident) => {
                impl T {
                    fn $name(&self) -> u32 {
                        self.0
                    }
                }
            };
        }
        getter!(get);
        self.n += 1;
        Ok(T(self.n).get())
    }
}

fn main() {
    let mut s = S { n: 0 };
    let _ = s.bump();
}
