//! Each attempt owns its arguments and its `self`: the future is `Send` whenever they are
//! (not only when they are `Sync`), a body may move `&mut self` into an `async move` block or
//! under `#[tracing::instrument]`, a `#[cfg]`-ed out parameter vanishes with its rebinding,
//! and the loop's own locals cannot clash with the body's.
use std::cell::Cell;

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

fn assert_send<T: Send>(_: T) {}

#[resilient(provider = "kimi")]
async fn generic<T: Clone + Send + std::fmt::Debug>(x: T) -> Result<String, MyError> {
    Ok(format!("{x:?}"))
}

#[resilient(provider = "kimi")]
async fn cell(x: Cell<u32>, (a, b): (Cell<u8>, u8)) -> Result<u32, MyError> {
    Ok(x.get() + u32::from(a.get() + b))
}

#[resilient(provider = "kimi")]
async fn cfg_param(#[cfg(any())] gone: String, kept: u32) -> Result<u32, MyError> {
    Ok(kept)
}

#[resilient(provider = "kimi")]
async fn hygiene(__resilience_call: u32, __resilience_out: u32) -> Result<u32, MyError> {
    let __resilience_result = __resilience_call + __resilience_out;
    // The call site's `static` is out of the body's reach too.
    #[allow(non_snake_case)]
    let __RESILIENCE_SITE = __resilience_result;
    let __resilience_site = __RESILIENCE_SITE;
    Ok(__resilience_site)
}

#[derive(Clone)]
struct Client {
    n: u32,
}

impl Client {
    #[resilient(provider = "kimi")]
    async fn moved_into_async_block(&mut self) -> Result<u32, MyError> {
        let fut = async move {
            self.n += 1;
            self.n
        };
        Ok(fut.await)
    }

    #[resilient(provider = "kimi")]
    async fn moved_into_closure(&mut self, add: u32) -> Result<u32, MyError> {
        let mut f = move |x: u32| self.n += x;
        f(add);
        Ok(1)
    }

    #[tracing::instrument(skip(self, body))]
    #[resilient(provider = "kimi")]
    async fn instrumented(&mut self, body: &mut Vec<u8>, id: String) -> Result<u32, MyError> {
        self.n += 1;
        body.push(1);
        Ok(self.n + id.len() as u32)
    }

    /// A `select!` arm that assigns through `self`, and a span whose field is `self.n`.
    #[resilient(provider = "kimi")]
    async fn select_assign(&mut self) -> Result<u32, MyError> {
        tokio::select! {
            _ = async {} => { *self = Client { n: 0 }; }
        }
        let _span = tracing::info_span!("span-{self}", self.n, ?self).entered();
        Ok(self.n)
    }

    #[resilient(provider = "kimi")]
    async fn by_value(mut self) -> Result<u32, MyError> {
        self.n += 1;
        Ok(self.n)
    }

    #[resilient(provider = "kimi")]
    async fn self_path_untouched(&mut self) -> Result<u32, MyError> {
        self.n += 1;
        let text = format!("{}", self::helper(self.n));
        Ok(self::helper(self.n) + text.len() as u32)
    }
}

#[async_trait::async_trait]
trait Boxed {
    async fn cell(&self, x: Cell<u32>) -> Result<u32, MyError>;
}

#[async_trait::async_trait]
impl Boxed for Client {
    #[resilient(provider = "kimi")]
    async fn cell(&self, x: Cell<u32>) -> Result<u32, MyError> {
        Ok(x.get() + self.n)
    }
}

/// A method written by a user's `macro_rules!`: the body's `self` comes from the macro's input.
macro_rules! api {
    ($(async fn $name:ident(&mut $s:ident) -> $ret:ty $body:block)*) => {
        impl Client { $( #[resilient(provider = "kimi")] async fn $name(&mut $s) -> $ret $body )* }
    };
}

api! {
    async fn generated(&mut self) -> Result<u32, MyError> {
        self.n += 1;
        let ops = vec![(self.n, helper as fn(u32) -> u32)];
        let text = format!("{self:?} {{self}} {}", ops.len());
        tracing::info!(?self, n = self.n, "made");
        Ok(self.n + text.len() as u32)
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({})", self.n)
    }
}

fn helper(n: u32) -> u32 {
    n
}

fn check<T: Clone + Send + std::fmt::Debug + 'static>(x: T) {
    assert_send(generic(x));
}

fn main() {
    check(1u8);
    assert_send(cell(Cell::new(1), (Cell::new(2), 3)));
    assert_send(cfg_param(1));
    assert_send(hygiene(1, 2));
    let mut c = Client { n: 0 };
    assert_send(c.moved_into_async_block());
    assert_send(c.moved_into_closure(1));
    let mut body = Vec::new();
    assert_send(c.instrumented(&mut body, String::new()));
    assert_send(c.clone().by_value());
    assert_send(c.self_path_untouched());
    assert_send(c.generated());
    assert_send(c.select_assign());
}
