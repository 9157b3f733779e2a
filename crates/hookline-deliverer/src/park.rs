//! Parking: a task that will never be delivered goes to the dead queue,
//! for replay, and a message that is not a task goes there as it came.

use chrono::Utc;
use hookline_amqp::names::{DEAD_QUEUE, ERROR_HEADER};
use hookline_amqp::{protobuf_properties, AmqpError};
use hookline_proto::{DeadLetter, DeliveryTask, Message, SCHEMA_VERSION};
use hookline_send::SendResult;
use lapin::types::{AMQPValue, FieldTable};

use crate::handle::{Disposition, Handler};

fn error_headers(reason: &str) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert(
        ERROR_HEADER.into(),
        AMQPValue::LongString(reason.to_string().into()),
    );
    headers
}

impl Handler {
    /// Parks the task as a dead letter, without its credentials: a replay
    /// takes the subscription's current ones, so the dead queue and the
    /// `dead_letters` table never hold a secret, sealed or not.
    pub(crate) async fn park_dead(
        &self,
        task: &DeliveryTask,
        result: &SendResult,
        now: chrono::DateTime<Utc>,
    ) -> Result<(), AmqpError> {
        let mut parked = task.clone();
        hookline_send::credentials::strip(&mut parked);
        let dead = DeadLetter {
            schema_version: SCHEMA_VERSION,
            task: Some(parked),
            attempts: task.attempt,
            last_response_status: result.response_status.map(u32::from).unwrap_or(0),
            last_error: result.error.clone().unwrap_or_default(),
            dead_at_ms: now.timestamp_millis(),
        };
        self.publisher
            .publish_confirmed("", DEAD_QUEUE, &dead.encode_to_vec(), protobuf_properties())
            .await
    }

    /// Parks a message that cannot be decoded, never looping on it.
    pub(crate) async fn park_raw(&self, payload: &[u8], reason: &str) -> Disposition {
        tracing::error!(reason, "parking an undecodable delivery task");
        let properties = protobuf_properties().with_headers(error_headers(reason));
        match self
            .publisher
            .publish_confirmed("", DEAD_QUEUE, payload, properties)
            .await
        {
            Ok(()) => Disposition::Ack,
            Err(_) => Disposition::Requeue,
        }
    }
}
