//! `execute` without the macro: closures that borrow locals, `FnMut` closures, an `async fn`
//! passed by name, and futures that are neither `Send` nor `Unpin`.

use std::marker::PhantomPinned;
use std::rc::Rc;

use resilience::{CallSite, Classify, ErrorClass, ResilienceError};

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

static SITE: CallSite = CallSite::new("kimi", "upload");

async fn fetch() -> Result<u32, MyError> {
    Ok(1)
}

async fn calls() -> Result<usize, MyError> {
    let name = String::from("a.txt");
    let mut tries = 0;
    let provider = resilience::provider("kimi");
    let n = provider
        .execute(|| {
            tries += 1;
            let name = &name;
            async move {
                // Neither `Send` nor `Unpin`.
                let rc = Rc::new(name.len());
                let pinned = PhantomPinned;
                std::future::ready(()).await;
                let _ = &pinned;
                Ok::<_, MyError>(*rc)
            }
        })
        .await?;
    let m = SITE.execute(fetch).await?;
    // `?` in the body.
    let k = SITE
        .execute(|| async {
            let v = fetch().await?;
            Ok::<_, MyError>(v)
        })
        .await?;
    let out: Result<&str, std::io::Error> = SITE.execute(|| async { Ok(name.as_str()) }).await;
    Ok(n + m as usize + k as usize + tries + out.map_or(0, str::len))
}

// A wrapper of the caller's own, generic over the bounds `execute` used to spell out.
async fn wrapped<F, Fut, T, E>(op: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: Classify + From<ResilienceError>,
{
    SITE.execute(op).await
}

fn main() {
    let _ = wrapped(fetch);
    let _ = calls();
}
