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

trait FileProvider {
    async fn upload_file(&self, path: &std::path::Path, purpose: String) -> Result<u64, MyError>;
}

struct Kimi;

impl FileProvider for Kimi {
    #[resilience::resilient(provider = "kimi")]
    async fn upload_file(&self, path: &std::path::Path, purpose: String) -> Result<u64, MyError> {
        Ok(path.as_os_str().len() as u64 + purpose.len() as u64)
    }
}

// A trait that promises `Send` futures (rustc's `async_fn_in_trait` suggestion) declares the
// method as a `fn` returning `impl Future + Send`; its impls still write `#[resilient] async fn`.
pub trait SendStore {
    fn put(&self, bytes: Vec<u8>) -> impl std::future::Future<Output = Result<usize, MyError>> + Send;
}

impl SendStore for Kimi {
    #[resilience::resilient(provider = "kimi")]
    async fn put(&self, bytes: Vec<u8>) -> Result<usize, MyError> {
        Ok(bytes.len())
    }
}

fn is_send<T: Send>(_: T) {}

// Generic code sees the trait's promise: the future can go to another thread.
fn put_anywhere<S: SendStore + Sync>(store: &S) {
    is_send(store.put(vec![1]));
}

fn main() {
    let _ = Kimi.upload_file(std::path::Path::new("a"), String::new());
    put_anywhere(&Kimi);
}
