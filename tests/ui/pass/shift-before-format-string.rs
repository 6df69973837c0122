//! A shift (`self.n << 1`) before a format macro's format string (from helper-107's review:
//! the second `<` of `<<` was taken for a qualified path's, and the format string was lost).
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

#[derive(Debug)]
pub struct S {
    n: u32,
}

impl S {
    #[resilience::resilient(provider = "review")]
    pub async fn check(&mut self) -> Result<u32, MyError> {
        self.n += 1;
        assert_eq!(self.n << 1, 2, "{self:?}");
        assert!(1u32 << self.n != 0, "{self:?}");
        Ok(self.n)
    }
}

fn main() {
    let mut s = S { n: 0 };
    let _ = s.check();
}
