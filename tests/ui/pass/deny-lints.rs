#![deny(unused_qualifications, unused, clippy::all)]
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

impl Kimi {
    #[resilience::resilient(provider = "kimi")]
    pub async fn upload(&self, name: &str, body: Vec<u8>) -> Result<usize, MyError> {
        Ok(name.len() + body.len())
    }

    #[resilience::resilient(provider = "kimi", retry = false)]
    pub async fn delete(&self, id: String) -> Result<usize, MyError> {
        Ok(id.len())
    }
}

fn main() {
    let _ = Kimi.upload("a", vec![]);
    let _ = Kimi.delete(String::new());
}
