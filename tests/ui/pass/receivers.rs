use std::sync::Arc;
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

struct Client {
    sent: u32,
}

impl Client {
    #[resilience::resilient(provider = "kimi")]
    async fn shared(&self) -> Result<u32, MyError> {
        Ok(self.sent)
    }

    #[resilience::resilient(provider = "kimi")]
    async fn unique(&mut self, bump: &mut u32) -> Result<u32, MyError> {
        self.sent += 1;
        *bump += 1;
        Ok(self.sent)
    }

    #[resilience::resilient(provider = "kimi")]
    async fn arc(self: Arc<Self>) -> Result<u32, MyError> {
        Ok(self.sent)
    }
}

fn main() {
    let _ = Arc::new(Client { sent: 0 }).arc();
}
