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

impl From<std::num::ParseIntError> for MyError {
    fn from(_: std::num::ParseIntError) -> Self {
        MyError
    }
}

#[resilience::resilient(provider = "kimi")]
async fn parse(s: &str) -> Result<u32, MyError> {
    if s.is_empty() {
        return Err(MyError);
    }
    let n: u32 = s.parse()?;
    Ok(n)
}

fn main() {
    let _ = parse("1");
}
