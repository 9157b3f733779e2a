//! The deliverer's typed configuration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hookline_amqp::Topology;
use hookline_config::{DeliverySettings, Settings};
use hookline_model::sealed::Keyring;

/// Everything a deliverer reads.
#[derive(Debug, Clone)]
pub struct DelivererConfig {
    /// `/metrics` and health.
    pub listen: SocketAddr,
    /// The broker's nodes and extra CA (`amqp.url`, `amqp.ca_file`).
    pub broker: hookline_amqp::Broker,
    /// Limits of the HTTP listener (`http.*`).
    pub http: hookline_config::HttpSettings,
    /// Queues to declare.
    pub topology: Topology,
    /// Outstanding confirms per channel.
    pub confirm_window: usize,
    /// Pause between reconnects.
    pub reconnect_delay: Duration,
    /// Sending and retry behaviour.
    pub delivery: DeliverySettings,
    /// Opens the sealed credentials of tasks (`api.secret_key` and
    /// `api.previous_secret_keys`).
    pub keyring: Arc<Keyring>,
}

impl DelivererConfig {
    /// Takes the deliverer's sections.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            listen: settings.deliverer.listen,
            broker: hookline_amqp::Broker::from_settings(&settings.amqp),
            http: settings.http,
            topology: Topology {
                queue_type: settings.amqp.queue_type,
                retry_delays: settings.delivery.retry_delays.clone(),
            },
            confirm_window: settings.amqp.confirm_window,
            reconnect_delay: settings.amqp.reconnect_delay,
            delivery: settings.delivery.clone(),
            keyring: Arc::new(hookline_send::keyring_of(&settings.api)),
        }
    }

    /// Slots retries may hold, so first attempts always keep the rest.
    pub fn retry_slots(&self) -> usize {
        (self.delivery.concurrency * self.delivery.retry_share_percent as usize / 100).max(1)
    }
}
