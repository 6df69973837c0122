use resilience::ResilienceError;

#[derive(Debug)]
pub struct PlainError;
impl From<ResilienceError> for PlainError {
    fn from(_: ResilienceError) -> Self {
        PlainError
    }
}

#[resilience::resilient(provider = "kimi")]
async fn upload() -> Result<(), PlainError> {
    Ok(())
}

fn main() {
    let _ = upload();
}
