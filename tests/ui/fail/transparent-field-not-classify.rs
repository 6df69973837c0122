//! A transparent variant whose field's type has no `Classify`: one error for each such field,
//! at its type, though the derive forwards all three of `Classify`'s methods to it.
use resilience::Classify;

#[derive(Debug)]
struct NotAnError;

#[derive(Debug, Classify)]
enum UploadError {
    #[classify(transparent)]
    Text(String),
    #[classify(transparent)]
    Named { source: NotAnError },
    // `Classify`: forwarded, and no error.
    #[classify(transparent)]
    Io(std::io::Error),
    #[classify(permanent)]
    Invalid,
    // `Box<E>` forwards to `E`, which has none: reported with `Classify`'s own message, whose
    // notes say to give such a variant a fixed class.
    #[classify(transparent)]
    Boxed(Box<dyn std::error::Error + Send + Sync>),
}

#[derive(Debug, Classify)]
#[classify(transparent)]
struct Wrapped(Vec<u8>);

mod re {
    pub use resilience as facade;
}

// Through a path given with `crate = …`, the same one error.
#[derive(Debug, Classify)]
#[classify(crate = re::facade)]
enum Renamed {
    #[classify(transparent)]
    Code(u16),
}

fn main() {}
