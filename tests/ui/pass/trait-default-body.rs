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
    fn base(&self) -> usize;

    #[resilience::resilient(provider = "glm")]
    async fn upload(&self, name: &str) -> Result<usize, MyError> {
        Ok(self.base() + name.len())
    }
}

struct Glm;
impl FileProvider for Glm {
    fn base(&self) -> usize {
        1
    }
}

fn main() {
    let _ = Glm.upload("x");
}
