//! Confirmed publishing with a bounded window of outstanding confirms.
//!
//! `publish` only sends the frames and returns a [`PendingConfirm`]; callers
//! keep many in flight and await them later, so throughput is not one
//! round trip per message. The window (a semaphore) bounds how many are
//! outstanding. Messages are persistent and published `mandatory`, so a
//! message no queue would take comes back as [`AmqpError::Unroutable`]
//! instead of vanishing.

use std::sync::Arc;
use std::time::Instant;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection, PublisherConfirm};
use prometheus::Histogram;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::AmqpError;

/// A channel in confirm mode plus its window.
#[derive(Clone)]
pub struct ConfirmedPublisher {
    channel: Channel,
    window: Arc<Semaphore>,
    confirm_seconds: Option<Histogram>,
}

impl ConfirmedPublisher {
    /// Opens a channel on `connection` and puts it in confirm mode.
    pub async fn open(
        connection: &Connection,
        window: usize,
        confirm_seconds: Option<Histogram>,
    ) -> Result<Self, AmqpError> {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            channel,
            window: Arc::new(Semaphore::new(window)),
            confirm_seconds,
        })
    }

    /// The underlying channel (for declarations on the same connection).
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Whether the channel can still publish.
    pub fn is_usable(&self) -> bool {
        self.channel.status().connected()
    }

    /// Sends one persistent message that must reach a queue; waits only for
    /// a window slot, not for the confirm.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<PendingConfirm, AmqpError> {
        self.send(exchange, routing_key, payload, properties, true)
            .await
    }

    /// Sends to a broadcast exchange (`hookline.outcomes`, `hookline.control`)
    /// where having no listener bound is normal, not an error.
    pub async fn broadcast(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<PendingConfirm, AmqpError> {
        self.send(exchange, routing_key, payload, properties, false)
            .await
    }

    /// Sends, `mandatory` or not; the one place both forms go through.
    pub(crate) async fn send(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
        mandatory: bool,
    ) -> Result<PendingConfirm, AmqpError> {
        let permit = self
            .window
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AmqpError::Unavailable("publisher closed".into()))?;
        let started = Instant::now();
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory,
                    ..BasicPublishOptions::default()
                },
                payload,
                properties.with_delivery_mode(2),
            )
            .await?;
        Ok(PendingConfirm {
            confirm,
            routing_key: routing_key.to_string(),
            started,
            confirm_seconds: self.confirm_seconds.clone(),
            _permit: permit,
        })
    }

    /// Publishes and waits for the confirm.
    pub async fn publish_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), AmqpError> {
        self.publish(exchange, routing_key, payload, properties)
            .await?
            .confirmed()
            .await
    }
}

/// A sent message whose confirm has not been awaited yet; holds its window
/// slot until then.
pub struct PendingConfirm {
    confirm: PublisherConfirm,
    routing_key: String,
    started: Instant,
    confirm_seconds: Option<Histogram>,
    _permit: OwnedSemaphorePermit,
}

impl PendingConfirm {
    /// Resolves when the broker has taken responsibility for the message.
    pub async fn confirmed(self) -> Result<(), AmqpError> {
        let confirmation = self.confirm.await?;
        if let Some(histogram) = &self.confirm_seconds {
            histogram.observe(self.started.elapsed().as_secs_f64());
        }
        match confirmation {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_)) => Err(AmqpError::Unroutable(self.routing_key)),
            Confirmation::Nack(_) => Err(AmqpError::Nacked),
        }
    }
}

/// Properties of every Protocol Buffers message Hookline publishes.
pub fn protobuf_properties() -> BasicProperties {
    BasicProperties::default().with_content_type("application/x-protobuf".into())
}
