use resilience::CallSite;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn fetch() -> Result<u32, BoxError> {
    Ok(1)
}

static SITE: CallSite = CallSite::new("kimi", "upload");

async fn through_provider() -> Result<u32, BoxError> {
    resilience::provider("kimi").execute(|| async { fetch().await }).await
}

async fn through_call_site() -> Result<u32, BoxError> {
    SITE.execute(fetch).await
}

fn main() {
    let _ = through_provider();
    let _ = through_call_site();
}
