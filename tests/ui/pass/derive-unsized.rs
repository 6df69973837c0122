//! `#[derive(Classify)]` on a struct whose last field is unsized (from helper-101's review:
//! the chain registration's probe required `Sized` for a while, and this failed to compile).
//! Such a type cannot be found in an error chain (`downcast_ref` needs `Sized`): it is not
//! registered, and its impl is still made.
use resilience::{Classify, ErrorClass};

#[derive(Classify)]
#[classify(permanent)]
pub struct Message {
    pub code: u16,
    pub text: str,
}

pub fn class_of(m: &Message) -> ErrorClass {
    m.classify()
}

fn main() {}
