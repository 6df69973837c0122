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

pub struct Session(Token); // not Clone either

impl Session {
    fn into_token(self) -> Token {
        self.0
    }

    // One attempt may consume `self` (and, through `async-trait`, the same holds).
    #[resilience::resilient(provider = "kimi", retry = false)]
    async fn close(self) -> Result<usize, MyError> {
        let Token(s) = self.into_token();
        Ok(s.len())
    }
}

// `ref` and `@` bindings keep their names.
#[resilience::resilient(provider = "kimi", retry = false)]
async fn label(ref name: String, all @ (first, _): (u8, u8)) -> Result<usize, MyError> {
    Ok(name.len() + first as usize + all.1 as usize)
}

// Items the expansion could collide with, in the user's scope.
#[allow(non_camel_case_types, dead_code)]
struct result;
#[allow(non_upper_case_globals, dead_code)]
const permit: u8 = 0;

#[resilience::resilient(provider = "kimi")]
async fn collide(x: u8) -> Result<u8, MyError> {
    Ok(x)
}

fn main() {
    let _ = label(String::new(), (1, 2));
    let _ = collide(1);
    let _ = revoke(Token(String::new()), (1, 2));
    let _ = Session(Token(String::new())).close();
}
