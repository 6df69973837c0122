// A method that returns a borrow of an argument where its signature lends another's: rustc's
// "lifetime may not live long enough" (or E0621) falls where the value is returned, which is
// the expansion's, so it is placed at the return type, not at the attribute.
use resilience::{Classify, ErrorClass, ResilienceError, resilient};

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

pub struct Client {
    pub name: String,
}

impl Client {
    // Elided: the result borrows `self`, the body returns `key`.
    #[resilient(provider = "kimi")]
    pub async fn elided(&self, key: &str) -> Result<&str, MyError> {
        Ok(key)
    }

    #[resilient(provider = "kimi")]
    pub async fn named<'a, 'b>(&'a self, key: &'b str) -> Result<&'a str, MyError> {
        if key.is_empty() {
            return Ok(&self.name);
        }
        Ok(key)
    }

    #[resilient(provider = "kimi", retry = false)]
    pub async fn once(&self, key: &str) -> Result<&str, MyError> {
        Ok(key)
    }
}

#[resilient(provider = "kimi")]
pub async fn free<'a>(a: &'a str, b: &str) -> Result<&'a str, MyError> {
    let _ = a;
    Ok(b)
}

fn main() {}
