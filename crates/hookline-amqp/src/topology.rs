//! The one idempotent declaration of exchanges, queues and bindings that
//! every service runs at start (and again after each reconnect).
//!
//! Guarantees per queue, with `amqp.queue_type = "quorum"` (the default):
//! every queue is replicated and durable; messages are persistent; the wait
//! queues dead-letter *at least once* into `hookline.retry`, so a task
//! waiting out a delay survives a broker restart and is never dropped on its
//! way back to the deliverers. With `"classic"`, queues are durable and
//! messages persistent, but dead-lettering out of a wait queue is at most
//! once (a crash at that instant can lose the task).

use std::time::Duration;

use hookline_config::QueueType;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ExchangeKind};

use crate::error::AmqpError;
use crate::names::*;

/// What shapes the topology.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Queue type of every durable queue.
    pub queue_type: QueueType,
    /// The retry ladder; one wait queue per delay.
    pub retry_delays: Vec<Duration>,
}

/// Deliveries a quorum queue makes of one message before dead-lettering it:
/// a backstop against a poison message that crashes its consumer. Consumers
/// park a message themselves one delivery before (see [`redelivered_too_often`]),
/// so it ends with its reason and, for a task, as a real dead letter.
pub const DELIVERY_LIMIT: i64 = 20;

/// Whether a message has been delivered so often without an ack (its
/// consumers crashed on it, or gave it back at each shutdown) that this is
/// the last delivery before the broker dead-letters it silently. Reads the
/// `x-delivery-count` header that quorum queues add; classic queues have no
/// limit and no header.
pub fn redelivered_too_often(headers: Option<&FieldTable>) -> Option<i64> {
    let count = match headers?.inner().get("x-delivery-count")? {
        AMQPValue::LongLongInt(n) => *n,
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        _ => return None,
    };
    (count >= DELIVERY_LIMIT - 1).then_some(count)
}

fn string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.to_string()))
}

/// The control log is a stream whatever `amqp.queue_type` says: many
/// readers, each from its own offset, and retention by age. Small segments,
/// because retention drops whole segments and the log is tiny.
fn control_log_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), string("stream"));
    args.insert("x-max-age".into(), string(CONTROL_LOG_MAX_AGE));
    args.insert(
        "x-stream-max-segment-size-bytes".into(),
        AMQPValue::LongLongInt(1_000_000),
    );
    args
}

fn queue_args(queue_type: QueueType) -> FieldTable {
    let mut args = FieldTable::default();
    match queue_type {
        QueueType::Quorum => args.insert(ShortString::from("x-queue-type"), string("quorum")),
        QueueType::Classic => args.insert(ShortString::from("x-queue-type"), string("classic")),
    };
    args
}

fn work_queue_args(queue_type: QueueType, dead_letter_to: &str) -> FieldTable {
    let mut args = queue_args(queue_type);
    if queue_type == QueueType::Quorum {
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(DELIVERY_LIMIT),
        );
        args.insert("x-dead-letter-exchange".into(), string(""));
        args.insert("x-dead-letter-routing-key".into(), string(dead_letter_to));
    }
    args
}

fn wait_queue_args(queue_type: QueueType, delay: Duration) -> FieldTable {
    let mut args = queue_args(queue_type);
    args.insert(
        "x-message-ttl".into(),
        AMQPValue::LongLongInt(delay.as_millis() as i64),
    );
    args.insert("x-dead-letter-exchange".into(), string(RETRY_EXCHANGE));
    args.insert(
        "x-dead-letter-routing-key".into(),
        string(RETRY_ROUTING_KEY),
    );
    if queue_type == QueueType::Quorum {
        // At-least-once dead-lettering needs reject-publish overflow.
        args.insert("x-dead-letter-strategy".into(), string("at-least-once"));
        args.insert("x-overflow".into(), string("reject-publish"));
    }
    args
}

/// How long a task may wait in a slow lane before it is handed back to the
/// retry queue: a lane no deliverer consumes any more (every deliverer
/// restarted) cannot strand its tasks.
pub const LANE_TTL: Duration = Duration::from_secs(600);

async fn exchange(channel: &Channel, name: &str, kind: ExchangeKind) -> Result<(), AmqpError> {
    exchange_with(channel, name, kind, FieldTable::default()).await
}

async fn exchange_with(
    channel: &Channel,
    name: &str,
    kind: ExchangeKind,
    args: FieldTable,
) -> Result<(), AmqpError> {
    let options = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(name.into(), kind, options, args)
        .await?;
    Ok(())
}

