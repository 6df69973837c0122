use std::fmt::Display;
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

#[derive(Clone)]
pub struct Purpose(String);

#[resilience::resilient(provider = "kimi")]
async fn generic<T, U>(value: T, label: &U, shown: impl Display + Clone, (a, b): (u8, u8), _: u64) -> Result<String, MyError>
where
    T: Clone + Into<String>,
    U: AsRef<str> + ?Sized,
{
    let purpose = Purpose(value.into()); // consumes the owned copy of this attempt
    Ok(format!("{}{}{shown}{a}{b}", purpose.0, label.as_ref()))
}

#[resilience::resilient(provider = "kimi")]
async fn mutable(mut n: u32, mut list: Vec<u8>) -> Result<u32, MyError> {
    n += 1;
    list.push(1);
    Ok(n + list.len() as u32)
}

fn main() {
    let _ = generic(String::from("a"), "b", 3, (1, 2), 9);
    let _ = mutable(1, vec![]);
}
