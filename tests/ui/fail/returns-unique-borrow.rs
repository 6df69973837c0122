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

    // A shared borrow through `&mut self` is one attempt's too: elided onto `self`, or named.
    #[resilience::resilient(provider = "kimi")]
    async fn peek(&mut self) -> Result<&u8, MyError> {
        self.bytes.push(0);
        Ok(&self.bytes[0])
    }

    #[resilience::resilient(provider = "kimi")]
    async fn view<'a>(&'a mut self) -> Result<std::borrow::Cow<'a, [u8]>, MyError> {
        Ok(std::borrow::Cow::Borrowed(&self.bytes))
    }

    // Through `&self`, the elided lifetime is `self`'s, which every attempt shares.
    #[resilience::resilient(provider = "kimi")]
    async fn shared(&self, scratch: &mut Vec<u8>) -> Result<&[u8], MyError> {
        scratch.push(1);
        Ok(&self.bytes)
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

// With no `self`, an elided lifetime is that of the one reference in: here a `&mut`.
#[resilience::resilient(provider = "kimi")]
async fn first(buf: &mut [u8]) -> Result<&u8, MyError> {
    buf[0] += 1;
    Ok(&buf[0])
}

// The only reference argument is a `&mut`: an elided output lifetime is its, named or not.
#[resilience::resilient(provider = "kimi")]
async fn named<'a>(buf: &'a mut Vec<u8>) -> Result<&u8, MyError> {
    buf.push(1);
    Ok(&buf[0])
}

fn main() {}
