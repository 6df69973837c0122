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

/// A result that is not `Send`: the future still is, as a native `async fn`'s would be,
/// since nothing holds the result across an `.await` (the retry loop's step, which holds it,
/// is dropped before the backoff's `.await`).
#[resilience::resilient(provider = "kimi")]
async fn local_result() -> Result<std::rc::Rc<u8>, MyError> {
    Ok(std::rc::Rc::new(1))
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    assert_send(upload(vec![1]));
    assert_send(local_result());
}
