// A pattern argument's parameter gets a name of the expansion's, hygienic: the body cannot
// name it (4420358 gave it the call site's hygiene for a while, and this compiled).
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
async fn upload((a, b): (u8, u8)) -> Result<u8, MyError> {
    let whole: (u8, u8) = __resilience_arg0;
    Ok(a + b + whole.0)
}

fn main() {
    let _ = upload((1, 2));
}
