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

#[resilience::resilient(provider = "kimi")]
fn upload() -> Result<(), MyError> {
    Ok(())
}

// What rustc's `async_fn_in_trait` lint suggests for a trait's default body.
pub trait Store {
    #[resilience::resilient(provider = "kimi")]
    fn put(&self) -> impl std::future::Future<Output = Result<(), MyError>> + Send {
        async { Ok(()) }
    }
}

fn main() {
    let _ = upload();
}
