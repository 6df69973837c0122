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

pub struct Token(String); // not Clone: fine with one attempt

#[resilience::resilient(provider = "kimi", retry = false)]
async fn revoke(token: Token, (a, _b): (u8, u8)) -> Result<usize, MyError> {
    let Token(s) = token;
    Ok(s.len() + a as usize)
}

fn main() {
    let _ = revoke(Token(String::new()), (1, 2));
}
