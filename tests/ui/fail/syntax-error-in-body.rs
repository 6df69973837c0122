use resilience::{resilient, ErrorClass, Classify, ResilienceError};

#[derive(Debug)]
struct E;
impl Classify for E {
    fn classify(&self) -> ErrorClass {
        ErrorClass::Transient
    }
}
impl From<ResilienceError> for E {
    fn from(_: ResilienceError) -> Self {
        E
    }
}

// Half-typed code: rustc reports the syntax error, and the macro says that the body, which it
// could not read, has no resilience.
#[resilient(provider = "kimi")]
async fn upload() -> Result<u32, E> {
    let x = ;
    Ok(x)
}

fn main() {}
