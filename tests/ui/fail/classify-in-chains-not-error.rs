//! `classify_in_chains!` takes only types that are an `Error` (and `Classify`): the error is
//! at the type given.
use resilience::{Classify, ErrorClass};

#[derive(Debug)]
pub struct NoError;
impl Classify for NoError {
    fn classify(&self) -> ErrorClass {
        ErrorClass::Transient
    }
}

#[derive(Debug)]
pub struct NoClassify;
impl std::fmt::Display for NoClassify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no classify")
    }
}
impl std::error::Error for NoClassify {}

resilience::classify_in_chains!(NoError);
resilience::classify_in_chains!(NoClassify);

fn main() {}
