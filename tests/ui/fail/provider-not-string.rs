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

#[resilience::resilient(provider = kimi)]
async fn upload() -> Result<(), MyError> {
    Ok(())
}

mod consts {
    pub const KIMI: &str = "kimi";
}

mod re {
    #[allow(unused_imports)]
    pub use resilience as facade;
}

// With `crate = …`, the suggested call site names the facade by that path.
#[resilience::resilient(provider = consts::KIMI, crate = re::facade)]
async fn upload_renamed() -> Result<(), MyError> {
    Ok(())
}

fn main() {}
