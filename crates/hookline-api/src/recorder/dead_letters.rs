//! The dead-letter recorder: `DeadLetter` messages from
//! `hookline.deliveries.dead` become rows of `dead_letters`.

use chrono::{DateTime, Utc};
use hookline_amqp::header_str;
use hookline_amqp::names::{DEAD_QUEUE, ERROR_HEADER};
use hookline_model::ids;
use hookline_proto::{DeadLetter, Message as _, SCHEMA_VERSION};
use lapin::message::Delivery;
use lapin::types::FieldTable;
use sqlx::PgConnection;

use super::consume::Sink;
use crate::metrics::Metrics;
use crate::store::dead_letters::{self, DeadLetterRow};
use crate::store::{clean, parked};

/// Header RabbitMQ adds when it dead-letters a message itself (a quorum
/// queue's delivery limit): such a message is a raw task or batch, not a
/// `DeadLetter`, whatever its bytes happen to decode as.
const FIRST_DEATH_QUEUE: &str = "x-first-death-queue";

/// Writes dead letters into `dead_letters`, where the api lists and replays them.
pub(crate) struct DeadLetterSink {
    /// Dead-letter and parked counts.
    pub metrics: Metrics,
}

/// Counts of one committed write.
pub(crate) struct Outcome {
    recorded: u64,
    parked: u64,
}

/// Reads one message as a dead letter, or says why it is not one; the
/// deliverer's `x-hookline-error` header, when present, is the reason.
pub(crate) fn decode(
    data: &[u8],
    headers: Option<&FieldTable>,
    now: DateTime<Utc>,
) -> Result<DeadLetterRow, String> {
    let why = |detail: String| match header_str(headers, ERROR_HEADER) {
        Some(reason) => format!("{reason} ({detail})"),
        None => detail,
    };
    if let Some(queue) = header_str(headers, FIRST_DEATH_QUEUE) {
        return Err(why(format!(
            "dead-lettered by the broker from {queue} after too many redeliveries"
        )));
    }
    let dead =
        DeadLetter::decode(data).map_err(|e| why(format!("not a DeadLetter protobuf: {e}")))?;
    if dead.schema_version != SCHEMA_VERSION {
        return Err(why(format!(
            "DeadLetter schema_version {} (this build reads {SCHEMA_VERSION})",
            dead.schema_version
        )));
    }
    let Some(task) = dead.task else {
        return Err(why("a DeadLetter without its task".into()));
    };
    if task.delivery_id.is_empty() || task.tenant.is_empty() || task.subscription_id.is_empty() {
        return Err(why(
            "a DeadLetter whose task lacks delivery_id, tenant or subscription_id".into(),
        ));
    }
    Ok(DeadLetterRow {
        id: ids::new_id("dl"),
        tenant: clean(&task.tenant, 128),
        subscription_id: clean(&task.subscription_id, 128),
        delivery_id: clean(&task.delivery_id, 128),
        event_id: clean(&task.event_id, 256),
        event_type: clean(&task.event_type, 256),
        attempts: i32::try_from(dead.attempts).unwrap_or(i32::MAX),
        last_response_status: (dead.last_response_status != 0)
            .then(|| i32::try_from(dead.last_response_status).unwrap_or(0)),
        last_error: (!dead.last_error.is_empty()).then(|| clean(&dead.last_error, 2000)),
        // A redelivered message must produce the same `dead_at`, or the
        // unique (delivery_id, dead_at) index cannot tell it is a repeat.
        dead_at: DateTime::<Utc>::from_timestamp_millis(dead.dead_at_ms)
            .filter(|_| dead.dead_at_ms > 0)
            .unwrap_or(now),
        task: task.encode_to_vec(),
    })
}

impl Sink for DeadLetterSink {
    const QUEUE: &'static str = DEAD_QUEUE;
    // Dead letters are rare and each carries a whole task; a small window
    // is plenty.
    const PREFETCH: u16 = 16;
    const BATCH: usize = 16;
    type Outcome = Outcome;

