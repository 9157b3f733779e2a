//! The loop both recorders run: take a batch of messages, write it in one
//! transaction, and ack only after the commit.
//!
//! PostgreSQL being down is waited out with the batch held unacked (no
//! nack-requeue loop); data PostgreSQL refuses for good is narrowed to the
//! message at fault, which is parked.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hookline_amqp::{declare, AmqpError, Topology};
use hookline_runtime::Readiness;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Connection, Consumer};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::db::Database;
use crate::store::{is_permanent, parked};

/// How long a batch waits for more messages once it has one.
const LINGER: Duration = Duration::from_millis(10);
/// The readiness entry that is down while a message waits to be parked.
pub(crate) const PARKING: &str = "parking";
/// Longest pause between attempts while PostgreSQL is down.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What a recorder does with its messages.
pub(crate) trait Sink: Send + Sync + 'static {
    /// The queue consumed; also names the recorder's connection in RabbitMQ.
    const QUEUE: &'static str;
    /// Unacked messages held at once; also the largest batch.
    const PREFETCH: u16;
    /// Messages written in one transaction.
    const BATCH: usize;
    /// What a committed write hands to [`Sink::committed`].
    type Outcome: Send;

    /// Writes `deliveries` inside the caller's transaction, parking the ones
    /// that do not decode.
    fn write(
        &self,
        tx: &mut PgConnection,
        deliveries: &[Delivery],
    ) -> impl Future<Output = Result<Self::Outcome, sqlx::Error>> + Send;

    /// Runs after the commit: metrics, notifications.
    fn committed(&self, outcome: Self::Outcome) -> impl Future<Output = ()> + Send;
}

/// One recorder's state across reconnections.
pub(crate) struct Session<S> {
    /// What to do with messages.
    pub sink: S,
    /// Waited on until migrations have run, so no message is taken before the
    /// schema is in place.
    pub db: Database,
    /// Declared on every new channel, so a restarted broker gets it back.
    pub topology: Topology,
    /// `amqp` is up while consuming.
    pub up: Readiness,
    /// The api's shutdown signal: no further batch is taken, and `run` returns.
    pub token: CancellationToken,
}

