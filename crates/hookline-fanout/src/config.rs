//! Fanout's typed configuration.

use std::net::SocketAddr;
use std::time::Duration;

use hookline_amqp::Topology;
use hookline_config::Settings;

/// Everything fanout reads.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// `/metrics` and health.
    pub listen: SocketAddr,
    /// The broker's nodes and extra CA (`amqp.url`, `amqp.ca_file`).
    pub broker: hookline_amqp::Broker,
    /// Limits of the HTTP listener (`http.*`).
    pub http: hookline_config::HttpSettings,
    /// PostgreSQL URL (subscriptions are read, never written).
    pub database_url: String,
    /// Queues to declare.
    pub topology: Topology,
    /// Unacked events held.
    pub prefetch: u16,
    /// Outstanding confirms.
    pub confirm_window: usize,
    /// Safety-net full reload.
    pub refresh_interval: Duration,
    /// Pause between reconnects.
    pub reconnect_delay: Duration,
}

impl FanoutConfig {
    /// Takes fanout's sections.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            listen: settings.fanout.listen,
            broker: hookline_amqp::Broker::from_settings(&settings.amqp),
            http: settings.http,
            database_url: settings.database.url.expose().to_string(),
            topology: Topology {
                queue_type: settings.amqp.queue_type,
                retry_delays: settings.delivery.retry_delays.clone(),
            },
            prefetch: settings.fanout.prefetch,
            confirm_window: settings.amqp.confirm_window,
            refresh_interval: settings.fanout.refresh_interval,
            reconnect_delay: settings.amqp.reconnect_delay,
        }
    }
}
