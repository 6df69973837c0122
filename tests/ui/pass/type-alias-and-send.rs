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

pub type UploadResult<T> = Result<T, MyError>;

#[resilience::resilient(provider = "kimi")]
async fn upload(bytes: Vec<u8>) -> UploadResult<usize> {
    Ok(bytes.len())
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    assert_send(upload(vec![1]));
}
