//! The api's slice of the configuration, so `run` depends on what it reads
//! and nothing else.

use std::time::Duration;

use hookline_config::{AmqpSettings, ApiSettings, DatabaseSettings, DeliverySettings, Settings};

/// Everything the api reads from configuration.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Listen address, tokens, URL rules and limits (`api.*`).
    pub api: ApiSettings,
    /// Where the subscriptions and history live (`database.*`).
    pub database: DatabaseSettings,
    /// The broker the recorders consume from and the api publishes to (`amqp.*`).
    pub amqp: AmqpSettings,
    /// The test send uses the deliverer's client, and URL checks honour
    /// `delivery.allowed_networks` (`delivery.*`).
    pub delivery: DeliverySettings,
    /// How long open requests and background tasks may take to finish once
    /// shutdown starts (`shutdown.grace_period`).
    pub grace_period: Duration,
    /// Limits of the HTTP listener (`http.*`).
    pub http: hookline_config::HttpSettings,
    /// Where senders reach ingest, for the URLs of sources
    /// (`ingest.public_url`).
    pub ingest_public_url: String,
}

impl ApiConfig {
    /// Copies the sections the api needs out of the loaded settings.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            api: settings.api.clone(),
            database: settings.database.clone(),
            amqp: settings.amqp.clone(),
            delivery: settings.delivery.clone(),
            grace_period: settings.shutdown.grace_period,
            http: settings.http,
            ingest_public_url: settings.ingest.public_url(),
        }
    }
}
