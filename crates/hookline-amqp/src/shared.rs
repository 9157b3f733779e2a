//! A publisher for request handlers (ingest, the api): connections come from
//! a deadpool-lapin pool that replaces broken ones, and one confirm-mode
//! channel is shared by all requests until it fails, then reopened lazily.

use std::time::Duration;

use deadpool_lapin::{Config, Pool, Runtime};
use lapin::{BasicProperties, ConnectionProperties};
use prometheus::Histogram;
use tokio::sync::Mutex;

use crate::error::AmqpError;
use crate::publisher::ConfirmedPublisher;
use crate::topology::{declare, Topology};

/// Settings of a [`SharedPublisher`].
#[derive(Clone, Debug)]
pub struct SharedPublisherConfig {
    /// Broker URL.
    pub url: String,
    /// Connection name shown in RabbitMQ.
    pub name: String,
    /// Outstanding confirms allowed.
    pub window: usize,
    /// Longest wait for connect + publish + confirm.
    pub timeout: Duration,
    /// Declared on every new channel, so a restarted broker gets it back.
    pub topology: Topology,
}

/// Publishes with confirms, reconnecting as needed.
pub struct SharedPublisher {
    pool: Pool,
    current: Mutex<Option<ConfirmedPublisher>>,
    config: SharedPublisherConfig,
    confirm_seconds: Option<Histogram>,
}

impl SharedPublisher {
    /// Builds the pool; connects lazily.
    pub fn new(
        config: SharedPublisherConfig,
        confirm_seconds: Option<Histogram>,
    ) -> Result<Self, AmqpError> {
        let pool = Config {
            url: Some(config.url.clone()),
            pool: None,
            connection_properties: ConnectionProperties::default()
                .with_executor(tokio_executor_trait::Tokio::current())
                .with_reactor(tokio_reactor_trait::Tokio)
                .with_connection_name(config.name.clone().into()),
        }
        .create_pool(Some(Runtime::Tokio1))
        .map_err(|e| AmqpError::Unavailable(e.to_string()))?;
        Ok(Self {
            pool,
            current: Mutex::new(None),
            config,
            confirm_seconds,
        })
    }

    /// A usable confirm-mode channel, opening one when there is none.
    pub async fn publisher(&self) -> Result<ConfirmedPublisher, AmqpError> {
        let mut current = self.current.lock().await;
        if let Some(publisher) = current.as_ref().filter(|p| p.is_usable()) {
            return Ok(publisher.clone());
        }
        *current = None;
        let open = async {
            let connection = self
                .pool
                .get()
                .await
                .map_err(|e| AmqpError::Unavailable(e.to_string()))?;
            let publisher = ConfirmedPublisher::open(
                &connection,
                self.config.window,
                self.confirm_seconds.clone(),
            )
            .await?;
            declare(publisher.channel(), &self.config.topology).await?;
            Ok::<_, AmqpError>(publisher)
        };
        let publisher = tokio::time::timeout(self.config.timeout, open)
            .await
            .map_err(|_| AmqpError::Timeout)??;
        *current = Some(publisher.clone());
        Ok(publisher)
    }

    /// Publishes and waits for the confirm, all within the configured
    /// timeout: waiting for a channel, opening one and the confirm share one
    /// deadline, so a broker under a memory alarm costs a caller at most
    /// `timeout`. A failed channel is dropped so the next call reopens one.
    pub async fn publish_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), AmqpError> {
        let attempt = async {
            let publisher = self.publisher().await?;
            publisher
                .publish_confirmed(exchange, routing_key, payload, properties)
                .await
        };
        let result = tokio::time::timeout(self.config.timeout, attempt)
            .await
            .map_err(|_| AmqpError::Timeout)
            .and_then(|r| r);
        if matches!(
            result,
            Err(AmqpError::Connection(_)) | Err(AmqpError::Timeout)
        ) {
            self.invalidate().await;
        }
        result
    }

    /// Forgets the current channel (after a failure or timeout). If another
    /// caller holds the lock it is opening a fresh channel already: do not
    /// wait for it, the caller's deadline has passed.
    pub async fn invalidate(&self) {
        if let Ok(mut current) = self.current.try_lock() {
            *current = None;
        }
    }

    /// Whether a channel is open right now (readiness).
    pub async fn is_connected(&self) -> bool {
        self.current
            .lock()
            .await
            .as_ref()
            .is_some_and(|p| p.is_usable())
    }

    /// Publish timeout, for callers that wrap several publishes.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }
}
