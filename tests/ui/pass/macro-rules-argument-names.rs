//! Methods written by a `macro_rules!`, with an attribute below `#[resilient]` whose tokens
//! name an argument before the attempts (`#[instrument(parent = …)]`): the argument's name
//! and the attribute may come from different places, the caller's and the macro's, and the
//! parameter must keep the hygiene of its own name for those tokens to find it.
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

pub struct Api;

// The attributes written by the macro, the argument's name given by its caller.
macro_rules! endpoint {
    ($name:ident, $span:ident, $body:ident) => {
        impl Api {
            #[resilient(provider = "kimi")]
            #[tracing::instrument(skip_all, parent = &$span)]
            pub async fn $name(&self, $span: tracing::Span, mut $body: Vec<u8>) -> Result<usize, MyError> {
                $body.push(1);
                Ok($body.len() + usize::from($span.is_disabled()))
            }
        }
    };
}
endpoint!(upload, outer, payload);

// The attribute put around whole items by the macro, the items given by its caller.
macro_rules! resilient_all {
    ($($item:item)*) => { $( #[resilient(provider = "kimi")] $item )* };
}
resilient_all! {
    #[tracing::instrument(skip_all, parent = &outer)]
    async fn named(outer: tracing::Span, name: String) -> Result<usize, MyError> {
        let _ = &outer;
        Ok(name.len())
    }
}

fn main() {
    let _ = Api.upload(tracing::Span::none(), vec![]);
    let _ = named(tracing::Span::none(), String::new());
}
