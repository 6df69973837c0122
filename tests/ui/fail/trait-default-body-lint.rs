//! A lint on the method keeps its suggestion whole: rustc rewrites the body through its braces,
//! which keep the user's spans (before, they pointed into the attribute, and the suggested code
//! was garbled).
#![deny(async_fn_in_trait)]

use resilience::resilient;

pub trait Store {
    #[resilient(provider = "ui-default-body")]
    async fn get(&self) -> Result<u32, std::io::Error> {
        Ok(7)
    }
}

fn main() {}
