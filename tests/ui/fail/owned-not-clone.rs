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

pub struct Payload(Vec<u8>);

#[resilience::resilient(provider = "kimi")]
async fn upload(name: &str, payload: Payload) -> Result<usize, MyError> {
    Ok(name.len() + payload.0.len())
}

fn main() {
    let _ = upload("a", Payload(vec![]));
}
