// On a trait, a struct, an enum or a module, the attribute says where it goes, at the item's
// keyword.
use resilience::resilient;

#[resilient(provider = "kimi")]
pub trait Uploads {
    fn upload(&self);
}

#[resilient(provider = "kimi")]
pub struct Client;

#[resilient(provider = "kimi")]
pub enum Mode {
    Fast,
}

#[resilient(provider = "kimi")]
mod calls {}

fn main() {}
