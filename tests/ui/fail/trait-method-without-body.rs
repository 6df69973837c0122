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

pub trait FileProvider {
    #[resilience::resilient(provider = "kimi")]
    async fn upload(&self) -> Result<(), MyError>;
}

fn main() {}
