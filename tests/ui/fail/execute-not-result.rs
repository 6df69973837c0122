use resilience::CallSite;

static SITE: CallSite = CallSite::new("kimi", "upload");

async fn through_provider() -> u32 {
    resilience::provider("kimi").execute(|| async { 42u32 }).await
}

async fn through_call_site() -> Option<u32> {
    SITE.execute(|| async { Some(1) }).await
}

fn main() {
    let _ = through_provider();
    let _ = through_call_site();
}
