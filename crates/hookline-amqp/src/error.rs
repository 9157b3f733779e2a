//! Broker errors, typed by what the caller should do about them.

/// Why a broker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    /// The connection or channel failed; reconnect and retry.
    #[error("broker connection failed: {0}")]
    Connection(#[from] lapin::Error),
    /// The broker refused the message (nack); retry later.
    #[error("the broker refused the publish (nack)")]
    Nacked,
    /// Nothing is bound for the routing key: a topology bug, never retried
    /// blindly.
    #[error("no queue is bound for `{0}`")]
    Unroutable(String),
    /// No confirm within the publish timeout (e.g. a broker memory alarm).
    #[error("the broker did not confirm in time")]
    Timeout,
    /// No connection could be taken from the pool.
    #[error("no broker connection available: {0}")]
    Unavailable(String),
}

impl AmqpError {
    /// Whether the channel it happened on should be dropped and a new one
    /// opened: the connection failed, or the broker stopped confirming.
    pub fn spoils_channel(&self) -> bool {
        matches!(self, AmqpError::Connection(_) | AmqpError::Timeout)
    }
}
