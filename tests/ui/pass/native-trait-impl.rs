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

trait FileProvider {
    async fn upload_file(&self, path: &std::path::Path, purpose: String) -> Result<u64, MyError>;
}

struct Kimi;

impl FileProvider for Kimi {
    #[resilience::resilient(provider = "kimi")]
    async fn upload_file(&self, path: &std::path::Path, purpose: String) -> Result<u64, MyError> {
        Ok(path.as_os_str().len() as u64 + purpose.len() as u64)
    }
}

fn main() {
    let _ = Kimi.upload_file(std::path::Path::new("a"), String::new());
}
