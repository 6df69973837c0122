//! In an `#[async_trait]` impl, a pattern on a `&mut` argument is bound per attempt, as on the
//! native path, so an `#[instrument]` below cannot record its bindings in `fields(…)`, which
//! are made once, before the attempts: rustc says "cannot find value" there (it compiled when
//! async-trait's pattern stayed in the signature, and the body could not move a binding).
//! Give the argument a plain name to record it.
use async_trait::async_trait;
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

pub struct Batch(pub Vec<u32>);

#[async_trait]
pub trait Fill {
    async fn fill(&self, batch: &mut Batch) -> Result<usize, MyError>;
}

pub struct Kimi;

#[async_trait]
impl Fill for Kimi {
    #[resilience::resilient(provider = "kimi")]
    #[tracing::instrument(skip(self, items), fields(n = items.len()))]
    async fn fill(&self, Batch(items): &mut Batch) -> Result<usize, MyError> {
        items.push(1);
        Ok(items.len())
    }
}

fn main() {
    let _ = Kimi.fill(&mut Batch(Vec::new()));
}