impl<S: Sink> Session<S> {
    /// Consumes on a fresh connection until it fails or shutdown; unacked
    /// messages then go back to the queue and are consumed again.
    pub async fn run(self: Arc<Self>, connection: Arc<Connection>) -> Result<(), AmqpError> {
        let Some(pool) = self.db.ready(&self.token).await else {
            return Ok(());
        };
        let channel = connection.create_channel().await?;
        declare(&channel, &self.topology).await?;
        // Prefetch bounds memory and the batch size; messages beyond it wait
        // in the broker, where another api replica can take them.
        channel
            .basic_qos(S::PREFETCH, BasicQosOptions::default())
            .await?;
        let tag = format!("hookline-api-{}", ulid::Ulid::new());
        let mut consumer = channel
            .basic_consume(
                S::QUEUE.into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        self.up.set("amqp", true);
        tracing::info!(queue = S::QUEUE, "recorder consuming");
        loop {
            let Some(batch) = next_batch(&mut consumer, S::BATCH, &self.token).await? else {
                return Ok(());
            };
            if !self.store(pool, &batch).await {
                return Ok(());
            }
            // This ack is where at-least-once is decided: it is sent only
            // after the rows are committed, so a crash before it means a
            // redelivery (absorbed by the unique keys), never a lost record.
            // Every earlier tag is already acked, so `multiple` covers
            // exactly this batch.
            if let Some(last) = batch.last() {
                channel
                    .basic_ack(last.delivery_tag, BasicAckOptions { multiple: true })
                    .await?;
            }
        }
    }

    /// Writes a batch; `false` when shutdown came first (nothing is acked).
    async fn store(&self, pool: &PgPool, batch: &[Delivery]) -> bool {
        match self.retrying(|| self.write_once(pool, batch)).await {
            Some(Ok(())) => return true,
            Some(Err(error)) if batch.len() > 1 => {
                tracing::warn!(queue = S::QUEUE, %error, "a batch was refused; writing its messages one by one");
            }
            Some(Err(_)) => {}
            None => return false,
        }
        for delivery in batch {
            let one = std::slice::from_ref(delivery);
            match self.retrying(|| self.write_once(pool, one)).await {
                Some(Ok(())) => {}
                Some(Err(error)) => {
                    let reason = format!("PostgreSQL refused it: {error}");
                    match self
                        .retrying(|| park_once(pool, S::QUEUE, &reason, &delivery.data))
                        .await
                    {
                        Some(Ok(())) => {
                            tracing::warn!(queue = S::QUEUE, %reason, "parked a message")
                        }
                        // Never dropped: it stays unacked, and so does
                        // everything after it, until it can be parked.
                        Some(Err(error)) => {
                            tracing::error!(queue = S::QUEUE, %error, "cannot park a message; holding it unacked and reporting not ready until it can be");
                            self.up.set(PARKING, false);
                            let parked =
                                self.park_until_stored(pool, &reason, &delivery.data).await;
                            self.up.set(PARKING, true);
                            if !parked {
                                return false;
                            }
                        }
                        None => return false,
                    }
                }
                None => return false,
            }
        }
        true
    }

    /// Parks one message, waiting out every error (even one PostgreSQL
    /// calls permanent) with a growing pause; `false` when shutdown came
    /// first.
    async fn park_until_stored(&self, pool: &PgPool, reason: &str, payload: &[u8]) -> bool {
        let mut delay = Duration::from_millis(500);
        loop {
            match park_once(pool, S::QUEUE, reason, payload).await {
                Ok(()) => {
                    tracing::warn!(queue = S::QUEUE, %reason, "parked a message at last");
                    return true;
                }
                Err(error) => {
                    tracing::error!(queue = S::QUEUE, %error, retry_in = ?delay, "still cannot park a message")
                }
            }
            tokio::select! {
                _ = self.token.cancelled() => return false,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    async fn write_once(&self, pool: &PgPool, deliveries: &[Delivery]) -> Result<(), sqlx::Error> {
        let mut tx = pool.begin().await?;
        let outcome = self.sink.write(&mut tx, deliveries).await?;
        tx.commit().await?;
        self.sink.committed(outcome).await;
        Ok(())
    }

    /// Runs `attempt` until it succeeds or fails for good, waiting out
    /// outages with a growing pause; `None` when shutdown came first.
    async fn retrying<F, Fut>(&self, mut attempt: F) -> Option<Result<(), sqlx::Error>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), sqlx::Error>>,
    {
        let mut delay = Duration::from_millis(500);
        loop {
            match attempt().await {
                Ok(()) => return Some(Ok(())),
                Err(error) if is_permanent(&error) => return Some(Err(error)),
                Err(error) => {
                    tracing::warn!(queue = S::QUEUE, %error, retry_in = ?delay, "cannot write to PostgreSQL; holding the batch");
                }
            }
            tokio::select! {
                _ = self.token.cancelled() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }
}

async fn park_once(
    pool: &PgPool,
    queue: &str,
    reason: &str,
    payload: &[u8],
) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    parked::insert(&mut conn, queue, reason, payload).await
}

/// The next batch: waits for one message, then takes whatever arrives
/// within [`LINGER`], up to `max`. `None` on shutdown or when the
/// connection's stream ends.
async fn next_batch(
    consumer: &mut Consumer,
    max: usize,
    token: &CancellationToken,
) -> Result<Option<Vec<Delivery>>, AmqpError> {
    let first = tokio::select! {
        _ = token.cancelled() => return Ok(None),
        next = consumer.next() => match next {
            None => return Ok(None),
            Some(delivery) => delivery?,
        },
    };
    let mut batch = vec![first];
    while batch.len() < max {
        match tokio::time::timeout(LINGER, consumer.next()).await {
            Ok(Some(delivery)) => batch.push(delivery?),
            Ok(None) | Err(_) => break,
        }
    }
    Ok(Some(batch))
}
