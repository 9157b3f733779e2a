//! Test support: a fresh vhost and database per test, the four services
//! started in-process on port 0, a real HTTP receiver that captures every
//! delivery, and `eventually` for waiting without bare sleeps.

pub mod binary;
pub mod env;
pub mod faults;
pub mod receiver;
pub mod signature;

use std::future::Future;
use std::time::{Duration, Instant};

pub use env::{TestEnv, TestOptions};
pub use receiver::{Captured, Receiver, Reply};

/// Polls `check` until it returns `Some`, or panics with `what` after
/// `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
