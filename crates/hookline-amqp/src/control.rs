//! Listening to `hookline.control`: every fanout and deliverer instance gets
//! its own exclusive, auto-deleted queue, so each sees every change.

use futures_util::StreamExt;
use hookline_proto::{ChangeKind, Message, SubscriptionChanged};
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection, Consumer};
use prometheus::IntCounter;
use tokio_util::sync::CancellationToken;

use crate::error::AmqpError;
use crate::names::{CONTROL_EXCHANGE, CONTROL_LOG_QUEUE};

/// Declares this instance's control queue and consumes it. Keep the channel
/// alive as long as the consumer.
pub async fn subscribe_control(
    connection: &Connection,
    tag: &str,
) -> Result<(Channel, Consumer), AmqpError> {
    let channel = connection.create_channel().await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let name = queue.name().as_str().to_string();
    channel
        .queue_bind(
            name.as_str().into(),
            CONTROL_EXCHANGE.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let consumer = channel
        .basic_consume(
            name.as_str().into(),
            tag.into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok((channel, consumer))
}

/// Consumes the control log (`hookline.control.log`) from its oldest kept
/// change onwards, then live. Stream consumers must ack (acks are credit,
/// not removal), so every message is acked as it is read.
pub async fn subscribe_control_log(
    connection: &Connection,
    tag: &str,
) -> Result<(Channel, Consumer), AmqpError> {
    let channel = connection.create_channel().await?;
    channel.basic_qos(500, BasicQosOptions::default()).await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-stream-offset".into(),
        AMQPValue::LongString(LongString::from("first")),
    );
    let consumer = channel
        .basic_consume(
            CONTROL_LOG_QUEUE.into(),
            tag.into(),
            BasicConsumeOptions::default(),
            args,
        )
        .await?;
    Ok((channel, consumer))
}

/// One message read from a control queue, with the change it carries when
/// this version understands it.
pub struct ControlMessage {
    /// The raw delivery, for callers that must ack it (a stream).
    pub delivery: Delivery,
    /// The change and its kind; `None` for a message this version does not
    /// understand, which has been counted and logged already.
    pub change: Option<(SubscriptionChanged, ChangeKind)>,
}

/// The next message of a control consumer. Once `token` is cancelled it
/// never returns: the service's task consumers decide when a session ends,
/// and the control listener just stops reading. The stream failing or
/// ending is the connection failing, so it is an error for `supervise`.
pub async fn next_control(
    consumer: &mut Consumer,
    token: &CancellationToken,
    ignored: &IntCounter,
) -> Result<ControlMessage, AmqpError> {
    let next = tokio::select! {
        next = consumer.next() => next,
        _ = token.cancelled() => std::future::pending().await,
    };
    let delivery = match next {
        Some(Ok(delivery)) => delivery,
        Some(Err(e)) => return Err(e.into()),
        None => return Err(AmqpError::Unavailable("control consumer ended".into())),
    };
    let change = SubscriptionChanged::decode(delivery.data.as_slice())
        .ok()
        .and_then(|change| change.change_kind().map(|kind| (change, kind)));
    if change.is_none() {
        ignored.inc();
        tracing::warn!("ignoring a control message this version does not understand");
    }
    Ok(ControlMessage { delivery, change })
}
