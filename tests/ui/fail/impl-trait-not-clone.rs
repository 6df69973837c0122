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

pub trait Bytes {
    fn len(&self) -> usize;
}
impl Bytes for Vec<u8> {
    fn len(&self) -> usize {
        0
    }
}
pub struct NoClone;
impl Bytes for NoClone {
    fn len(&self) -> usize {
        1
    }
}

#[resilience::resilient(provider = "kimi")]
async fn upload(name: &str, payload: impl Bytes) -> Result<usize, MyError> {
    Ok(name.len() + payload.len())
}

fn main() {
    let _ = upload("a", NoClone);
}
