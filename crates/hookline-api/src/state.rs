//! What every request handler shares.

use std::ops::Deref;
use std::sync::Arc;

use hookline_amqp::SharedPublisher;
use hookline_deliverer::sender::Sender;
use hookline_model::sealed::Keyring;

use crate::config::ApiConfig;
use crate::control::Notifier;
use crate::db::Database;
use crate::metrics::Metrics;
use crate::validate::Rules;

/// Cheap to clone: one `Arc` around the shared parts.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

/// The shared parts themselves.
pub(crate) struct Shared {
    /// PostgreSQL.
    pub db: Database,
    /// The configuration `run` was given.
    pub config: ApiConfig,
    /// Validation limits derived from the configuration once.
    pub rules: Rules,
    /// Announces subscription changes.
    pub notifier: Notifier,
    /// Confirmed publishes of replayed tasks.
    pub publisher: Arc<SharedPublisher>,
    /// The deliverer's HTTP client, for synchronous test sends.
    pub sender: Sender,
    /// Metric handles (the test send records its attempt).
    pub metrics: Metrics,
    /// Seals and opens subscription secrets and static headers.
    pub keyring: Arc<Keyring>,
}

impl AppState {
    /// Wraps the shared parts.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// The keys of `api.secret_key` and `api.previous_secret_keys`.
    pub fn keyring(&self) -> &Keyring {
        &self.0.keyring
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
