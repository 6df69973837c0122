use async_trait::async_trait;
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

#[async_trait]
pub trait Consume {
    async fn consume(self) -> Result<usize, MyError>;
}

pub struct Kimi(Vec<u8>);

#[async_trait]
impl Consume for Kimi {
    #[resilience::resilient(provider = "kimi")]
    async fn consume(self) -> Result<usize, MyError> {
        Ok(self.0.len())
    }
}

fn main() {
    let _ = Kimi(vec![]).consume();
}
