//! Shapes of `execute` calls that compiled when its bounds were spelled out on it
//! (`F: FnMut() -> Fut, Fut: Future<Output = Result<T, E>>, E: Classify + From<ResilienceError>`,
//! an `async fn`), and must still compile, infer the same types and run: error and success
//! types inferred from outside the closure or through `?` and `.into()`, closures of every
//! kind, futures boxed or not, callers generic over the old bounds, and the future's `Send`.

mod common;

use std::future::Future;
use std::pin::Pin;

use common::TestError;
use resilience::{CallSite, Classify, ResilienceError};

static SITE: CallSite = CallSite::new("shapes", "call");

async fn io(v: u32) -> Result<u32, std::io::Error> {
    Ok(v)
}

impl From<std::io::Error> for TestError {
    fn from(_: std::io::Error) -> Self {
        TestError::Permanent(0)
    }
}

/// The error type from the binding's annotation, reached through `.into()` in the body.
async fn error_from_the_annotation() -> u32 {
    let r: Result<u32, std::io::Error> = resilience::provider("shapes")
        .execute(|| async { Err(std::io::ErrorKind::NotFound.into()) })
        .await;
    u32::from(r.is_err())
}

/// The error type from the enclosing function's return type, reached through `?` in the body.
async fn error_from_the_return_type() -> Result<u32, TestError> {
    SITE.execute(|| async { Ok(io(1).await?) }).await
}

/// `E` a type parameter of the caller, with the bounds `execute` used to spell out.
async fn generic_error<E>() -> Result<(), E>
where
    E: Classify + From<ResilienceError> + From<std::io::Error>,
{
    SITE.execute(|| async {
        io(1).await?;
        Ok(())
    })
    .await
}

/// A caller generic over the old bounds, whose future is `Send` and `'static` when its parts
/// are: it can be spawned.
fn spawnable<F, Fut, T, E>(op: F) -> impl Future<Output = Result<T, E>> + Send + 'static
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Classify + From<ResilienceError> + Send + 'static,
{
    SITE.execute(op)
}

/// The success type a reference into the caller's frame.
async fn borrowed_success(s: &str) -> Result<&str, TestError> {
    SITE.execute(|| async { Ok(s) }).await
}

type BoxedAttempt = Pin<Box<dyn Future<Output = Result<u32, TestError>> + Send>>;

fn boxed() -> BoxedAttempt {
    Box::pin(async { Ok(4) })
}

#[tokio::test]
async fn shapes_that_compiled_before_still_compile_and_run() {
    assert_eq!(error_from_the_annotation().await, 1);
    assert_eq!(error_from_the_return_type().await, Ok(1));
    assert_eq!(generic_error::<TestError>().await, Ok(()));
    assert_eq!(
        tokio::spawn(spawnable(|| async { Ok::<_, TestError>(2) }))
            .await
            .unwrap(),
        Ok(2)
    );
    let text = String::from("abc");
    assert_eq!(borrowed_success(&text).await, Ok("abc"));

    // A closure returning a boxed `dyn Future`, a `fn` pointer, and a closure by `&mut`.
    let r = SITE
        .execute(|| -> Pin<Box<dyn Future<Output = Result<u32, TestError>>>> { boxed() })
        .await;
    assert_eq!(r, Ok(4));
    let f: fn() -> BoxedAttempt = boxed;
    assert_eq!(SITE.execute(f).await, Ok(4));
    let mut n = 0;
    let mut counting = || {
        n += 1;
        async { Ok::<_, TestError>(5) }
    };
    assert_eq!(SITE.execute(&mut counting).await, Ok(5));
    assert_eq!(n, 1);

    // Async closures that implement `FnMut`: one borrowing a local, one with `?`.
    let name = String::from("ab");
    let r: Result<usize, TestError> = SITE.execute(async || Ok(name.len())).await;
    assert_eq!(r, Ok(2));
    let r: Result<u32, TestError> = SITE.execute(async || Ok(io(6).await?)).await;
    assert_eq!(r, Ok(6));

    // `T = ()`, and the future spawned straight from a `'static` call site.
    let r = tokio::spawn(SITE.execute(move || async move { Ok::<(), TestError>(()) })).await;
    assert_eq!(r.unwrap(), Ok(()));
    // A provider handle kept in a local while the future is awaited.
    let p = resilience::provider("shapes");
    let fut = p.execute(|| async { Ok::<_, TestError>(7) });
    assert_eq!(fut.await, Ok(7));
}

/// The future holds the provider, not the handle it was made from: spawned straight from a
/// handle that is a temporary.
#[tokio::test]
async fn a_call_made_from_a_temporary_handle_can_be_spawned() {
    let task = tokio::spawn(
        resilience::provider("shapes-spawned").execute(|| async { Ok::<u32, TestError>(5) }),
    );
    assert_eq!(task.await.unwrap(), Ok(5));
}
