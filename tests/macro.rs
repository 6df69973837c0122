//! `#[resilient]` on trait impls (native `async fn` and `#[async_trait]`), end to end against
//! a failing-then-succeeding operation. The lints below hold the expansion to clippy's
//! standards (`.ci/run` runs clippy on this file).
#![deny(unused_qualifications, clippy::all)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::TestError;
use resilience::{CircuitState, Jitter, Settings, resilient};

/// Fails with a transient error until `fail_first` calls have been made, then succeeds.
#[derive(Clone)]
struct Flaky {
    calls: Arc<AtomicU32>,
    fail_first: u32,
}

impl Flaky {
    fn new(fail_first: u32) -> Self {
        Flaky {
            calls: Arc::new(AtomicU32::new(0)),
            fail_first,
        }
    }
    fn hit(&self) -> Result<u32, TestError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= self.fail_first {
            Err(TestError::Transient(n))
        } else {
            Ok(n)
        }
    }
    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

trait FileProvider {
    async fn upload_file(&self, name: &str, bytes: Vec<u8>) -> Result<u32, TestError>;
    async fn delete_file(&self, id: String) -> Result<u32, TestError>;
}

#[async_trait]
trait BoxedProvider {
    async fn upload_file(&self, name: &str, bytes: Vec<u8>) -> Result<u32, TestError>;
    async fn rename(&mut self, to: String) -> Result<u32, TestError>;
}

struct Native {
    flaky: Flaky,
}

impl FileProvider for Native {
    #[resilient(provider = "mac-native")]
    async fn upload_file(&self, name: &str, bytes: Vec<u8>) -> Result<u32, TestError> {
        assert_eq!((name, bytes.len()), ("a.txt", 3));
        let n = self.flaky.hit()?;
        Ok(n)
    }

    #[resilient(provider = "mac-native", retry = false, name = "delete")]
    async fn delete_file(&self, id: String) -> Result<u32, TestError> {
        drop(id); // consumed: fine with one attempt
        self.flaky.hit()
    }
}

struct Boxed {
    flaky: Flaky,
    renames: u32,
}

#[async_trait]
impl BoxedProvider for Boxed {
    #[resilient(provider = "mac-boxed")]
    async fn upload_file(&self, name: &str, bytes: Vec<u8>) -> Result<u32, TestError> {
        assert_eq!((name, bytes.len()), ("b.txt", 2));
        self.flaky.hit()
    }

    #[resilient(provider = "mac-boxed", name = "rename")]
    async fn rename(&mut self, to: String) -> Result<u32, TestError> {
        self.renames += 1;
        assert_eq!(to, "new");
        self.flaky.hit()
    }
}

