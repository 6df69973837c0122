//! An error type that holds a rejection by value, as the peers' own error types do
//! (`std::io::Error` boxes whatever it carries). One definition for the three places that
//! time, count or check the rejection path: the bench, `examples/hot_path_probe.rs` and
//! `tests/alloc.rs`.

#[derive(Debug)]
pub enum Rejectable {
    Io(std::io::Error),
    Resilience(resilience::ResilienceError),
}

impl From<resilience::ResilienceError> for Rejectable {
    fn from(e: resilience::ResilienceError) -> Self {
        Rejectable::Resilience(e)
    }
}

impl resilience::Classify for Rejectable {
    fn classify(&self) -> resilience::ErrorClass {
        match self {
            Rejectable::Io(e) => e.classify(),
            Rejectable::Resilience(e) => e.classify(),
        }
    }
}
