// On a trait, a struct, an enum, a module or any other item that is no function, the attribute
// says where it goes, at the item's keyword.
#![allow(unused)]
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

#[resilient(provider = "kimi")]
const LIMIT: u32 = 3;

#[resilient(provider = "kimi")]
static NAME: &str = "kimi";

#[resilient(provider = "kimi")]
type Id = u64;

#[resilient(provider = "kimi")]
union Bits {
    n: u32,
}

#[resilient(provider = "kimi")]
use std::time::Duration;

#[resilient(provider = "kimi")]
unsafe extern "C" {}

#[resilient(provider = "kimi")]
extern crate std as standard;

#[resilient(provider = "kimi")]
macro_rules! nothing {
    () => {};
}

fn main() {}
