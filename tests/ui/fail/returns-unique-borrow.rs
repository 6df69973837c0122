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

pub struct Buffer {
    bytes: Vec<u8>,
}

impl Buffer {
    #[resilience::resilient(provider = "kimi")]
    async fn fill(&mut self) -> Result<&mut Vec<u8>, MyError> {
        Ok(&mut self.bytes)
    }

    #[resilience::resilient(provider = "kimi")]
    async fn first<'a>(&'a mut self, extra: &mut u8) -> Result<Option<(u8, &'a mut u8)>, MyError> {
        *extra += 1;
        Ok(self.bytes.first_mut().map(|b| (0, b)))
    }

    // One attempt: the borrow is returned as it is.
    #[resilience::resilient(provider = "kimi", retry = false)]
    async fn once(&mut self) -> Result<&mut Vec<u8>, MyError> {
        Ok(&mut self.bytes)
    }
}

// A `'static` borrow comes through no argument.
#[resilience::resilient(provider = "kimi")]
async fn leaked() -> Result<&'static mut u8, MyError> {
    Ok(Box::leak(Box::new(0)))
}

fn main() {}
