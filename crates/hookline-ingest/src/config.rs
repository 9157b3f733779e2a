//! Ingest's typed configuration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hookline_amqp::Topology;
use hookline_config::Settings;
use hookline_model::sealed::Keyring;

/// Everything ingest reads.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// The broker's nodes and extra CA (`amqp.url`, `amqp.ca_file`).
    pub broker: hookline_amqp::Broker,
    /// Limits of the HTTP listener (`http.*`).
    pub http: hookline_config::HttpSettings,
    /// Queues to declare.
    pub topology: Topology,
    /// Outstanding confirms.
    pub confirm_window: usize,
    /// Longest wait for a confirm before answering 503.
    pub publish_timeout: Duration,
    /// Largest body of `POST /v1/events`.
    pub max_event_bytes: usize,
    /// Most events per batch.
    pub max_batch_events: usize,
    /// Producer tokens (`ingest.tokens`); empty means no check.
    pub tokens: Vec<hookline_config::Secret>,
    /// Where the event type catalogue is read (`ingest.api_url`).
    pub api_url: String,
    /// What it is read with (`api.admin_token`).
    pub api_token: hookline_config::Secret,
    /// Safety-net reread of the catalogue and the sources
    /// (`ingest.catalogue_refresh`).
    pub catalogue_refresh: Duration,
    /// Opens the sources' sealed verification secrets (`api.secret_key`,
    /// `api.previous_secret_keys`).
    pub keyring: Arc<Keyring>,
    /// Requests per second per source (`ingest.source_rate_limit`; 0: off).
    pub source_rate_limit: u32,
}

impl IngestConfig {
    /// Takes ingest's sections.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            listen: settings.ingest.listen,
            broker: hookline_amqp::Broker::from_settings(&settings.amqp),
            http: settings.http,
            topology: Topology {
                queue_type: settings.amqp.queue_type,
                retry_delays: settings.delivery.retry_delays.clone(),
            },
            confirm_window: settings.amqp.confirm_window,
            publish_timeout: settings.amqp.publish_timeout,
            max_event_bytes: settings.ingest.max_event_bytes,
            max_batch_events: settings.ingest.max_batch_events,
            tokens: settings.ingest.tokens.clone(),
            api_url: settings.ingest.api_url(&settings.api),
            api_token: settings.api.admin_token.clone(),
            catalogue_refresh: settings.ingest.catalogue_refresh,
            keyring: Arc::new(hookline_send::keyring_of(&settings.api)),
            source_rate_limit: settings.ingest.source_rate_limit,
        }
    }
}
