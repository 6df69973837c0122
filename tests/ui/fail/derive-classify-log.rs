use resilience::Classify;

// `log` logs a fixed class's text: not a transparent variant's (its field's text is logged),
// not alone, not twice; another word beside a class is no class.
#[derive(Debug, Classify)]
enum Wrong {
    #[classify(transparent, log)]
    Forwarded(std::io::Error),
    #[classify(log)]
    Alone,
    #[classify(permanent, loud)]
    Other,
    #[classify(permanent, log, log)]
    Twice,
}

// The text is the value's `Display`: a type without one is refused at `log`.
#[derive(Debug, Classify)]
enum NoDisplay {
    #[classify(permanent, log)]
    TooLarge,
}

fn main() {}
