#[async_trait::async_trait]
pub trait Files {
    async fn ping(&self);
}

pub struct Kimi;

#[async_trait::async_trait]
impl Files for Kimi {
    #[resilience::resilient(provider = "kimi")]
    async fn ping(&self) {}
}

fn main() {}
