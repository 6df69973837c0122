//! A crate that forbids `unreachable_code` and `unused` can use the attribute: the expansion
//! allows neither (it used to, which a `forbid` refuses: E0453, or a future-incompatibility
//! warning for a group), with bodies that diverge, loop or return early, and receivers that
//! each attempt binds afresh and the body never names. And `unsafe_code`: the call site's
//! registration at program load (`inventory::submit!`) puts no `unsafe` in the user's crate.
#![forbid(unreachable_code, unused, unsafe_code)]
// `forbidden_lint_groups` by name: its warning in generated code passes `deny(warnings)`.
#![deny(warnings, forbidden_lint_groups)]
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

#[resilience::resilient(provider = "kimi")]
async fn diverges() -> Result<u32, MyError> {
    todo!()
}

#[resilience::resilient(provider = "kimi")]
async fn loops() -> Result<u32, MyError> {
    loop {}
}

#[resilience::resilient(provider = "kimi")]
async fn returns() -> Result<u32, MyError> {
    return Ok(1);
}

pub struct Kimi;

impl Kimi {
    #[resilience::resilient(provider = "kimi")]
    pub async fn borrowed(&mut self) -> Result<u32, MyError> {
        Ok(1)
    }
}

#[derive(Clone)]
pub struct Glm(u32);

impl Glm {
    #[resilience::resilient(provider = "glm")]
    pub async fn owned(mut self) -> Result<u32, MyError> {
        self.0 += 1;
        Ok(self.0)
    }
}

fn main() {
    let _ = Kimi.borrowed();
    let _ = Glm(0).owned();
    let _ = diverges();
    let _ = loops();
    let _ = returns();
}
