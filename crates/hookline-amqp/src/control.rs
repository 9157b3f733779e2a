//! Listening to `hookline.control`: every fanout and deliverer instance gets
//! its own exclusive, auto-deleted queue, so each sees every change.

use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection, Consumer};

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
            "",
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
            &name,
            CONTROL_EXCHANGE,
            "",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let consumer = channel
        .basic_consume(
            &name,
            tag,
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
        .basic_consume(CONTROL_LOG_QUEUE, tag, BasicConsumeOptions::default(), args)
        .await?;
    Ok((channel, consumer))
}
