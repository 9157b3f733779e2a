//! Test support: a fresh vhost and database per test, the four services
//! started in-process on port 0, a real HTTP receiver that captures every
//! delivery, and `eventually` for waiting without bare sleeps.

pub mod api_client;
pub mod binary;
pub mod env;
pub mod faults;
pub mod receiver;
pub mod signature;
pub mod tls;

use std::future::Future;
use std::time::{Duration, Instant};

pub use api_client::ApiClient;
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

/// Test logs at `TEST_LOG` (default `warn`), once per test binary.
pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}
