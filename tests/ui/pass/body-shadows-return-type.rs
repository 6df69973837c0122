//! A body's own `use` or item may take the return type's names (from helper-103's review:
//! the expansion named the return type again beside the body's items, where they shadowed it,
//! and this failed with E0107 / E0308 at the signature and the attribute).
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

// A body-local import of another `Result` (an alias of `std::io`'s).
#[resilience::resilient(provider = "review")]
async fn io_result(n: u32) -> Result<u32, MyError> {
    use std::io::Result;
    let r: Result<u32> = Ok(n);
    r.map_err(|_| MyError)
}

// A body-local type named as the method's error.
mod other {
    use super::MyError as Error;

    #[resilience::resilient(provider = "review")]
    pub async fn local_error(n: u32) -> Result<u32, Error> {
        #[derive(Debug)]
        struct Error;
        let r: Result<u32, Error> = Ok(n);
        r.map_err(|Error| super::MyError)
    }
}

fn main() {
    let _ = io_result(1);
    let _ = other::local_error(1);
}
