use resilience::{Classify, ResilienceError};

#[derive(Debug, Classify)]
#[classify(transient)]
enum Unsaid {
    #[classify(transient)]
    Said,
    NotSaid,
    #[classify(retryable)]
    Unknown,
    #[classify(Transient)]
    Capital,
    #[classify(permanent)]
    #[classify(transient)]
    Twice,
    #[classify(transparent, permanent)]
    Both,
    #[classify]
    Bare,
    #[classify = "transient"]
    Assigned,
    #[classify()]
    EmptyParens,
    #[classify("transient")]
    Quoted,
    #[classify(transparent)]
    TwoFields(std::io::Error, u32),
    #[classify(transparent)]
    Unit,
    #[classify(permanent)]
    OnField(#[classify(transparent)] std::io::Error),
}

impl From<ResilienceError> for Unsaid {
    fn from(_: ResilienceError) -> Self {
        Unsaid::Said
    }
}

// The type's mistakes above are its only errors: using it adds none.
#[resilience::resilient(provider = "kimi")]
async fn upload() -> Result<(), Unsaid> {
    Ok(())
}

#[derive(Debug)]
struct NotAnError;

#[derive(Debug, Classify)]
enum Forwards {
    #[classify(transparent)]
    Inner(NotAnError),
}

// A forwarded parameter gets its bound from the derive, so the use names the argument.
#[derive(Debug, Classify)]
enum Generic<E> {
    #[classify(transparent)]
    Inner(E),
}

fn needs_classify<E: Classify>() {}

fn generic_use() {
    needs_classify::<Generic<NotAnError>>();
}

// Empty parentheses on a struct: the error is at the attribute, not at the derive.
#[derive(Debug, Classify)]
#[classify()]
struct EmptyStruct;

#[derive(Classify)]
union Raw {
    a: u32,
}

fn main() {}
