#![deny(unused_qualifications, unused, unfulfilled_lint_expectations, clippy::all)]
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

pub struct Kimi;

impl Kimi {
    #[resilience::resilient(provider = "kimi")]
    pub async fn upload(&self, name: &str, body: Vec<u8>) -> Result<usize, MyError> {
        Ok(name.len() + body.len())
    }

    #[resilience::resilient(provider = "kimi", retry = false)]
    pub async fn delete(&self, id: String) -> Result<usize, MyError> {
        Ok(id.len())
    }

    /// `#[instrument]` below records `id` and `tag`, which the body does not name: no
    /// "unused variable" at them (each attempt's copy of an argument the body never names is
    /// not made at all), and one named only in a format string is still copied.
    #[resilience::resilient(provider = "kimi")]
    #[tracing::instrument(skip(self))]
    pub async fn traced(&self, id: u32, tag: String, r#type: String) -> Result<usize, MyError> {
        Ok(format!("{type}").len())
    }
}

/// Each attempt's `self` is a binding of ours: no "unused variable" for a body that never
/// names `self`, and a `mut self` that the body changes is no "unneeded `mut`".
#[derive(Clone)]
pub struct Counter(u32);

impl Counter {
    #[resilience::resilient(provider = "kimi")]
    pub async fn ignores(&mut self) -> Result<u32, MyError> {
        Ok(1)
    }

    #[resilience::resilient(provider = "kimi")]
    pub async fn changes(mut self) -> Result<u32, MyError> {
        self.0 += 1;
        Ok(self.0)
    }

    /// Lint levels on the receiver go with its `mut` to each attempt's copy.
    #[resilience::resilient(provider = "kimi")]
    pub async fn allowed(#[allow(unused_mut)] mut self) -> Result<u32, MyError> {
        Ok(self.0)
    }

    #[resilience::resilient(provider = "kimi")]
    pub async fn expected(#[expect(unused_mut)] mut self) -> Result<u32, MyError> {
        Ok(self.0)
    }
}

/// Lint levels on a parameter hold for its pattern, which each attempt binds afresh: an
/// unneeded `mut` and an unused part of a pattern stay allowed (or expected) as written.
pub struct Levels;

impl Levels {
    #[resilience::resilient(provider = "kimi")]
    pub async fn allowed(
        &self,
        #[allow(unused_mut)] mut z: String,
        #[expect(unused_variables)] (a, b): (u8, u8),
        #[cfg_attr(all(), allow(unused_mut))] mut w: &str,
        #[allow(non_snake_case)] mut X: String,
    ) -> Result<usize, MyError> {
        X.push('x');
        Ok(z.len() + usize::from(a) + w.len() + X.len())
    }

    #[resilience::resilient(provider = "kimi", retry = false)]
    pub async fn once(&self, #[allow(unused_mut)] mut z: String) -> Result<usize, MyError> {
        Ok(z.len())
    }

    /// An `expect` is fulfilled where the pattern is bound, and the parameter's own name
    /// (`non_snake_case`) is covered too, under `cfg_attr` as well; a `cfg` under `cfg_attr`
    /// reaches the copy.
    #[resilience::resilient(provider = "kimi")]
    pub async fn expected(
        &self,
        #[expect(non_snake_case)] myArg: String,
        #[cfg_attr(all(), expect(unused_mut))] mut x: String,
        #[cfg_attr(all(), cfg(any()))] gone: String,
    ) -> Result<usize, MyError> {
        #[cfg(any())]
        drop(gone);
        Ok(myArg.len() + x.len())
    }
}

#[async_trait::async_trait]
pub trait Buffers {
    async fn fill(&self, s: &str, buf: &mut [u8]) -> Result<usize, MyError>;
}

/// In an `#[async_trait]` impl, lint levels follow a reference argument's `mut` onto each
/// attempt's copy.
#[async_trait::async_trait]
impl Buffers for Levels {
    #[resilience::resilient(provider = "kimi")]
    async fn fill(
        &self,
        #[allow(unused_mut)] mut s: &str,
        #[allow(unused_mut)] mut buf: &mut [u8],
    ) -> Result<usize, MyError> {
        buf[0] = 1;
        Ok(s.len() + buf.len())
    }
}

fn main() {
    let _ = Levels.allowed(String::new(), (1, 2), "", String::new());
    let _ = Levels.once(String::new());
    let _ = Levels.expected(String::new(), String::new());
    let _ = Levels.fill("", &mut [0]);
    let _ = Kimi.upload("a", vec![]);
    let _ = Kimi.delete(String::new());
    let _ = Counter(0).ignores();
    let _ = Counter(0).changes();
    let _ = Counter(0).allowed();
    let _ = Counter(0).expected();
}
