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
pub trait SendProvider {
    async fn upload(&self, name: &str, body: Vec<u8>) -> Result<usize, MyError>;
    async fn touch(&mut self) -> Result<(), MyError>;
    /// A result that is not `Send`, in a trait whose futures must be.
    async fn local(&self) -> Result<std::rc::Rc<u8>, MyError>;
}

#[async_trait(?Send)]
pub trait LocalProvider {
    async fn upload(&self, body: std::rc::Rc<Vec<u8>>) -> Result<usize, MyError>;
}

struct Kimi(u32);

#[async_trait]
impl SendProvider for Kimi {
    #[resilience::resilient(provider = "kimi")]
    async fn upload(&self, name: &str, body: Vec<u8>) -> Result<usize, MyError> {
        Ok(name.len() + body.len() + self.0 as usize)
    }

    #[resilience::resilient(provider = "kimi", name = "touch")]
    async fn touch(&mut self) -> Result<(), MyError> {
        self.0 += 1;
        Ok(())
    }

    #[resilience::resilient(provider = "kimi")]
    async fn local(&self) -> Result<std::rc::Rc<u8>, MyError> {
        Ok(std::rc::Rc::new(1))
    }
}

#[async_trait(?Send)]
impl LocalProvider for Kimi {
    #[resilience::resilient(provider = "kimi")]
    async fn upload(&self, body: std::rc::Rc<Vec<u8>>) -> Result<usize, MyError> {
        Ok(body.len())
    }
}

fn main() {
    let _ = SendProvider::upload(&Kimi(0), "a", vec![]);
}
