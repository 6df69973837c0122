use resilience::CallSite;

async fn fetch(client: &reqwest::Client) -> Result<u32, reqwest::Error> {
    client.get("http://127.0.0.1:1/").send().await?;
    Ok(1)
}

static SITE: CallSite = CallSite::new("kimi", "upload");

async fn through_provider(client: &reqwest::Client) -> Result<u32, reqwest::Error> {
    resilience::provider("kimi")
        .execute(|| async { fetch(client).await })
        .await
}

async fn through_call_site(client: &reqwest::Client) -> Result<u32, reqwest::Error> {
    SITE.execute(|| fetch(client)).await
}

fn main() {
    let client = reqwest::Client::new();
    let _ = through_provider(&client);
    let _ = through_call_site(&client);
}
