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

pub struct Gateway {
    pub upstream: String,
}

// A name known only at run time (a field, a call): the advice is a call site made at run time.
impl Gateway {
    #[resilience::resilient(provider = self.upstream)]
    pub async fn upload(&self) -> Result<(), MyError> {
        Ok(())
    }

    #[resilience::resilient(provider = format!("{}-eu", "kimi"), retry = false)]
    pub async fn upload_once(&self) -> Result<(), MyError> {
        Ok(())
    }
}

fn main() {}
