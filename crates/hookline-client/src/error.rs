//! Why a publish did not end with Hookline holding the event.

use crate::EventError;

/// A failed publish; [`PublishError::may_retry`] says whether publishing the
/// same event again can help.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The event breaks an envelope rule (checked before sending).
    #[error("invalid event: {0}")]
    Invalid(#[from] EventError),
    /// Hookline refused it: ingest's status and `error.code`, or a broker
    /// that has no queue for it. Sending it again unchanged will not help.
    #[error("refused ({status} {code}): {message}")]
    Refused {
        /// HTTP status (`0` for the broker).
        status: u16,
        /// The contract's error code, e.g. `invalid_type`.
        code: String,
        /// What to fix.
        message: String,
    },
    /// Not confirmed before the deadline, after retrying: the event may
    /// still arrive. Publish it again (same id) later.
    #[error("not confirmed: {0}")]
    Unavailable(String),
    /// The publisher's own settings are wrong (a URL, a TLS setup).
    #[error("configuration: {0}")]
    Config(String),
}

impl PublishError {
    /// Whether publishing the same event again later can succeed.
    pub fn may_retry(&self) -> bool {
        matches!(self, PublishError::Unavailable(_))
    }
}
