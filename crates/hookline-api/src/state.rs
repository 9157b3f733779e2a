//! What every request handler shares.

use std::ops::Deref;
use std::sync::Arc;

use hookline_amqp::SharedPublisher;
use hookline_model::sealed::Keyring;
use hookline_send::Sender;

use crate::config::ApiConfig;
use crate::control::Notifier;
use crate::db::Database;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::validate::Rules;

/// Cheap to clone: one `Arc` around the shared parts.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

/// What every handler may need, built once at start.
pub(crate) struct Shared {
    /// PostgreSQL; routes answer `503` until migrations have run.
    pub db: Database,
    /// The configuration `run` was given.
    pub config: ApiConfig,
    /// Validation limits derived from the configuration once.
    pub rules: Rules,
    /// Announces subscription changes on `hookline.control`, so fanout and
    /// deliverers apply them within a second.
    pub notifier: Notifier,
    /// Confirmed publishes of replayed tasks.
    pub publisher: Arc<SharedPublisher>,
    /// The deliverer's HTTP client, for synchronous test sends.
    pub sender: Sender,
    /// Metric handles (the test send records its attempt).
    pub metrics: Metrics,
    /// Seals and opens subscription secrets and static headers.
    pub keyring: Arc<Keyring>,
    /// Bearer tokens recently unknown, answered without a query.
    pub unknown_tokens: crate::limits::UnknownTokens,
    /// Test sends and replays per tenant (`api.manual_sends_per_minute`).
    pub manual_sends: crate::limits::MinuteBudget,
    /// Wrong verification tokens per subscription
    /// (`limits::WRONG_TOKENS_PER_MINUTE`).
    pub wrong_tokens: crate::limits::MinuteBudget,
    /// `hookline_api_token_lookups_total`: tenant keys looked up in the database.
    pub token_lookups: prometheus::IntCounter,
}

impl AppState {
    /// Shares `shared` between handlers at the cost of one `Arc` clone each.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// The keys of `api.secret_key` and `api.previous_secret_keys`.
    pub fn keyring(&self) -> &Keyring {
        &self.0.keyring
    }

    /// Takes one test send or replay from `tenant`'s budget.
    pub fn take_manual_send(&self, tenant: &str) -> Result<(), ApiError> {
        self.0.manual_sends.take(tenant).map_err(|retry_after| {
            let per_minute = self.0.config.api.manual_sends_per_minute;
            ApiError::RateLimited {
                message: format!(
                    "tenant `{tenant}` may make {per_minute} test sends and replays a minute \
                     (api.manual_sends_per_minute); retry later"
                ),
                retry_after,
            }
        })
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
