use resilience::{CallSite, Classify, ErrorClass, ResilienceError};

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

fn fetch() -> Result<u32, MyError> {
    Ok(1)
}

static SITE: CallSite = CallSite::new("kimi", "upload");

async fn through_provider() -> Result<u32, MyError> {
    resilience::provider("kimi").execute(|| fetch()).await
}

async fn through_call_site() -> Result<u32, MyError> {
    SITE.execute(|| fetch()).await
}

fn main() {
    let _ = through_provider();
    let _ = through_call_site();
}
