//! A publisher for request handlers (ingest, the api): one confirm-mode
//! channel is shared by all requests until it fails, then reopened lazily,
//! on a connection that is itself replaced when it breaks. One channel needs
//! one connection, so there is no pool: a pool of one only hid which node
//! of a cluster, and which CA, it connected with.

use std::time::Duration;

use std::sync::Arc;

use lapin::{BasicProperties, Connection};
use prometheus::Histogram;
use tokio::sync::Mutex;

use crate::connect::{connect_to, Broker};
use crate::error::AmqpError;
use crate::publisher::ConfirmedPublisher;
use crate::topology::{declare, Topology};

/// Settings of a [`SharedPublisher`].
#[derive(Clone, Debug)]
pub struct SharedPublisherConfig {
    /// Where to connect, with TLS and credentials from `amqp.*`.
    pub broker: Broker,
    /// Shown in RabbitMQ's management UI, so an operator can tell services apart.
    pub name: String,
    /// Publishes awaiting their confirm at once; bounds memory and the
    /// broker's unconfirmed backlog.
    pub window: usize,
    /// Longest wait for connect + publish + confirm.
    pub timeout: Duration,
    /// Declared on every new channel, so a restarted broker gets it back.
    pub topology: Topology,
}

/// Publishes with confirms, reconnecting as needed.
pub struct SharedPublisher {
    current: Mutex<Current>,
    config: SharedPublisherConfig,
    confirm_seconds: Option<Histogram>,
}

/// The connection and the channel on it, both replaced when broken.
#[derive(Default)]
struct Current {
    connection: Option<Arc<Connection>>,
    publisher: Option<ConfirmedPublisher>,
}

impl SharedPublisher {
    /// Connects lazily, on the first publish.
    pub fn new(
        config: SharedPublisherConfig,
        confirm_seconds: Option<Histogram>,
    ) -> Result<Self, AmqpError> {
        Ok(Self {
            current: Mutex::new(Current::default()),
            config,
            confirm_seconds,
        })
    }

    /// A usable confirm-mode channel, opening one when there is none.
    pub async fn publisher(&self) -> Result<ConfirmedPublisher, AmqpError> {
        let mut current = self.current.lock().await;
        if let Some(publisher) = current.publisher.as_ref().filter(|p| p.is_usable()) {
            return Ok(publisher.clone());
        }
        current.publisher = None;
        let cached = current
            .connection
            .clone()
            .filter(|c| c.status().connected());
        let open = async {
            let connection = match cached {
                Some(connection) => connection,
                None => Arc::new(connect_to(&self.config.broker, &self.config.name).await?),
            };
            let publisher = ConfirmedPublisher::open(
                &connection,
                self.config.window,
                self.confirm_seconds.clone(),
            )
            .await?;
            declare(publisher.channel(), &self.config.topology).await?;
            Ok::<_, AmqpError>((connection, publisher))
        };
        let (connection, publisher) = tokio::time::timeout(self.config.timeout, open)
            .await
            .map_err(|_| AmqpError::Timeout)??;
        current.connection = Some(connection);
        current.publisher = Some(publisher.clone());
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
        self.send_confirmed(exchange, routing_key, payload, properties, true)
            .await
    }

    /// Like [`Self::publish_confirmed`], to a broadcast exchange where no
    /// bound queue is normal (an api running without fanouts), so the
    /// message is not `mandatory`.
    pub async fn broadcast_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), AmqpError> {
        self.send_confirmed(exchange, routing_key, payload, properties, false)
            .await
    }

    async fn send_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
        mandatory: bool,
    ) -> Result<(), AmqpError> {
        let attempt = async {
            let publisher = self.publisher().await?;
            publisher
                .send(exchange, routing_key, payload, properties, mandatory)
                .await?
                .confirmed()
                .await
        };
        let result = tokio::time::timeout(self.config.timeout, attempt)
            .await
            .map_err(|_| AmqpError::Timeout)
            .and_then(|r| r);
        if result.as_ref().is_err_and(AmqpError::spoils_channel) {
            self.invalidate().await;
        }
        result
    }

    /// Publishes `messages` on one channel in this order, so each queue
    /// receives them in this order (a producer's batch keeps its order for
    /// FIFO subscriptions), and waits for every confirm; all `mandatory` and
    /// within one timeout. One result per message: a send that fails fails
    /// the ones after it too, since they were not sent.
    pub async fn publish_in_order(
        &self,
        messages: Vec<Outgoing<'_>>,
    ) -> Vec<Result<(), AmqpError>> {
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let count = messages.len();
        let publisher = match tokio::time::timeout_at(deadline, self.publisher()).await {
            Ok(Ok(publisher)) => publisher,
            failed => {
                let reason = match failed {
                    Ok(Err(error)) => error.to_string(),
                    _ => AmqpError::Timeout.to_string(),
                };
                return (0..count)
                    .map(|_| Err(AmqpError::Unavailable(reason.clone())))
                    .collect();
            }
        };
        // Sent one after another (each waits only for a window slot), their
        // confirms awaited on tasks of their own so the window keeps moving.
        let mut waiting = Vec::with_capacity(count);
        let mut unsent: Option<String> = None;
        for message in messages {
            if unsent.is_some() {
                waiting.push(None);
                continue;
            }
            let send = publisher.send(
                message.exchange,
                message.routing_key,
                &message.payload,
                message.properties,
                true,
            );
            match tokio::time::timeout_at(deadline, send).await {
                Ok(Ok(pending)) => waiting.push(Some(tokio::spawn(pending.confirmed()))),
                Ok(Err(error)) => {
                    unsent = Some(error.to_string());
                    waiting.push(None);
                }
                Err(_) => {
                    unsent = Some(AmqpError::Timeout.to_string());
                    waiting.push(None);
                }
            }
        }
        let mut results = Vec::with_capacity(count);
        let mut spoiled = unsent.is_some();
        for confirm in waiting {
            let result = match confirm {
                None => Err(AmqpError::Unavailable(format!(
                    "not sent after an earlier failure: {}",
                    unsent.as_deref().unwrap_or_default()
                ))),
                Some(confirm) => match tokio::time::timeout_at(deadline, confirm).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(join)) => Err(AmqpError::Unavailable(join.to_string())),
                    Err(_) => Err(AmqpError::Timeout),
                },
            };
            spoiled |= result.as_ref().is_err_and(AmqpError::spoils_channel);
            results.push(result);
        }
        if spoiled {
            self.invalidate().await;
        }
        results
    }

    /// Forgets the current channel (after a failure or timeout). If another
    /// caller holds the lock it is opening a fresh channel already: do not
    /// wait for it, the caller's deadline has passed.
    pub async fn invalidate(&self) {
        if let Ok(mut current) = self.current.try_lock() {
            current.publisher = None;
        }
    }

    /// Whether a channel is open right now (readiness).
    pub async fn is_connected(&self) -> bool {
        self.current
            .lock()
            .await
            .publisher
            .as_ref()
            .is_some_and(|p| p.is_usable())
    }

    /// Publish timeout, for callers that wrap several publishes.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }
}

/// One message of [`SharedPublisher::publish_in_order`].
pub struct Outgoing<'a> {
    /// The exchange.
    pub exchange: &'a str,
    /// The routing key.
    pub routing_key: &'a str,
    /// The body.
    pub payload: Vec<u8>,
    /// Its properties (made persistent on the way out).
    pub properties: BasicProperties,
}