fn fast(name: &str, failure_threshold: u32) {
    resilience::configure(
        name,
        Settings::new()
            .jitter(Jitter::None)
            .base_delay(Duration::from_millis(10))
            .failure_threshold(failure_threshold)
            .breaker_timeout(Duration::from_secs(60)),
    )
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn native_trait_impl_retries_until_success() {
    fast("mac-native", 100);
    let p = Native {
        flaky: Flaky::new(2),
    };
    assert_eq!(p.upload_file("a.txt", vec![1, 2, 3]).await, Ok(3));
    assert_eq!(p.flaky.calls(), 3, "two transient failures, then success");
}

#[tokio::test(start_paused = true)]
async fn retry_false_makes_exactly_one_attempt() {
    fast("mac-native", 100);
    let p = Native {
        flaky: Flaky::new(1),
    };
    assert_eq!(
        p.delete_file("id-1".into()).await,
        Err(TestError::Transient(1))
    );
    assert_eq!(p.flaky.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn async_trait_impl_retries_only_the_inner_block() {
    fast("mac-boxed", 100);
    let p = Boxed {
        flaky: Flaky::new(2),
        renames: 0,
    };
    assert_eq!(p.upload_file("b.txt", vec![1, 2]).await, Ok(3));
    assert_eq!(p.flaky.calls(), 3);
    let mut q = Boxed {
        flaky: Flaky::new(1),
        renames: 0,
    };
    assert_eq!(q.rename("new".into()).await, Ok(2));
    assert_eq!(q.renames, 2, "`&mut self` is reborrowed for each attempt");
    // The boxed future is Send, as async-trait requires.
    fn assert_send<T: Send>(_: &T) {}
    assert_send(&p.upload_file("b.txt", vec![1, 2]));
}

#[tokio::test(start_paused = true)]
async fn two_instances_share_one_breaker() {
    resilience::configure(
        "mac-shared",
        Settings::new().max_attempts(1).failure_threshold(3),
    )
    .unwrap();

    struct Shared(Flaky);
    impl Shared {
        #[resilient(provider = "mac-shared")]
        async fn call(&self) -> Result<u32, TestError> {
            self.0.hit()
        }
    }

    let a = Shared(Flaky::new(u32::MAX));
    let b = Shared(Flaky::new(u32::MAX));
    assert!(a.call().await.is_err());
    assert!(b.call().await.is_err());
    assert!(a.call().await.is_err());
    assert_eq!(
        resilience::provider("mac-shared").state(),
        CircuitState::Open,
        "3 failures across two instances"
    );
    let healthy = Shared(Flaky::new(0));
    assert!(matches!(
        healthy.call().await,
        Err(TestError::Resilience(
            resilience::ResilienceError::CircuitOpen { .. }
        ))
    ));
    assert_eq!(
        healthy.0.calls(),
        0,
        "rejected without reaching the provider"
    );
    assert_eq!((a.0.calls(), b.0.calls()), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn question_mark_and_return_end_the_attempt_not_the_loop() {
    resilience::configure(
        "mac-early",
        Settings::new()
            .jitter(Jitter::None)
            .base_delay(Duration::ZERO)
            .failure_threshold(100),
    )
    .unwrap();
    let calls = AtomicU32::new(0);

    #[resilient(provider = "mac-early")]
    async fn early(calls: &AtomicU32) -> Result<u32, TestError> {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 {
            return Err(TestError::Transient(n));
        }
        let parsed: u32 = "x"
            .parse()
            .map_err(|_| TestError::Transient(n))
            .or_else(|e| if n == 2 { Err(e) } else { Ok(n) })?;
        Ok(parsed)
    }

    assert_eq!(early(&calls).await, Ok(3));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let p = resilience::provider("mac-early");
    assert_eq!(
        p.consecutive_failures(),
        0,
        "the final success reached the breaker"
    );
}

/// A body that opens with inner attributes is still rewritten (it used to be left as it was,
/// silently without retries), in every shape the macro accepts.
#[tokio::test(start_paused = true)]
async fn inner_attributes_in_the_body_keep_resilience_on() {
    fast("mac-inner", 100);

    #[resilient(provider = "mac-inner")]
    async fn free(flaky: &Flaky) -> Result<u32, TestError> {
        #![allow(unused_variables)]
        #![allow(clippy::let_unit_value)]
        let unused = ();
        assert!(resilience::current_call().is_some());
        flaky.hit()
    }

    struct Inner(Flaky);
    #[async_trait]
    impl BoxedProvider for Inner {
        #[resilient(provider = "mac-inner")]
        async fn upload_file(&self, _name: &str, _bytes: Vec<u8>) -> Result<u32, TestError> {
            #![allow(unused_variables)]
            let unused = ();
            self.0.hit()
        }
        #[resilient(provider = "mac-inner")]
        async fn rename(&mut self, _to: String) -> Result<u32, TestError> {
            #![allow(unused_variables)]
            self.0.hit()
        }
    }

    let flaky = Flaky::new(2);
    assert_eq!(free(&flaky).await, Ok(3));
    assert_eq!(flaky.calls(), 3, "two transient failures, then success");
    let mut p = Inner(Flaky::new(2));
    assert_eq!(p.upload_file("x", vec![]).await, Ok(3));
    assert_eq!(p.0.calls(), 3);
    let mut q = Inner(Flaky::new(1));
    assert_eq!(q.rename("y".into()).await, Ok(2), "`&mut self` too");
    p.0 = Flaky::new(0);
    assert_eq!(p.rename("z".into()).await, Ok(1));
}

/// A request whose `send` changes itself before it fails.
#[derive(Clone)]
struct Request {
    headers: Vec<&'static str>,
    flaky: Flaky,
}

impl Request {
    /// Taken by value and changed: each attempt must start from the caller's request, as an
    /// owned argument does (it saw the previous attempts' headers).
    #[resilient(provider = "mac-self")]
    async fn send(mut self) -> Result<u32, TestError> {
        self.headers.push("X-Trace");
        assert_eq!(self.headers, ["X-Trace"], "a fresh copy per attempt");
        self.flaky.hit()
    }

    /// The same through a `Box`, and with `self` captured by a format string.
    #[resilient(provider = "mac-self")]
    async fn send_boxed(mut self: Box<Self>) -> Result<String, TestError> {
        self.headers.push("X-Boxed");
        let seen = format!("{self}");
        self.flaky.hit().map(|_| seen)
    }

    /// The same through a `Pin<Box<Self>>`, which is cloned too (it was used as it was, so
    /// one attempt's change reached the next).
    #[resilient(provider = "mac-self")]
    async fn send_pinned(mut self: std::pin::Pin<Box<Self>>) -> Result<u32, TestError> {
        self.headers.push("X-Pinned");
        assert_eq!(self.headers, ["X-Pinned"], "a fresh copy per attempt");
        self.flaky.hit()
    }

    /// Literals that are data keep `{self}`; the format string's is this attempt's `self`.
    #[resilient(provider = "mac-self")]
    async fn literals(&mut self) -> Result<String, TestError> {
        let data = String::from("hello {self}");
        assert_eq!(data, "hello {self}");
        self.flaky.hit()?;
        Ok(format!("{}|{self}|{}", "{self}", self.headers.len()))
    }

    /// `&mut self` moved into an `async move` block, once per attempt: every attempt changes
    /// the caller's request.
    #[resilient(provider = "mac-self")]
    async fn stamp(&mut self) -> Result<u32, TestError> {
        let fut = async move {
            self.headers.push("X-Attempt");
            self.flaky.hit()
        };
        fut.await
    }
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} header(s)", self.headers.len())
    }
}

#[tokio::test(start_paused = true)]
async fn each_attempt_gets_its_own_self() {
    fast("mac-self", 100);
    let req = Request {
        headers: Vec::new(),
        flaky: Flaky::new(2),
    };
    assert_eq!(req.clone().send().await, Ok(3));
    assert!(req.headers.is_empty(), "the caller's request is unchanged");
    let mut req = Request {
        headers: Vec::new(),
        flaky: Flaky::new(1),
    };
    assert_eq!(req.stamp().await, Ok(2));
    assert_eq!(req.headers, ["X-Attempt", "X-Attempt"]);
    let boxed = Box::new(Request {
        headers: Vec::new(),
        flaky: Flaky::new(2),
    });
    let mut req = Request {
        headers: vec!["X-A"],
        flaky: Flaky::new(1),
    };
    assert_eq!(req.literals().await.as_deref(), Ok("{self}|1 header(s)|1"));
    assert_eq!(
        boxed.send_boxed().await.as_deref(),
        Ok("1 header(s)"),
        "the third attempt's own copy, as the format string sees it"
    );
    let pinned = Box::pin(Request {
        headers: Vec::new(),
        flaky: Flaky::new(2),
    });
    assert_eq!(pinned.send_pinned().await, Ok(3));
}

/// Not `Clone`: an argument of this type is fine as long as the body never names it.
struct NotClone;

/// Argument shapes that `#[async_trait]` rewrites before `#[resilient]` sees them, each as the
/// native path handles it.
#[async_trait]
trait Shapes {
    async fn strip(&self, s: &str) -> Result<String, TestError>;
    async fn fill(&self, buf: &mut [u8]) -> Result<usize, TestError>;
    async fn configured(&self, #[cfg(any())] gone: String, kept: u32) -> Result<u32, TestError>;
    async fn unnamed(&self, a: NotClone, b: NotClone, x: u32) -> Result<u32, TestError>;
    async fn pinned(self: std::pin::Pin<&mut Self>) -> Result<u32, TestError>;
    async fn pinned_shared(self: std::pin::Pin<&Self>) -> Result<u32, TestError>;
    async fn pinned_arc(self: std::pin::Pin<Arc<Self>>) -> Result<u32, TestError>;
    async fn guarded(&self, guard: Guard) -> Result<bool, TestError>;
}

static GUARD_DROPPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Held for the whole call, as a semaphore permit or a lock guard would be.
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        GUARD_DROPPED.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl Shapes for Flaky {
    /// A `mut` reference argument changed by an attempt: the next one starts from the
    /// caller's (it used to see the previous attempt's).
    #[resilient(provider = "mac-shapes")]
    async fn strip(&self, mut s: &str) -> Result<String, TestError> {
        s = &s[1..];
        self.hit()?;
        Ok(s.to_owned())
    }

    /// `mut` on a `&mut` argument (it did not compile: the reborrow dropped the `mut`).
    #[resilient(provider = "mac-shapes")]
    async fn fill(&self, mut buf: &mut [u8]) -> Result<usize, TestError> {
        let mut n = 0;
        while let [first, rest @ ..] = buf {
            *first += 1;
            buf = rest;
            n += 1;
        }
        self.hit()?;
        Ok(n)
    }

    /// A parameter compiled out (it did not compile: its copy kept no `#[cfg]`).
    #[resilient(provider = "mac-shapes")]
    async fn configured(
        &self,
        #[cfg(any())] gone: String,
        #[cfg(not(any()))] kept: u32,
    ) -> Result<u32, TestError> {
        self.hit().map(|n| n + kept)
    }

    /// Arguments the body never names need no `Clone` (they had to have it).
    #[resilient(provider = "mac-shapes")]
    async fn unnamed(&self, _: NotClone, _b: NotClone, x: u32) -> Result<u32, TestError> {
        self.hit().map(|n| n + x)
    }

    /// A pinned receiver, reborrowed per attempt (it did not compile: it was cloned).
    #[resilient(provider = "mac-shapes")]
    async fn pinned(self: std::pin::Pin<&mut Self>) -> Result<u32, TestError> {
        self.hit()
    }

    /// Other pins are cloned, as before.
    #[resilient(provider = "mac-shapes")]
    async fn pinned_shared(self: std::pin::Pin<&Self>) -> Result<u32, TestError> {
        self.hit()
    }

    #[resilient(provider = "mac-shapes")]
    async fn pinned_arc(self: std::pin::Pin<Arc<Self>>) -> Result<u32, TestError> {
        self.hit()
    }

    /// An argument the body never names is still the call's until it ends (it was dropped
    /// before the body ran, once it no longer had to be `Clone`).
    #[resilient(provider = "mac-shapes")]
    async fn guarded(&self, _guard: Guard) -> Result<bool, TestError> {
        self.hit().map(|_| GUARD_DROPPED.load(Ordering::SeqCst))
    }
}

macro_rules! plus_one {
    ($x:expr) => {
        $x + 1
    };
}

/// Beside a macro the attribute cannot read (a user's), which could build an argument's name
/// from pieces (seq-macro's `arg~N`, a `paste!` it forwards to), every owned argument is
/// copied: one the body does not use is named `_`, which no macro can name, and needs no
/// `Clone` (the compile error for `_permit: NotClone` here says so).
#[resilient(provider = "mac-shapes")]
async fn unnamed_beside_a_macro(_: NotClone, flaky: &Flaky) -> Result<u32, TestError> {
    flaky.hit().map(|n| plus_one!(n))
}

#[tokio::test(start_paused = true)]
async fn an_argument_named_underscore_beside_a_macro_of_the_user_s_is_not_copied() {
    fast("mac-shapes", 100);
    let flaky = Flaky::new(2);
    assert_eq!(unnamed_beside_a_macro(NotClone, &flaky).await, Ok(4));
    assert_eq!(flaky.calls(), 3);
}

/// `current_call()` answers where the call is polled: a task the body spawns is polled apart
/// (here on the same thread), and gets `None`; the key is passed along instead (README).
#[resilient(provider = "mac-shapes")]
async fn spawns(flaky: &Flaky) -> Result<(bool, bool), TestError> {
    let key = resilience::current_call().map(|c| c.idempotency_key.to_string());
    let seen = tokio::spawn(async { resilience::current_call().is_some() })
        .await
        .unwrap();
    flaky.hit().map(|_| (key.is_some(), seen))
}

#[tokio::test(start_paused = true)]
async fn a_task_the_body_spawns_is_outside_the_call() {
    fast("mac-shapes", 100);
    assert_eq!(spawns(&Flaky::new(0)).await, Ok((true, false)));
}

#[tokio::test(start_paused = true)]
async fn async_trait_arguments_are_made_per_attempt_as_native_ones() {
    fast("mac-shapes", 100);
    assert_eq!(Flaky::new(2).strip("abcdef").await, Ok("bcdef".to_owned()));
    let mut buf = [0u8; 3];
    assert_eq!(Flaky::new(2).fill(&mut buf).await, Ok(3));
    assert_eq!(
        buf,
        [3, 3, 3],
        "each of the three attempts saw the whole buffer"
    );
    assert_eq!(Flaky::new(1).configured(10).await, Ok(12));
    assert_eq!(Flaky::new(1).unnamed(NotClone, NotClone, 10).await, Ok(12));
    let mut flaky = Flaky::new(2);
    assert_eq!(std::pin::Pin::new(&mut flaky).pinned().await, Ok(3));
    let flaky = Flaky::new(1);
    assert_eq!(std::pin::Pin::new(&flaky).pinned_shared().await, Ok(2));
    assert_eq!(Arc::pin(Flaky::new(1)).pinned_arc().await, Ok(2));
    assert_eq!(
        Flaky::new(2).guarded(Guard).await,
        Ok(false),
        "held while it ran"
    );
    assert!(
        GUARD_DROPPED.load(Ordering::SeqCst),
        "and dropped with the call"
    );
}

/// `Send` but not `Sync`, as a `Cell` makes a type.
#[derive(Clone)]
struct Counter {
    flaky: Flaky,
    seen: std::cell::Cell<u32>,
}

impl Counter {
    fn new(fail_first: u32) -> Self {
        Counter {
            flaky: Flaky::new(fail_first),
            seen: std::cell::Cell::new(0),
        }
    }

    /// A pinned `&mut` receiver that the body consumes, as `get_mut` or pin-project's
    /// `project` does: each attempt gets a pin of its own (the second attempt's use of `self`
    /// did not compile: moved by the first).
    #[resilient(provider = "mac-pins")]
    async fn consume_pin(self: std::pin::Pin<&mut Self>) -> Result<u32, TestError> {
        let this = self.get_mut();
        this.seen.set(this.seen.get() + 1);
        tokio::task::yield_now().await;
        this.flaky.hit()
    }

    /// The same with `mut`, reborrowed by the body.
    #[resilient(provider = "mac-pins")]
    async fn reborrow_pin(mut self: std::pin::Pin<&mut Self>) -> Result<u32, TestError> {
        let again = self.as_mut();
        again.get_mut().seen.set(10);
        self.flaky.hit()
    }
}

/// A pinned `&mut` argument, not the receiver: reborrowed per attempt (it had to be `Clone`,
/// which it cannot be).
#[resilient(provider = "mac-pins")]
async fn poll_pinned(
    mut fut: std::pin::Pin<&mut (dyn Future<Output = u32> + Send)>,
    flaky: &Flaky,
) -> Result<u32, TestError> {
    let n = flaky.hit()?;
    Ok(fut.as_mut().await + n)
}

#[async_trait]
trait Owned: Send {
    async fn by_value(self) -> Result<u32, TestError>
    where
        Self: Sized;
    async fn boxed(self: Box<Self>) -> Result<u32, TestError>;
    async fn poll_it(
        flaky: &Flaky,
        fut: std::pin::Pin<&mut (dyn Future<Output = u32> + Send)>,
    ) -> Result<u32, TestError>;
}

#[async_trait]
impl Owned for Counter {
    /// Cloned per attempt before the attempt's block, which owns the copy: made inside it
    /// from `&self`, the block held a `&Counter`, and `#[async_trait]`'s boxed `Send` future
    /// did not compile for a type that is not `Sync`.
    #[resilient(provider = "mac-pins")]
    async fn by_value(self) -> Result<u32, TestError> {
        tokio::task::yield_now().await;
        self.flaky.hit()
    }

    #[resilient(provider = "mac-pins")]
    async fn boxed(self: Box<Self>) -> Result<u32, TestError> {
        tokio::task::yield_now().await;
        self.flaky.hit()
    }

    /// A pinned `&mut` argument that the body consumes (awaits), reborrowed per attempt.
    #[resilient(provider = "mac-pins")]
    async fn poll_it(
        flaky: &Flaky,
        fut: std::pin::Pin<&mut (dyn Future<Output = u32> + Send)>,
    ) -> Result<u32, TestError> {
        let n = flaky.hit()?;
        Ok(fut.await + n)
    }
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[tokio::test(start_paused = true)]
async fn pins_are_reborrowed_per_attempt_and_owned_receivers_stay_send() {
    fast("mac-pins", 100);
    let mut c = Counter::new(2);
    assert_eq!(
        assert_send(std::pin::Pin::new(&mut c).consume_pin()).await,
        Ok(3)
    );
    assert_eq!(c.seen.get(), 3, "every attempt ran on the caller's value");
    let mut c = Counter::new(1);
    assert_eq!(std::pin::Pin::new(&mut c).reborrow_pin().await, Ok(2));
    assert_eq!(c.seen.get(), 10);
    let flaky = Flaky::new(2);
    let mut fut = std::pin::pin!(std::future::ready(5));
    assert_eq!(
        poll_pinned(fut.as_mut(), &flaky).await,
        Ok(5 + 3),
        "the third attempt polls the caller's future"
    );
    assert_eq!(assert_send(Counter::new(1).by_value()).await, Ok(2));
    assert_eq!(Box::new(Counter::new(2)).boxed().await, Ok(3));
    let mut fut = std::pin::pin!(std::future::ready(7));
    let flaky = Flaky::new(1);
    assert_eq!(
        <Counter as Owned>::poll_it(&flaky, fut.as_mut()).await,
        Ok(7 + 2)
    );
}

/// A service shared through `Arc`, whose method hands itself on (to a spawned task, here a
/// function that takes the `Arc`), the reason to take `self: Arc<Self>`: each attempt gets an
/// `Arc` of its own, as an owned argument does, and the future stays `Send`.
struct Shared {
    flaky: Flaky,
}

async fn consume(s: Arc<Shared>) -> Result<u32, TestError> {
    tokio::spawn(async move { s.flaky.hit() }).await.unwrap()
}

impl Shared {
    #[resilient(provider = "mac-arc")]
    async fn hand_on(self: Arc<Self>) -> Result<u32, TestError> {
        consume(self).await
    }

    #[resilient(provider = "mac-arc")]
    async fn hand_on_pinned(self: std::pin::Pin<std::rc::Rc<Self>>) -> Result<u32, TestError> {
        let me: std::pin::Pin<std::rc::Rc<Self>> = self;
        me.flaky.hit()
    }
}

#[tokio::test(start_paused = true)]
async fn an_arc_receiver_moved_in_the_body_is_cloned_per_attempt() {
    fast("mac-arc", 100);
    let s = Arc::new(Shared {
        flaky: Flaky::new(2),
    });
    assert_eq!(assert_send(Arc::clone(&s).hand_on()).await, Ok(3));
    assert_eq!(Arc::strong_count(&s), 1, "every attempt's copy is dropped");
    let pinned = std::rc::Rc::pin(Shared {
        flaky: Flaky::new(1),
    });
    assert_eq!(pinned.clone().hand_on_pinned().await, Ok(2));
}

/// `#[derive(Classify)]`, each kind of variant, under this file's lints.
mod derived {
    use std::borrow::Cow;
    use std::time::Duration;

    use resilience::{Classify, ErrorClass, HttpError, ResilienceError};

    #[derive(Debug, Classify)]
    enum UploadError {
        #[classify(transparent)]
        Http(HttpError),
        #[classify(transparent)]
        Io { source: std::io::Error },
        #[classify(transparent)]
        Resilience(ResilienceError),
        #[classify(transient)]
        Flaky,
        #[classify(throttled)]
        Busy(#[allow(dead_code)] u32),
        #[classify(permanent)]
        TooLarge {
            #[allow(dead_code)]
            bytes: u64,
        },
        /// Fixed classes over an `HttpError`: a retried one waits its `Retry-After`.
        #[classify(throttled)]
        Overloaded(HttpError),
        #[classify(transient)]
        Gateway {
            #[allow(dead_code)]
            status: u16,
            source: HttpError,
        },
        #[classify(permanent)]
        Refused(#[allow(dead_code)] HttpError),
    }

    /// A newtype, and generic wrappers: the derive adds `E: Classify` (and `Box<E>:
    /// Classify`) itself, as thiserror infers its bounds.
    #[derive(Debug, Classify)]
    #[classify(transparent)]
    struct Wrapped(UploadError);

    #[derive(Debug, Classify)]
    enum Either<E> {
        #[classify(transparent)]
        Inner(E),
        #[classify(transparent)]
        Boxed(Box<E>),
        #[classify(permanent)]
        Invalid,
    }

    /// A recursive error: the field naming the enum itself gets no bound (one would
    /// overflow the trait solver), its parameter does.
    #[derive(Debug, Classify)]
    #[allow(dead_code)]
    enum Recursive<E> {
        #[classify(transparent)]
        Inner(E),
        #[classify(transparent)]
        Nested(Box<Recursive<E>>),
        #[classify(transparent)]
        Shared(std::sync::Arc<E>),
    }

    /// A projection is bounded too, and a parameter only in a fixed-class variant is not.
    trait Transport {
        type Error;
    }
    #[derive(Debug, Classify)]
    #[allow(dead_code)]
    enum ByTransport<T: Transport, C> {
        #[classify(transparent)]
        Transport(T::Error),
        #[classify(transparent)]
        Qualified(<T as Transport>::Error),
        #[classify(permanent)]
        Config(C),
        /// A parameter the enum does not bound: no `Retry-After` whatever it is made with.
        #[classify(transient)]
        Unbounded(C),
    }
    struct Http;
    impl Transport for Http {
        type Error = HttpError;
    }
    /// `NotClassify` has no `Classify`, and `ByTransport<Http, NotClassify>` still has.
    #[derive(Debug)]
    struct NotClassify;

    /// Context beside the error, as thiserror's variants carry it: forwarded to the field
    /// marked `#[source]` or `#[from]`, or named `source`.
    #[derive(Debug, thiserror::Error, Classify)]
    enum WithContext {
        #[error("uploading {path}")]
        #[classify(transparent)]
        Named { path: String, source: HttpError },
        #[error("attempt {0}: {2}")]
        #[classify(transparent)]
        Marked(u32, #[source] HttpError, &'static str),
        #[error(transparent)]
        #[classify(transparent)]
        From {
            #[from]
            inner: std::io::Error,
        },
    }

    /// `#[source]` without thiserror's derive, and a field named `r#source`.
    #[derive(Debug, Classify)]
    #[allow(dead_code)]
    enum Plain {
        #[classify(transparent)]
        Marked(u32, #[source] HttpError),
        #[classify(transparent)]
        Raw { path: String, r#source: HttpError },
    }

    /// `retry_after` and `log_summary` go through method lookup (`__private::Forward`), apart
    /// from `classify`'s call by path: each shape of field whose `classify` compiles must take
    /// the forwarding, not the fallback's `None`. Bounds from a `where` and through a
    /// supertrait, trait objects, an alias, a blanket impl over a trait of the user's, a
    /// borrowed field, another crate's type, `Self`, and `crate = …`.
    mod forward_shapes {
        use std::borrow::Cow;
        use std::time::Duration;

        use resilience::{Classify, ErrorClass, HttpError};

        pub trait MyErr: Classify {}
        impl MyErr for HttpError {}

        pub trait Secs {
            fn secs(&self) -> u64;
        }
        impl Secs for u8 {
            fn secs(&self) -> u64 {
                u64::from(*self)
            }
        }
        pub struct Hinted<T>(T);
        impl<T: Secs> Classify for Hinted<T> {
            fn classify(&self) -> ErrorClass {
                ErrorClass::Transient
            }
            fn retry_after(&self) -> Option<Duration> {
                Some(Duration::from_secs(self.0.secs()))
            }
            fn log_summary(&self) -> Option<Cow<'_, str>> {
                Some(Cow::from(format!("retry after {}s", self.0.secs())))
            }
        }

        type Alias = HttpError;

        mod facade {
            pub use resilience::*;
        }

        #[derive(Classify)]
        #[allow(dead_code)]
        pub enum Shapes<'a, E, S, M: MyErr>
        where
            E: Classify,
            S: Secs,
        {
            #[classify(transparent)]
            Where(E),
            #[classify(transparent)]
            Super(M),
            #[classify(transparent)]
            Boxed(Box<dyn Classify + Send>),
            #[classify(transparent)]
            Object(&'a dyn MyErr),
            #[classify(transparent)]
            Aliased(Alias),
            #[classify(transparent)]
            Blanket(Hinted<u8>),
            #[classify(transparent)]
            BlanketGeneric(Hinted<S>),
            #[classify(transparent)]
            Borrowed(&'a E),
            #[classify(transparent)]
            Io(std::io::Error),
            #[classify(transparent)]
            Recursive(Box<Self>),
        }

        #[derive(Classify)]
        #[classify(crate = facade)]
        #[classify(transparent)]
        pub struct ByPath<E>(E);

        #[test]
        fn each_shape_forwards_retry_after_and_log_summary() {
            type Of<'a> = Shapes<'a, HttpError, u8, HttpError>;
            let http = || HttpError::from_header(503, Some("5"));
            let five = Some(Duration::from_secs(5));
            let text = Classify::log_summary(&http()).map(Cow::into_owned);
            let held = http();
            let object = http();
            let shapes: Vec<(&str, Of<'_>)> = vec![
                ("where", Shapes::Where(http())),
                ("supertrait", Shapes::Super(http())),
                ("Box<dyn>", Shapes::Boxed(Box::new(http()))),
                ("&dyn", Shapes::Object(&object)),
                ("alias", Shapes::Aliased(http())),
                ("&E", Shapes::Borrowed(&held)),
                ("io::Error", Shapes::Io(std::io::Error::other(http()))),
                ("Self", Shapes::Recursive(Box::new(Shapes::Where(http())))),
            ];
            for (shape, e) in &shapes {
                assert_eq!(e.retry_after(), five, "{shape}");
                assert_eq!(e.log_summary().map(Cow::into_owned), text, "{shape}");
            }
            for e in [Of::Blanket(Hinted(5)), Of::BlanketGeneric(Hinted(5))] {
                assert_eq!(e.retry_after(), five);
                assert_eq!(e.log_summary().as_deref(), Some("retry after 5s"));
            }
            let by_path = ByPath(http());
            assert_eq!(by_path.retry_after(), five);
            assert_eq!(by_path.log_summary().map(Cow::into_owned), text);
        }
    }

    /// A trait of the user's in scope, with methods named as `Classify`'s (and as the chain
    /// probe's) for every type: the derive's forwarding still calls its own (it was ambiguous,
    /// E0034, and the probe's took the user's `chain_type`).
    mod names_in_scope {
        use std::time::Duration;

        use resilience::{Classify, HttpError};

        #[allow(dead_code)] // In scope only: the derive must not call it.
        pub trait Hints {
            fn retry_after(&self) -> Option<Duration> {
                None
            }
            fn log_summary(&self) -> Option<String> {
                None
            }
            fn chain_type(&self) -> Option<u8> {
                None
            }
        }
        impl<T: ?Sized> Hints for T {}

        #[derive(Debug, thiserror::Error, Classify)]
        pub enum Shadowed {
            #[error(transparent)]
            #[classify(transparent)]
            Http(HttpError),
        }

        #[derive(Debug, Classify)]
        pub enum ShadowedGeneric<E> {
            #[classify(transparent)]
            Inner(E),
        }

        #[test]
        fn forwards_beside_a_trait_of_the_same_method_names() {
            let five = Some(Duration::from_secs(5));
            let e = Shadowed::Http(HttpError::from_header(503, Some("5")));
            assert_eq!(Classify::retry_after(&e), five);
            assert_eq!(
                Classify::log_summary(&e),
                Classify::log_summary(&HttpError::from_header(503, Some("5")))
            );
            let e = ShadowedGeneric::Inner(HttpError::from_header(503, Some("5")));
            assert_eq!(Classify::retry_after(&e), five);
            assert!(Classify::log_summary(&e).is_some());
        }
    }

    /// `log` after a fixed class: the value's `Display` text is its log text.
    #[derive(Debug, thiserror::Error, Classify)]
    enum Logged {
        #[error("file too large: {bytes} bytes")]
        #[classify(permanent, log)]
        TooLarge { bytes: u64 },
        #[error("busy")]
        #[classify(throttled, log)]
        Busy,
        #[error("quiet {0}")]
        #[classify(transient)]
        Quiet(#[allow(dead_code)] u32),
    }

    /// On a struct too, and through a `Display` of its own.
    #[derive(Debug, Classify)]
    #[classify(transient, log)]
    struct Flaky;

    impl std::fmt::Display for Flaky {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("flaky, see https://user:secret@example.com/x?token=1")
        }
    }

    #[test]
    fn a_fixed_class_with_log_logs_its_text() {
        let large = Logged::TooLarge { bytes: 5 };
        assert_eq!(large.classify(), ErrorClass::Permanent);
        assert_eq!(
            large.log_summary(),
            Some(Cow::from("file too large: 5 bytes"))
        );
        assert_eq!(Logged::Busy.log_summary(), Some(Cow::from("busy")));
        assert_eq!(
            Logged::Busy.classify(),
            ErrorClass::Throttled { retry_after: None }
        );
        assert_eq!(Logged::Quiet(1).log_summary(), None, "no `log`: no text");
        // The text as it is: the runtime redacts every summary when it logs it.
        assert_eq!(Flaky.classify(), ErrorClass::Transient);
        assert_eq!(
            Flaky.log_summary().as_deref(),
            Some("flaky, see https://user:secret@example.com/x?token=1")
        );
    }

    /// `log` on a generic enum whose `Display` is thiserror's, which holds only where the
    /// parameter is `Display` (no bound of the user's own), and on one that borrows.
    #[derive(Debug, thiserror::Error, Classify)]
    enum LoggedGeneric<E: std::fmt::Debug> {
        #[error("rejected: {0}")]
        #[classify(permanent, log)]
        Rejected(E),
    }

    #[derive(Debug, thiserror::Error, Classify)]
    enum LoggedBorrow<'a> {
        #[error("rejected: {0}")]
        #[classify(permanent, log)]
        Rejected(&'a str),
    }

    #[test]
    fn log_works_with_generics_and_borrows() {
        assert_eq!(
            LoggedGeneric::Rejected(7u8).log_summary().as_deref(),
            Some("rejected: 7")
        );
        let text = String::from("quota");
        assert_eq!(
            LoggedBorrow::Rejected(&text).log_summary().as_deref(),
            Some("rejected: quota")
        );
    }

    /// No variants: nothing to classify, and it still implements the trait (a generic's
    /// argument for "cannot fail").
    #[derive(Debug, Classify)]
    enum Never {}

    #[test]
    fn a_transparent_variant_forwards_to_its_error_beside_context() {
        let named = WithContext::Named {
            path: "a.txt".into(),
            source: HttpError::from_header(503, Some("3")),
        };
        assert_eq!(named.retry_after(), Some(Duration::from_secs(3)));
        let marked = WithContext::Marked(7, HttpError::new(429, None), "ctx");
        assert_eq!(
            marked.classify(),
            ErrorClass::Throttled { retry_after: None }
        );
        let from = WithContext::from(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(from.classify(), ErrorClass::Permanent);
        assert_eq!(named.to_string(), "uploading a.txt");
        let raw = Plain::Raw {
            path: String::new(),
            r#source: HttpError::new(429, None),
        };
        assert_eq!(raw.classify(), ErrorClass::Throttled { retry_after: None });
        let marked = Plain::Marked(1, HttpError::new(503, None));
        assert_eq!(marked.classify(), ErrorClass::Transient);
        fn classifies<E: Classify>() {}
        classifies::<Never>();
        classifies::<&HttpError>();
    }

    #[test]
    fn each_variant_has_its_class_retry_after_and_text() {
        let busy = UploadError::Http(HttpError::from_header(503, Some("2")));
        assert_eq!(busy.classify(), ErrorClass::Transient);
        assert_eq!(busy.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(
            busy.log_summary(),
            Some(Cow::from("HTTP 503 (retry after 2s)"))
        );
        let reset = UploadError::Io {
            source: std::io::ErrorKind::ConnectionReset.into(),
        };
        assert_eq!(reset.classify(), ErrorClass::Transient);
        let open = UploadError::Resilience(ResilienceError::CircuitOpen {
            provider: "p",
            retry_in: None,
        });
        assert_eq!(open.classify(), ErrorClass::Permanent);
        assert_eq!(UploadError::Flaky.classify(), ErrorClass::Transient);
        assert_eq!(
            UploadError::Busy(1).classify(),
            ErrorClass::Throttled { retry_after: None }
        );
        let large = UploadError::TooLarge { bytes: 1 };
        assert_eq!(large.classify(), ErrorClass::Permanent);
        assert_eq!((large.retry_after(), large.log_summary()), (None, None));
        let overloaded = UploadError::Overloaded(HttpError::from_header(529, Some("3")));
        assert_eq!(
            overloaded.classify(),
            ErrorClass::Throttled { retry_after: None }
        );
        assert_eq!(overloaded.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(overloaded.log_summary(), None);
        let gateway = UploadError::Gateway {
            status: 520,
            source: HttpError::from_header(520, Some("4")),
        };
        assert_eq!(gateway.classify(), ErrorClass::Transient);
        assert_eq!(gateway.retry_after(), Some(Duration::from_secs(4)));
        let refused = UploadError::Refused(HttpError::from_header(503, Some("5")));
        assert_eq!(refused.classify(), ErrorClass::Permanent);
        assert_eq!(refused.retry_after(), None);
        assert_eq!(UploadError::Busy(9).retry_after(), None);
        let unbounded =
            ByTransport::<Http, HttpError>::Unbounded(HttpError::from_header(503, Some("6")));
        assert_eq!(unbounded.classify(), ErrorClass::Transient);
        assert_eq!(unbounded.retry_after(), None);
        let wrapped = Wrapped(busy);
        assert_eq!(wrapped.retry_after(), Some(Duration::from_secs(2)));
        let inner: Either<HttpError> = Either::Inner(HttpError::new(429, None));
        assert_eq!(
            inner.classify(),
            ErrorClass::Throttled { retry_after: None }
        );
        assert_eq!(
            Either::<HttpError>::Invalid.classify(),
            ErrorClass::Permanent
        );
        let boxed = Either::Boxed(Box::new(HttpError::from_header(503, Some("4"))));
        assert_eq!(boxed.retry_after(), Some(Duration::from_secs(4)));
        let transport = ByTransport::<Http, NotClassify>::Transport(HttpError::new(503, None));
        assert_eq!(transport.classify(), ErrorClass::Transient);
        let config = ByTransport::<Http, NotClassify>::Config(NotClassify);
        assert_eq!(config.classify(), ErrorClass::Permanent);
        let nested = Recursive::Nested(Box::new(Recursive::Inner(HttpError::new(429, None))));
        assert_eq!(
            nested.classify(),
            ErrorClass::Throttled { retry_after: None }
        );
        // `retry_after` and `log_summary` are forwarded apart from `classify` (one check per
        // field, `__private::Forward`): through a field with no bound of its own, a
        // projection and a pointer too.
        let nested = Recursive::Nested(Box::new(Recursive::Inner(HttpError::from_header(
            503,
            Some("5"),
        ))));
        assert_eq!(nested.retry_after(), Some(Duration::from_secs(5)));
        let shared = Recursive::Shared(std::sync::Arc::new(HttpError::from_header(503, Some("6"))));
        assert_eq!(shared.retry_after(), Some(Duration::from_secs(6)));
        let transport =
            ByTransport::<Http, NotClassify>::Qualified(HttpError::from_header(503, Some("7")));
        assert_eq!(transport.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            transport.log_summary(),
            HttpError::from_header(503, Some("7")).log_summary()
        );
    }

    // A fixed class forwards its field's `Retry-After` only where that cannot stop a build
    // that compiled before it forwarded anything (helper-224's review): these three failed
    // to compile (E0793, E0521) with the forwarding.
    /// A packed struct: a reference to its field may be unaligned.
    #[derive(Debug, Clone, Copy, Classify)]
    #[classify(transient)]
    #[repr(C, packed)]
    struct PackedTimeout(u32);

    /// A type whose `Classify` holds for one lifetime only.
    #[derive(Debug)]
    struct Borrowed<'a>(#[allow(dead_code)] &'a str);
    impl Classify for Borrowed<'static> {
        fn classify(&self) -> ErrorClass {
            ErrorClass::Transient
        }
        fn retry_after(&self) -> Option<Duration> {
            Some(Duration::from_secs(1))
        }
    }
    /// `impl Classify for dyn Local` is for `dyn Local + 'static`.
    trait Local: std::fmt::Debug {}
    impl Local for HttpError {}
    impl Classify for dyn Local {
        fn classify(&self) -> ErrorClass {
            ErrorClass::Transient
        }
    }
    #[derive(Debug, Classify)]
    #[allow(dead_code)] // the fields not forwarded to are never read
    enum Lifetimes<'a> {
        #[classify(transient)]
        Borrowed(Borrowed<'a>),
        #[classify(throttled)]
        Object(&'a dyn Local),
        #[classify(throttled)]
        Boxed(Box<dyn Local + 'a>),
        /// A reference's own lifetime is no obstacle: `&E` is `Classify` for every one.
        #[classify(throttled)]
        Shared(&'a HttpError),
    }

    /// A wrapper whose `Classify` asks more of its parameter than the enum proves (`'static`):
    /// a field that names a type parameter is not read.
    #[derive(Debug)]
    struct Wrap<T>(T);
    impl<T: Classify + 'static> Classify for Wrap<T> {
        fn classify(&self) -> ErrorClass {
            self.0.classify()
        }
        fn retry_after(&self) -> Option<Duration> {
            self.0.retry_after()
        }
    }
    #[derive(Debug, Classify)]
    #[allow(dead_code)] // the fields not forwarded to are never read
    enum Generic<T: Classify> {
        #[classify(transient)]
        Wrapped(Wrap<T>),
        #[classify(throttled)]
        Bare(T),
    }

    #[test]
    fn a_fixed_class_forwards_where_it_compiled_before() {
        let t = PackedTimeout(3);
        assert_eq!(
            (t.classify(), t.retry_after()),
            (ErrorClass::Transient, None)
        );
        let b = Lifetimes::Borrowed(Borrowed("x"));
        assert_eq!(
            (b.classify(), b.retry_after()),
            (ErrorClass::Transient, None)
        );
        let http = HttpError::from_header(429, Some("4"));
        assert_eq!(Lifetimes::Object(&http).retry_after(), None);
        assert_eq!(Lifetimes::Boxed(Box::new(http.clone())).retry_after(), None);
        let shared = Lifetimes::Shared(&http);
        assert!(matches!(shared.classify(), ErrorClass::Throttled { .. }));
        assert_eq!(shared.retry_after(), Some(Duration::from_secs(4)));
        let wrapped = Generic::Wrapped(Wrap(http.clone()));
        assert_eq!(
            (wrapped.classify(), wrapped.retry_after()),
            (ErrorClass::Transient, None)
        );
        assert_eq!(Generic::Bare(http.clone()).retry_after(), None);
    }
}

/// A method whose result is large: its future should not hold that result, since nothing of
/// an attempt's result needs to outlive the attempt (a retry makes a new one).
#[resilient(provider = "mac-future-size")]
async fn large_result() -> Result<[u8; 4096], std::io::Error> {
    Ok([7; 4096])
}

#[async_trait]
trait Large {
    async fn large(&self) -> Result<[u8; 4096], std::io::Error>;
}

struct LargeProvider;

#[async_trait]
impl Large for LargeProvider {
    #[resilient(provider = "mac-future-size")]
    async fn large(&self) -> Result<[u8; 4096], std::io::Error> {
        Ok([8; 4096])
    }
}

static LARGE: resilience::CallSite = resilience::CallSite::new("mac-future-size", "large");

#[tokio::test(start_paused = true)]
async fn a_methods_result_is_not_kept_in_its_future() {
    fast("mac-future-size", 100);
    // The caller's future keeps, across the backoff's `.await`, only what the loop needs, not
    // the step that carries the method's result (4 KiB here; with drop glue, as the
    // `io::Error` gives it). Kept there, as it was until the backoff's `.await` moved out of
    // the step's `match`, it made these futures 4,280, 4,288 and 16,576 bytes; in a debug
    // build they are under 200 bytes now.
    let native = large_result();
    let boxed = LargeProvider.large();
    let executed = LARGE.execute(|| async { Ok::<_, std::io::Error>([9; 4096]) });
    let sizes = [
        size_of_val(&native),
        size_of_val(&*boxed),
        size_of_val(&executed),
    ];
    assert!(
        sizes.iter().all(|&s| s < 4096),
        "futures of the native method, the async_trait method and execute: {sizes:?} bytes"
    );
    assert_eq!(native.await.unwrap()[4095], 7);
    assert_eq!(boxed.await.unwrap()[4095], 8);
    assert_eq!(executed.await.unwrap()[4095], 9);
}

/// A body that fails once and only borrows its copy of an argument.
#[resilient(provider = "mac-arg-copies")]
async fn borrows_its_copy(token: Arc<()>, flaky: &Flaky) -> Result<u32, TestError> {
    let _seen = &token;
    flaky.hit()
}

#[tokio::test(start_paused = true)]
async fn an_attempts_copies_of_the_arguments_are_gone_in_its_backoff() {
    fast("mac-arg-copies", 100);
    let (token, flaky) = (Arc::new(()), Flaky::new(1));
    let mut call = std::pin::pin!(borrows_its_copy(Arc::clone(&token), &flaky));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(
        call.as_mut().poll(&mut cx).is_pending(),
        "sleeping after the first attempt's failure"
    );
    assert_eq!(flaky.calls(), 1);
    // Ours and the call's (the argument, kept for the next attempt's copy): the first
    // attempt's copy, moved into its block, went with it, and is not kept through the
    // backoff (an upload's body, copied per attempt, is not held twice while it sleeps).
    assert_eq!(Arc::strong_count(&token), 2);
    assert_eq!(call.await, Ok(2));
    assert_eq!(Arc::strong_count(&token), 1);
}

#[derive(Clone)]
struct Wrapped(String);

/// `ref mut` bindings in argument patterns: each attempt changes its own copy, so the second
/// attempt sees the value as given (they did not compile: the copy was not a `mut` place).
#[resilient(provider = "mac-ref-mut")]
async fn ref_mut_patterns(
    ref mut s: String,
    (ref mut t, n): (String, u8),
    Wrapped(ref mut w): Wrapped,
    flaky: &Flaky,
) -> Result<String, TestError> {
    s.push('!');
    t.push('?');
    w.push('#');
    flaky.hit()?;
    Ok(format!("{s}{t}{n}{w}"))
}

/// `ref mut` on a shared reference: each attempt its own copy of the reference.
#[resilient(provider = "mac-ref-mut")]
async fn ref_mut_shared(ref mut r: &str) -> Result<usize, TestError> {
    *r = &r[1..];
    Ok(r.len())
}

/// A named lifetime on a `&mut` and on a shared input: the value may come from either, and
/// rustc alone can tell (this one comes from the shared one, and compiles).
#[resilient(provider = "mac-ref-mut")]
async fn from_the_shared_one<'a>(
    scratch: &'a mut Vec<u8>,
    input: &'a str,
) -> Result<&'a str, TestError> {
    scratch.push(1);
    Ok(input)
}

/// An arena's `&'b mut` from a shared input, beside `&mut self`: not the reborrow's.
struct Reborrowing(u8);

impl Reborrowing {
    #[resilient(provider = "mac-ref-mut")]
    async fn leaked_beside<'b>(
        &mut self,
        arena: &'b std::cell::RefCell<Vec<u8>>,
    ) -> Result<&'b mut u8, TestError> {
        self.0 += 1;
        Ok(Box::leak(Box::new(arena.borrow()[0] + self.0)))
    }
}

/// Borrows that are not the reborrow's, which the check must let through (each was refused
/// by its first version, helper-96): a lifetime inside the type a `&mut` points to (a parser's
/// cursor), one a bound says another input's outlives, one a `where` bound names.
#[resilient(provider = "mac-ref-mut")]
async fn cursor<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], TestError> {
    let (head, tail) = input.split_at(1);
    *input = tail;
    Ok(head)
}

impl Reborrowing {
    #[resilient(provider = "mac-ref-mut")]
    async fn outlived<'a, 'b: 'a>(&'a mut self, x: &'b str) -> Result<&'a str, TestError> {
        self.0 += 1;
        Ok(x)
    }
}

/// The same lifetime inside an `impl Trait` or `fn` argument: a value of it may come from there.
#[resilient(provider = "mac-ref-mut")]
async fn from_impl<'a>(
    buf: &'a mut Vec<u8>,
    t: impl Into<&'a str> + Clone,
    f: fn() -> &'a str,
) -> Result<(&'a str, &'a str), TestError> {
    buf.push(1);
    Ok((t.into(), f()))
}

#[resilient(provider = "mac-ref-mut")]
async fn bounded<'a, T>(buf: &'a mut Vec<u8>, t: T) -> Result<&'a str, TestError>
where
    T: Into<&'a str> + Clone,
{
    buf.push(1);
    Ok(t.into())
}

/// Patterns of one name on a shared reference, and with bindings after `@` the body uses
/// instead of the name: the parameter takes the name (rustdoc shows it), and each attempt
/// still binds the pattern (`a`, `y` and `x` were not found: the parameter was taken for a
/// plain `x: T`, which is never bound again).
#[resilient(provider = "mac-one-name")]
#[allow(unused_variables, clippy::needless_borrow)]
async fn one_name_patterns(
    ref r: &str,
    x @ (a, _): (u8, u8),
    s @ t: &str,
    flaky: &Flaky,
) -> Result<usize, TestError> {
    flaky.hit()?;
    Ok(r.len() + usize::from(a) + t.len())
}

#[resilient(provider = "mac-ref-mut", retry = false)]
async fn ref_mut_once(ref mut s: String) -> Result<String, TestError> {
    s.push('!');
    Ok(s.clone())
}

/// A `&mut` return that no argument lends (a leak, an arena's) needs no per-attempt
/// reborrow, and retries: it was refused as if it came through a `&mut` argument.
#[resilient(provider = "mac-ref-mut")]
async fn leaked<'a>(n: usize, flaky: &Flaky) -> Result<&'a mut [u8], TestError> {
    flaky.hit()?;
    Ok(vec![7; n].leak())
}

#[tokio::test(start_paused = true)]
async fn ref_mut_patterns_and_an_unlent_mut_return_retry() {
    fast("mac-ref-mut", 100);
    let flaky = Flaky::new(1);
    let out = ref_mut_patterns("s".into(), ("t".into(), 1), Wrapped("w".into()), &flaky).await;
    assert_eq!(out, Ok("s!t?1w#".to_owned()));
    assert_eq!(
        flaky.calls(),
        2,
        "the first attempt failed, the second saw the originals"
    );
    assert_eq!(ref_mut_once("o".into()).await, Ok("o!".to_owned()));
    let flaky = Flaky::new(1);
    let leak = leaked(3, &flaky).await.unwrap();
    leak[0] = 1;
    assert_eq!((&*leak, flaky.calls()), (&[1, 7, 7][..], 2));
    assert_eq!(ref_mut_shared("abc").await, Ok(2));
    fast("mac-one-name", 100);
    let flaky = Flaky::new(1);
    assert_eq!(
        one_name_patterns("ab", (3, 4), "cde", &flaky).await,
        Ok(2 + 3 + 3)
    );
    assert_eq!(flaky.calls(), 2);
    let mut scratch = Vec::new();
    assert_eq!(from_the_shared_one(&mut scratch, "in").await, Ok("in"));
    let arena = std::cell::RefCell::new(vec![40]);
    assert_eq!(*Reborrowing(1).leaked_beside(&arena).await.unwrap(), 42);
    let mut input: &[u8] = b"xyz";
    assert_eq!(cursor(&mut input).await, Ok(&b"x"[..]));
    assert_eq!(input, b"yz");
    assert_eq!(Reborrowing(0).outlived("o").await, Ok("o"));
    assert_eq!(bounded(&mut Vec::new(), "b").await, Ok("b"));
    assert_eq!(
        from_impl(&mut Vec::new(), "i", || "f").await,
        Ok(("i", "f"))
    );
}

/// Items first in a body, where clippy's `items_after_statements` (pedantic, denied here)
/// looks: the body is a block of its own, so they are not after the expansion's statements
/// (from helper-103's review, it fired on any `use` or `const` first in a body).
#[deny(clippy::items_after_statements)]
#[resilient(provider = "macro-items-first")]
async fn items_first(n: u32) -> Result<u32, TestError> {
    use std::ops::Mul;
    const K: u32 = 2;
    fn helper(x: u32) -> u32 {
        x.mul(K)
    }
    Ok(helper(n))
}

#[tokio::test]
async fn items_may_come_first_in_a_body() {
    assert_eq!(items_first(3).await.unwrap(), 6);
}

/// A batch a caller fills, taken as `&mut`.
struct Batch(Vec<u32>);

#[async_trait]
trait Batcher {
    async fn push_one(&self, batch: &mut Batch, flaky: &Flaky) -> Result<usize, TestError>;
}

#[async_trait]
impl Batcher for Native {
    /// A pattern on a `&mut` argument, which async-trait leaves in the signature: each attempt
    /// binds it to a reborrow of its own, as the native path does. Left as it was, the body's
    /// move of `items` (into the `async move` block) did not compile: "value moved here, in
    /// previous iteration of loop", at the attribute. The `skip` names the binding, as
    /// tracing allows without the attribute.
    #[resilient(provider = "mac-trait-pattern")]
    #[tracing::instrument(skip(self, items, flaky))]
    async fn push_one(&self, Batch(items): &mut Batch, flaky: &Flaky) -> Result<usize, TestError> {
        let n = flaky.hit()?;
        let items = async move {
            items.push(n);
            items
        }
        .await;
        Ok(items.len())
    }
}

#[tokio::test(start_paused = true)]
async fn an_async_trait_pattern_on_a_mut_reference_is_bound_per_attempt() {
    fast("mac-trait-pattern", 100);
    let native = Native {
        flaky: Flaky::new(0),
    };
    let mut batch = Batch(Vec::new());
    let flaky = Flaky::new(2);
    assert_eq!(
        assert_send(native.push_one(&mut batch, &flaky)).await,
        Ok(1)
    );
    assert_eq!(
        batch.0,
        [3],
        "the third attempt pushed into the caller's batch"
    );
}

/// A default body in an `#[async_trait]` trait, which async-trait rewrites as it does an
/// impl's method: retried, its `&mut self` reborrowed per attempt, and its boxed future `Send`.
#[async_trait]
trait Counted: Send {
    fn flaky(&self) -> &Flaky;
    fn bump(&mut self);

    #[resilient(provider = "mac-trait-default")]
    async fn counted(&mut self) -> Result<u32, TestError> {
        self.bump();
        self.flaky().hit()
    }
}

impl Counted for Boxed {
    fn flaky(&self) -> &Flaky {
        &self.flaky
    }
    fn bump(&mut self) {
        self.renames += 1;
    }
}

#[tokio::test(start_paused = true)]
async fn an_async_trait_default_body_is_retried() {
    fast("mac-trait-default", 100);
    let mut b = Boxed {
        flaky: Flaky::new(2),
        renames: 0,
    };
    assert_eq!(assert_send(b.counted()).await, Ok(3));
    assert_eq!(b.renames, 3, "each attempt ran on the caller's value");
}

/// Not `Clone`; counts its drops.
struct Ticket(Arc<AtomicU32>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
trait Redeem {
    async fn redeem(self, flaky: &Flaky) -> Result<u32, TestError>
    where
        Self: Sized;
}

#[async_trait]
impl Redeem for Ticket {
    /// A receiver taken by value that the body never names is not copied, as such an argument
    /// is not, so its type need not be `Clone` (it had to be, in an `#[async_trait]` impl
    /// alone).
    #[resilient(provider = "mac-unnamed-self")]
    async fn redeem(self, flaky: &Flaky) -> Result<u32, TestError> {
        flaky.hit()
    }
}

#[tokio::test(start_paused = true)]
async fn an_async_trait_receiver_the_body_never_names_is_not_cloned() {
    fast("mac-unnamed-self", 100);
    let drops = Arc::new(AtomicU32::new(0));
    let flaky = Flaky::new(2);
    assert_eq!(
        assert_send(Ticket(Arc::clone(&drops)).redeem(&flaky)).await,
        Ok(3)
    );
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the caller's value, once");
}

#[async_trait]
trait Refill {
    async fn refill(&self, pair: &mut (Vec<u32>, u32), flaky: &Flaky) -> Result<usize, TestError>;
}

/// A pattern on a `&mut` whose type a `macro_rules!` fragment gives: async-trait does not read
/// `$t:ty` as a reference, names the argument `__arg1` and binds the pattern from it in the
/// body (`let (items, n) = { let __arg1 = __arg1; __arg1 };`), which each attempt ran, moving
/// the caller's `&mut`: "value moved here, in previous iteration of loop", whatever the body
/// did, where the native path compiles.
macro_rules! refill_impl {
    ($t:ty) => {
        #[async_trait]
        impl Refill for Native {
            #[resilient(provider = "mac-trait-fragment")]
            async fn refill(&self, (items, n): $t, flaky: &Flaky) -> Result<usize, TestError> {
                *n += 1;
                let items = async move {
                    items.push(*n);
                    items
                }
                .await;
                flaky.hit()?;
                Ok(items.len())
            }
        }
    };
}
refill_impl!(&mut (Vec<u32>, u32));

#[tokio::test(start_paused = true)]
async fn an_async_trait_pattern_on_a_mut_reference_from_a_fragment_is_reborrowed() {
    fast("mac-trait-fragment", 100);
    let native = Native {
        flaky: Flaky::new(0),
    };
    let mut pair = (Vec::new(), 0);
    let flaky = Flaky::new(2);
    assert_eq!(assert_send(native.refill(&mut pair, &flaky)).await, Ok(3));
    assert_eq!(
        pair,
        (vec![1, 2, 3], 3),
        "each attempt on the caller's pair"
    );
}

/// Who dropped, in order.
type DropLog = Arc<std::sync::Mutex<Vec<&'static str>>>;

/// The drops logged so far, taken out: the callers' values only, as each attempt's copy (logged
/// `copy`) drops with its attempt.
fn callers_drops(log: &DropLog) -> Vec<&'static str> {
    std::mem::take(&mut *log.lock().unwrap())
        .into_iter()
        .filter(|n| *n != "copy")
        .collect()
}

/// Not `Clone`; logs its drop.
struct Logged(&'static str, DropLog);

impl Drop for Logged {
    fn drop(&mut self) {
        self.1.lock().unwrap().push(self.0);
    }
}

#[async_trait]
trait Consume {
    async fn plain(self, guard: Logged, flaky: &Flaky) -> Result<u32, TestError>
    where
        Self: Sized;
    async fn retried(self, guard: Logged, flaky: &Flaky) -> Result<u32, TestError>
    where
        Self: Sized;
}

#[async_trait]
impl Consume for Logged {
    async fn plain(self, _guard: Logged, flaky: &Flaky) -> Result<u32, TestError> {
        flaky.hit()
    }

    /// A receiver and an argument the body never names, each moved once, before the
    /// attempts: the argument drops before the receiver, as without the attribute (the
    /// receiver's move went after the arguments', and it dropped first).
    #[resilient(provider = "mac-unnamed-order")]
    async fn retried(self, _guard: Logged, flaky: &Flaky) -> Result<u32, TestError> {
        flaky.hit()
    }
}

#[tokio::test(start_paused = true)]
async fn an_unnamed_receiver_and_argument_drop_in_the_order_they_would_without_us() {
    fast("mac-unnamed-order", 100);
    let log = DropLog::default();
    let without = Logged("self", Arc::clone(&log))
        .plain(Logged("argument", Arc::clone(&log)), &Flaky::new(0))
        .await;
    assert_eq!(without, Ok(1));
    let expected = std::mem::take(&mut *log.lock().unwrap());
    let with = Logged("self", Arc::clone(&log))
        .retried(Logged("argument", Arc::clone(&log)), &Flaky::new(1))
        .await;
    assert_eq!(with, Ok(2));
    assert_eq!(*log.lock().unwrap(), expected);
}

/// Logs its drop; a clone logs as `"copy"`.
struct Copied(&'static str, DropLog);

impl Clone for Copied {
    fn clone(&self) -> Self {
        Copied("copy", Arc::clone(&self.1))
    }
}

impl Drop for Copied {
    fn drop(&mut self) {
        self.1.lock().unwrap().push(self.0);
    }
}

#[async_trait]
trait Order {
    async fn plain(&self, a: Logged, b: Copied, flaky: &Flaky) -> Result<u32, TestError>;
    async fn retried(&self, a: Logged, b: Copied, flaky: &Flaky) -> Result<u32, TestError>;
    async fn plain_owned(self, a: Logged, b: Copied, flaky: &Flaky) -> Result<u32, TestError>
    where
        Self: Sized;
    async fn retried_owned(self, a: Logged, b: Copied, flaky: &Flaky) -> Result<u32, TestError>
    where
        Self: Sized;
    async fn plain_named(self, a: Logged, b: Copied, flaky: &Flaky) -> Result<u32, TestError>
    where
        Self: Sized;
    async fn retried_named(self, a: Logged, b: Copied, flaky: &Flaky) -> Result<u32, TestError>
    where
        Self: Sized;
}

#[async_trait]
impl Order for Copied {
    async fn plain(&self, _a: Logged, b: Copied, flaky: &Flaky) -> Result<u32, TestError> {
        let _ = &b;
        flaky.hit()
    }

    /// `_a` is never named, and moved once, before the attempts; `b` is, and copied per
    /// attempt: its original was left to the `async move` block, and dropped after `_a`
    /// (and after the receiver), where without the attribute `b` drops first.
    #[resilient(provider = "mac-order-named")]
    async fn retried(&self, _a: Logged, b: Copied, flaky: &Flaky) -> Result<u32, TestError> {
        let _ = &b;
        flaky.hit()
    }

    async fn plain_owned(self, _a: Logged, b: Copied, flaky: &Flaky) -> Result<u32, TestError> {
        let _ = &b;
        flaky.hit()
    }

    #[resilient(provider = "mac-order-named")]
    async fn retried_owned(self, _a: Logged, b: Copied, flaky: &Flaky) -> Result<u32, TestError> {
        let _ = &b;
        flaky.hit()
    }

    async fn plain_named(self, _a: Logged, b: Copied, flaky: &Flaky) -> Result<u32, TestError> {
        let _ = (&self, &b);
        flaky.hit()
    }

    /// A receiver the body names is copied per attempt too; the caller's stays the block's,
    /// and drops last, as the first parameter does without the attribute.
    #[resilient(provider = "mac-order-named")]
    async fn retried_named(self, _a: Logged, b: Copied, flaky: &Flaky) -> Result<u32, TestError> {
        let _ = (&self, &b);
        flaky.hit()
    }
}

#[tokio::test(start_paused = true)]
async fn a_named_argument_drops_in_its_place_among_unnamed_ones() {
    fast("mac-order-named", 100);
    let log = DropLog::default();
    let l = || Arc::clone(&log);
    let take = || callers_drops(&log);
    let (ok, flaky) = (Flaky::new(0), Flaky::new(1));
    let me = Copied("self", l());
    let without = me.plain(Logged("a", l()), Copied("b", l()), &ok);
    assert_eq!(without.await, Ok(1));
    let expected = take();
    let with = me.retried(Logged("a", l()), Copied("b", l()), &flaky);
    assert_eq!(with.await, Ok(2));
    assert_eq!(take(), expected);
    drop(me);
    take();
    let (ok, flaky) = (Flaky::new(0), Flaky::new(1));
    let without = Copied("self", l()).plain_owned(Logged("a", l()), Copied("b", l()), &ok);
    assert_eq!(without.await, Ok(1));
    let expected = take();
    let with = Copied("self", l()).retried_owned(Logged("a", l()), Copied("b", l()), &flaky);
    assert_eq!(with.await, Ok(2));
    assert_eq!(take(), expected, "the receiver last");
    let (ok, flaky) = (Flaky::new(0), Flaky::new(1));
    let without = Copied("self", l()).plain_named(Logged("a", l()), Copied("b", l()), &ok);
    assert_eq!(without.await, Ok(1));
    let expected = take();
    let with = Copied("self", l()).retried_named(Logged("a", l()), Copied("b", l()), &flaky);
    assert_eq!(with.await, Ok(2));
    assert_eq!(take(), expected, "the receiver last");
}

/// Native methods, without and with the attribute, whose argument and receiver log their
/// drops.
impl Copied {
    async fn native_plain_mut(mut self, a: Copied, flaky: &Flaky) -> Result<u32, TestError> {
        self.0 = "self";
        let _ = &a;
        flaky.hit()
    }

    /// A `mut self` cloned per attempt: the caller's used to be moved into a local of the
    /// expansion, which dropped before the arguments, where the first parameter drops last.
    #[resilient(provider = "mac-order-once")]
    async fn native_retried_mut(mut self, a: Copied, flaky: &Flaky) -> Result<u32, TestError> {
        self.0 = "self";
        let _ = &a;
        flaky.hit()
    }

    async fn native_plain_arc(self: Arc<Self>, a: Copied, flaky: &Flaky) -> Result<u32, TestError> {
        let _ = (&self, &a);
        flaky.hit()
    }

    /// The same for a `self: Arc<Self>` (its last count).
    #[resilient(provider = "mac-order-once")]
    async fn native_retried_arc(
        self: Arc<Self>,
        a: Copied,
        flaky: &Flaky,
    ) -> Result<u32, TestError> {
        let _ = (&self, &a);
        flaky.hit()
    }
}

#[tokio::test(start_paused = true)]
async fn a_native_receiver_cloned_per_attempt_drops_after_the_arguments() {
    fast("mac-order-once", 100);
    let log = DropLog::default();
    let l = || Arc::clone(&log);
    let take = || callers_drops(&log);
    let ok = Flaky::new(0);
    let without = Copied("caller", l()).native_plain_mut(Copied("a", l()), &ok);
    assert_eq!(without.await, Ok(1));
    let expected = take();
    assert_eq!(expected, ["a", "self"]);
    let flaky = Flaky::new(1);
    let with = Copied("caller", l()).native_retried_mut(Copied("a", l()), &flaky);
    assert_eq!(with.await, Ok(2));
    // Each attempt's copy drops as `self`, the caller's value as `caller`.
    assert_eq!(take(), ["self", "self", "a", "caller"], "the receiver last");

    let ok = Flaky::new(0);
    let without = Arc::new(Copied("self", l())).native_plain_arc(Copied("a", l()), &ok);
    assert_eq!(without.await, Ok(1));
    let expected = take();
    let flaky = Flaky::new(1);
    let with = Arc::new(Copied("self", l())).native_retried_arc(Copied("a", l()), &flaky);
    assert_eq!(with.await, Ok(2));
    assert_eq!(take(), expected, "the receiver last");
}

/// A large owned argument, held across an `.await` by the body, or never named.
#[derive(Clone)]
struct Bulky([u8; 8192]);

async fn large_plain(large: Bulky, flaky: &Flaky) -> Result<u32, TestError> {
    tokio::task::yield_now().await;
    flaky.hit().map(|n| n + u32::from(large.0[0]))
}

#[resilient(provider = "mac-large-once", retry = false)]
async fn large_once(large: Bulky, flaky: &Flaky) -> Result<u32, TestError> {
    tokio::task::yield_now().await;
    flaky.hit().map(|n| n + u32::from(large.0[0]))
}

async fn large_unnamed_plain(_: Bulky, flaky: &Flaky) -> Result<u32, TestError> {
    tokio::task::yield_now().await;
    flaky.hit()
}

#[resilient(provider = "mac-large-once", retry = false)]
async fn large_unnamed_once(_: Bulky, flaky: &Flaky) -> Result<u32, TestError> {
    tokio::task::yield_now().await;
    flaky.hit()
}

/// With one attempt, an owned argument is kept once in the call's future. Moved into the
/// attempt's block under a name of ours and bound again there, in declaration order (so that
/// the arguments dropped as without the attribute), it took its size twice over, and a copy
/// per call: an 8 KiB argument made the future 24,784 bytes where it is 16,424 without us.
#[tokio::test(start_paused = true)]
async fn one_attempt_keeps_an_owned_argument_once() {
    fast("mac-large-once", 100);
    let flaky = Flaky::new(0);
    let large = || Bulky([0; 8192]);
    let slack = 1024;
    let plain = size_of_val(&large_plain(large(), &flaky));
    let once = size_of_val(&large_once(large(), &flaky));
    assert!(
        once < plain + slack,
        "named: {once} bytes, {plain} without us"
    );
    let plain = size_of_val(&large_unnamed_plain(large(), &flaky));
    let once = size_of_val(&large_unnamed_once(large(), &flaky));
    assert!(
        once < plain + slack,
        "`_`: {once} bytes, {plain} without us"
    );
    assert_eq!(large_once(large(), &flaky).await, Ok(1));
    assert_eq!(large_unnamed_once(large(), &flaky).await, Ok(2));
}

/// A fixed class's field that its author marked `#[expect(dead_code)]` (as
/// `clippy::allow_attributes` asks): never read before fixed classes forwarded `Retry-After`,
/// and not read now, or the expectation went unfulfilled, an error under `deny(warnings)`
/// (helper-224's review).
#[deny(unfulfilled_lint_expectations)]
mod expected_dead {
    use resilience::{Classify, ErrorClass, HttpError};

    #[derive(Debug, Classify)]
    enum ChatError {
        #[classify(throttled)]
        Overloaded(#[expect(dead_code)] HttpError),
        #[classify(transient)]
        Gateway {
            #[expect(dead_code)]
            status: u16,
            #[cfg_attr(all(), expect(dead_code, reason = "only its Debug is used"))]
            source: HttpError,
        },
        #[classify(transient)]
        #[expect(dead_code)]
        Upstream(HttpError),
    }

    #[derive(Debug, Classify)]
    #[classify(transient)]
    #[expect(dead_code)]
    struct Timeout(HttpError);

    #[test]
    fn an_expected_dead_field_is_not_read() {
        let http = || HttpError::from_header(429, Some("3"));
        let overloaded = ChatError::Overloaded(http());
        assert!(matches!(
            overloaded.classify(),
            ErrorClass::Throttled { .. }
        ));
        assert_eq!(overloaded.retry_after(), None);
        let gateway = ChatError::Gateway {
            status: 1,
            source: http(),
        };
        assert_eq!(gateway.retry_after(), None);
        assert_eq!(ChatError::Upstream(http()).retry_after(), None);
        assert_eq!(Timeout(http()).retry_after(), None);
    }
}

/// Fixed classes over pointers to a `Classify` field, a `#[source]` among several errors, and
/// a user's trait with `Classify`'s method names for every type in scope at the derive: each
/// forwards its field's `Retry-After` (helper-224's review).
mod fixed_forwarding {
    use std::sync::Arc;
    use std::time::Duration;

    use resilience::{Classify, ErrorClass, HttpError};

    /// Methods of `Classify`'s names, for every type.
    #[allow(dead_code)]
    trait Hints {
        fn retry_after(&self) -> Option<u8> {
            None
        }
        fn classify(&self) -> u8 {
            0
        }
        fn log_summary(&self) -> u8 {
            0
        }
    }
    impl<T> Hints for T {}

    #[derive(Debug, Classify)]
    #[allow(dead_code)]
    enum Ptrs<'a> {
        #[classify(throttled)]
        Boxed(Box<HttpError>),
        #[classify(throttled)]
        Arced(Arc<HttpError>),
        #[classify(throttled)]
        Refd(&'a HttpError),
        #[classify(transient)]
        Two(u16, String),
        #[classify(transient)]
        Src {
            code: u16,
            #[source]
            inner: HttpError,
            other: HttpError,
        },
    }

    #[derive(Debug, Classify)]
    #[classify(throttled)]
    struct Overloaded(HttpError);

    #[test]
    fn pointers_sources_and_a_users_trait() {
        let h = || HttpError::from_header(429, Some("3"));
        let held = h();
        let three = Some(Duration::from_secs(3));
        for (v, want) in [
            (Ptrs::Boxed(Box::new(h())), three),
            (Ptrs::Arced(Arc::new(h())), three),
            (Ptrs::Refd(&held), three),
            (Ptrs::Two(1, String::new()), None),
            (
                Ptrs::Src {
                    code: 1,
                    inner: h(),
                    other: HttpError::from_header(429, Some("9")),
                },
                three,
            ),
        ] {
            assert_eq!(Classify::retry_after(&v), want, "{v:?}");
        }
        let o = Overloaded(h());
        assert_eq!(Classify::retry_after(&o), three);
        assert!(matches!(
            Classify::classify(&o),
            ErrorClass::Throttled { .. }
        ));
    }
}
