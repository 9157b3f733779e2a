//! The one shutdown signal, passed down explicitly to every task.
//!
//! `token` says "stop taking new work"; `tracker` lets the owner wait until
//! every spawned task has drained, bounded by the grace period.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Cancellation plus the set of tasks that must finish before exit.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    /// Cancelled when the process should stop taking work.
    pub token: CancellationToken,
    /// Every long-running task is spawned on this.
    pub tracker: TaskTracker,
}

impl Shutdown {
    /// A fresh, un-cancelled signal.
    pub fn new() -> Self {
        Self::default()
    }

    /// A child whose cancellation does not stop the parent (one service of
    /// `hookline all`, or a test).
    pub fn child(&self) -> Self {
        Self {
            token: self.token.child_token(),
            tracker: TaskTracker::new(),
        }
    }

    /// Cancels and waits for the tracked tasks, at most `grace`. Returns
    /// whether everything drained in time.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.token.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
