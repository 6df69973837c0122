//! A user crate on edition 2021 (the macro's crate is on 2024). rustc takes a block's
//! tail-expression temporary scope from the edition of the block's span: from helper-107's
//! review, the block the expansion puts a body's statements in was spanned as the expansion's
//! for a while, and a 2021 body's tail temporaries were dropped by 2024's rules, before its
//! locals, unlike the same body without the attribute.

use std::sync::{Arc, Mutex};

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
        ErrorClass::Permanent
    }
}

pub type Log = Arc<Mutex<Vec<&'static str>>>;

pub struct Noisy(pub &'static str, pub Log);

impl Noisy {
    pub fn value(&self) -> u32 {
        1
    }
}

impl Drop for Noisy {
    fn drop(&mut self) {
        self.1.lock().unwrap().push(self.0);
    }
}

pub struct S {
    pub log: Log,
}

impl S {
    /// The body, as written, without the attribute: edition 2021's order.
    pub async fn plain(&self) -> Result<u32, MyError> {
        let _local = Noisy("local", self.log.clone());
        Ok(Noisy("temporary", self.log.clone()).value())
    }

    #[resilience::resilient(provider = "edition-2021")]
    pub async fn wrapped(&self) -> Result<u32, MyError> {
        let _local = Noisy("local", self.log.clone());
        Ok(Noisy("temporary", self.log.clone()).value())
    }
}

// The runner's resilience variables are removed before the tests' `main` (see the module):
// the test's provider reads the environment.
#[cfg(test)]
#[path = "../../hermetic/mod.rs"]
mod hermetic;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_s_tail_temporaries_drop_as_the_user_s_edition_drops_them() {
        let s = S {
            log: Log::default(),
        };
        s.plain().await.unwrap();
        let plain = std::mem::take(&mut *s.log.lock().unwrap());
        s.wrapped().await.unwrap();
        let wrapped = std::mem::take(&mut *s.log.lock().unwrap());
        assert_eq!(
            plain,
            ["local", "temporary"],
            "edition 2021, without the attribute"
        );
        assert_eq!(wrapped, plain, "the same body under #[resilient]");
    }
}
