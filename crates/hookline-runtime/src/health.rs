//! Readiness: the dependencies a service needs, each up or down.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// Shared, cheap-to-clone readiness state. A service is ready when every
/// registered dependency is up and it is not shutting down.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    inner: Arc<Mutex<BTreeMap<&'static str, bool>>>,
}

impl Readiness {
    /// Empty: ready until a dependency is registered as down.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records whether `dependency` (e.g. `amqp`, `database`) is usable.
    pub fn set(&self, dependency: &'static str, up: bool) {
        self.inner.lock().insert(dependency, up);
    }

    /// Whether every dependency is up.
    pub fn is_ready(&self) -> bool {
        self.inner.lock().values().all(|up| *up)
    }

    /// Each dependency and its state, for the `/readyz` body.
    pub fn snapshot(&self) -> BTreeMap<&'static str, bool> {
        self.inner.lock().clone()
    }
}

/// Mirrors readiness into a `hookline_ready` gauge once a second, until the
/// shutdown token is cancelled.
pub fn spawn_ready_gauge(
    shutdown: &crate::Shutdown,
    readiness: Readiness,
    gauge: prometheus::IntGauge,
) {
    let token = shutdown.token.clone();
    shutdown.tracker.spawn(async move {
        loop {
            gauge.set(readiness.is_ready() as i64);
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = token.cancelled() => break,
            }
        }
    });
}
