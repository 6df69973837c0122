// A boxed error (`Box<dyn Error + Send + Sync>`) has `From<ResilienceError>`, but no
// `Classify`: the message names the `dyn Error` inside the box, and the notes must read right
// for it (they once said "if `dyn Error` is your own type").
#[resilience::resilient(provider = "kimi")]
async fn upload() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}

fn main() {
    let _ = upload();
}
