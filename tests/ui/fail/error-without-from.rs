use resilience::{Classify, ErrorClass};

#[derive(Debug)]
pub struct PlainError;
impl Classify for PlainError {
    fn classify(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

#[resilience::resilient(provider = "kimi")]
async fn upload() -> Result<(), PlainError> {
    Ok(())
}

fn main() {
    let _ = upload();
}
