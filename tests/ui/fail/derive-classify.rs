use resilience::Classify;

#[derive(Debug, Classify)]
enum Unsaid {
    #[classify(transient)]
    Said,
    NotSaid,
    #[classify(retryable)]
    Unknown,
    #[classify(permanent)]
    #[classify(transient)]
    Twice,
    #[classify(transparent)]
    TwoFields(std::io::Error, u32),
}

#[derive(Debug)]
struct NotAnError;

#[derive(Debug, Classify)]
enum Forwards {
    #[classify(transparent)]
    Inner(NotAnError),
}

#[derive(Classify)]
union Raw {
    a: u32,
}

fn main() {}