async fn queue(channel: &Channel, name: &str, args: FieldTable) -> Result<(), AmqpError> {
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel.queue_declare(name.into(), options, args).await?;
    Ok(())
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str) -> Result<(), AmqpError> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// Declares everything; safe to run concurrently from every service.
pub async fn declare(channel: &Channel, topology: &Topology) -> Result<(), AmqpError> {
    let qt = topology.queue_type;
    exchange(channel, EVENTS_EXCHANGE, ExchangeKind::Topic).await?;
    exchange(channel, OUTCOMES_EXCHANGE, ExchangeKind::Topic).await?;
    exchange(channel, CONTROL_EXCHANGE, ExchangeKind::Fanout).await?;
    exchange(channel, RETRY_EXCHANGE, ExchangeKind::Direct).await?;

    queue(channel, INVALID_QUEUE, queue_args(qt)).await?;
    queue(channel, DEAD_QUEUE, queue_args(qt)).await?;
    queue(channel, EVENTS_QUEUE, work_queue_args(qt, INVALID_QUEUE)).await?;
    bind(channel, EVENTS_QUEUE, EVENTS_EXCHANGE, "#").await?;
    queue(channel, DELIVERIES_QUEUE, work_queue_args(qt, DEAD_QUEUE)).await?;
    queue(channel, RETRY_QUEUE, work_queue_args(qt, DEAD_QUEUE)).await?;
    bind(channel, RETRY_QUEUE, RETRY_EXCHANGE, RETRY_ROUTING_KEY).await?;
    queue(channel, ATTEMPTS_QUEUE, work_queue_args(qt, DEAD_QUEUE)).await?;
    queue(
        channel,
        SOURCE_REQUESTS_QUEUE,
        work_queue_args(qt, DEAD_QUEUE),
    )
    .await?;
    for delay in &topology.retry_delays {
        queue(channel, &wait_queue(*delay), wait_queue_args(qt, *delay)).await?;
    }
    queue(channel, CONTROL_LOG_QUEUE, control_log_args()).await?;
    bind(channel, CONTROL_LOG_QUEUE, CONTROL_EXCHANGE, "").await?;
    exchange(channel, LANES_FALLBACK_EXCHANGE, ExchangeKind::Fanout).await?;
    bind(channel, DELIVERIES_QUEUE, LANES_FALLBACK_EXCHANGE, "").await?;
    let mut lanes = FieldTable::default();
    lanes.insert("alternate-exchange".into(), string(LANES_FALLBACK_EXCHANGE));
    exchange_with(channel, LANES_EXCHANGE, ExchangeKind::Direct, lanes).await?;
    Ok(())
}

/// Declares one subscription's slow lane and binds it to `hookline.lanes`.
/// A task that outstays [`LANE_TTL`] (or, on quorum queues, is redelivered
/// too often) dead-letters into the retry queue, like a finished wait.
pub async fn declare_lane(
    channel: &Channel,
    queue_type: QueueType,
    subscription_id: &str,
) -> Result<String, AmqpError> {
    let name = lane_queue(subscription_id);
    let mut args = wait_queue_args(queue_type, LANE_TTL);
    match queue_type {
        QueueType::Quorum => args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(DELIVERY_LIMIT),
        ),
        // A lane holds a backlog by design; the second classic queue
        // implementation stores one with less broker work.
        QueueType::Classic => args.insert("x-queue-version".into(), AMQPValue::LongLongInt(2)),
    };
    queue(channel, &name, args).await?;
    bind(channel, &name, LANES_EXCHANGE, subscription_id).await?;
    Ok(name)
}

/// Declares the queue of a subscription with an endpoint policy (see
/// [`crate::names::endpoint_queue`]) on a channel of its own, since a
/// refused declaration closes the channel it was made on; fanout and deliverers
/// both call it, with the same arguments, so whichever comes first creates
/// it. A single active consumer is what makes the policy hold across every
/// deliverer: the broker hands the queue to one of them at a time and to
/// the next when it goes. No TTL, unlike a lane: its tasks must keep their
/// order and pace, so they wait for a deliverer however long.
pub async fn declare_endpoint_queue(
    connection: &Connection,
    queue_type: QueueType,
    subscription_id: &str,
) -> Result<String, AmqpError> {
    let name = endpoint_queue(subscription_id);
    let mut args = work_queue_args(queue_type, DEAD_QUEUE);
    args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    if queue_type == QueueType::Classic {
        args.insert("x-queue-version".into(), AMQPValue::LongLongInt(2));
    }
    let channel = connection.create_channel().await?;
    queue(&channel, &name, args).await?;
    let _ = channel.close(200, "endpoint queue declared".into()).await;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(n: i64) -> FieldTable {
        let mut headers = FieldTable::default();
        headers.insert("x-delivery-count".into(), AMQPValue::LongLongInt(n));
        headers
    }

    #[test]
    fn only_the_last_delivery_before_the_limit_counts_as_too_often() {
        assert_eq!(redelivered_too_often(None), None);
        assert_eq!(redelivered_too_often(Some(&FieldTable::default())), None);
        assert_eq!(redelivered_too_often(Some(&count(3))), None);
        assert_eq!(redelivered_too_often(Some(&count(19))), Some(19));
        assert_eq!(redelivered_too_often(Some(&count(25))), Some(25));
    }
}