    async fn write(
        &self,
        tx: &mut PgConnection,
        deliveries: &[Delivery],
    ) -> Result<Outcome, sqlx::Error> {
        let mut outcome = Outcome {
            recorded: 0,
            parked: 0,
        };
        for delivery in deliveries {
            match decode(
                &delivery.data,
                delivery.properties.headers().as_ref(),
                Utc::now(),
            ) {
                Ok(row) => {
                    if dead_letters::insert(tx, &row).await? {
                        outcome.recorded += 1;
                    }
                }
                Err(reason) => {
                    tracing::warn!(queue = DEAD_QUEUE, %reason, "parking a message that is not a dead letter");
                    parked::insert(tx, DEAD_QUEUE, &reason, &delivery.data).await?;
                    outcome.parked += 1;
                }
            }
        }
        Ok(outcome)
    }

    async fn committed(&self, outcome: Outcome) {
        self.metrics.dead_letters.inc_by(outcome.recorded);
        self.metrics.parked_messages.inc_by(outcome.parked);
    }
}

#[cfg(test)]
mod tests {
    use hookline_proto::DeliveryTask;
    use lapin::types::{AMQPValue, LongString};

    use super::*;

    fn task() -> DeliveryTask {
        DeliveryTask {
            schema_version: SCHEMA_VERSION,
            delivery_id: "msg_1".into(),
            tenant: "acme".into(),
            event_id: "evt_1".into(),
            event_type: "lead.created".into(),
            subscription_id: "sub_1".into(),
            ..DeliveryTask::default()
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> FieldTable {
        let mut table = FieldTable::default();
        for (k, v) in pairs {
            table.insert(
                (*k).into(),
                AMQPValue::LongString(LongString::from(v.to_string())),
            );
        }
        table
    }

    #[test]
    fn a_dead_letter_becomes_a_row_with_its_last_outcome() {
        let dead = DeadLetter {
            schema_version: SCHEMA_VERSION,
            task: Some(task()),
            attempts: 7,
            last_response_status: 503,
            last_error: "busy".into(),
            dead_at_ms: 1_768_392_443_884,
        };
        let row = decode(&dead.encode_to_vec(), None, Utc::now()).unwrap();
        assert_eq!((row.attempts, row.last_response_status), (7, Some(503)));
        assert_eq!(row.dead_at.timestamp_millis(), 1_768_392_443_884);
        assert_eq!(DeliveryTask::decode(row.task.as_slice()).unwrap(), task());
        assert!(row.id.starts_with("dl_"));
    }

    #[test]
    fn an_undecodable_message_is_refused_with_the_deliverers_reason() {
        let h = headers(&[(ERROR_HEADER, "task does not decode")]);
        let reason = decode(&[0xff, 0x01], Some(&h), Utc::now()).unwrap_err();
        assert!(reason.starts_with("task does not decode"), "{reason}");
    }

    #[test]
    fn a_message_the_broker_dead_lettered_is_refused() {
        let dead = DeadLetter {
            schema_version: SCHEMA_VERSION,
            task: Some(task()),
            ..DeadLetter::default()
        };
        let h = headers(&[(FIRST_DEATH_QUEUE, "hookline.deliveries")]);
        let reason = decode(&dead.encode_to_vec(), Some(&h), Utc::now()).unwrap_err();
        assert!(reason.contains("hookline.deliveries"), "{reason}");
    }

    #[test]
    fn a_dead_letter_without_a_task_or_of_another_version_is_refused() {
        let empty = DeadLetter {
            schema_version: SCHEMA_VERSION,
            ..DeadLetter::default()
        };
        assert!(decode(&empty.encode_to_vec(), None, Utc::now()).is_err());
        let future = DeadLetter {
            schema_version: 99,
            task: Some(task()),
            ..DeadLetter::default()
        };
        assert!(decode(&future.encode_to_vec(), None, Utc::now()).is_err());
    }
}
