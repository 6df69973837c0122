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

pub struct Kimi;

#[resilience::resilient(provider = "kimi")]
impl Kimi {
    pub async fn upload(&self) -> Result<(), MyError> {
        Ok(())
    }
}

fn main() {
    let _ = Kimi.upload();
}
