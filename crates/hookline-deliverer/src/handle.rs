//! What happens to one delivery task: send it, then ack, retry or park.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use hookline_amqp::names::{wait_queue, DEAD_QUEUE, ERROR_HEADER, OUTCOMES_EXCHANGE};
use hookline_amqp::{AmqpError, ConfirmedPublisher};
use hookline_config::format_duration;
use hookline_model::retry::{Classification, RetryPolicy, Step};
use hookline_proto::{AttemptStatus, DeadLetter, DeliveryTask, Message, SCHEMA_VERSION};
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;

use crate::attempts::RecordSink;
use crate::metrics::Metrics;
use crate::record::{attempt_json, attempt_record, status_name};
use crate::sender::{SendResult, Sender};

/// Everything needed to handle tasks on one broker session.
pub struct Handler {
    /// The HTTP side.
    pub sender: Sender,
    /// The ladder.
    pub policy: RetryPolicy,
    /// Confirmed publishes for retries, dead letters and outcomes.
    pub publisher: ConfirmedPublisher,
    /// Attempt history.
    pub records: RecordSink,
    /// Metric handles.
    pub metrics: Metrics,
    /// Publish successes to `hookline.outcomes` too.
    pub publish_successes: bool,
    /// Per-subscription in-flight cap.
    pub max_inflight_per_subscription: usize,
    /// Sends in flight per subscription, for the cap.
    pub inflight: Arc<Mutex<HashMap<String, usize>>>,
}

/// What the consumer does with the message afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The next hop is confirmed: ack.
    Ack,
    /// A publish failed (broker trouble): leave it for redelivery.
    Requeue,
}

/// Decrements the subscription's in-flight count when the send is over.
struct InflightSlot {
    map: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for InflightSlot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock() {
            if let Some(n) = map.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&self.key);
                }
            }
        }
    }
}

fn error_headers(reason: &str) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert(
        ERROR_HEADER.into(),
        AMQPValue::LongString(reason.to_string().into()),
    );
    headers
}

fn protobuf() -> BasicProperties {
    BasicProperties::default().with_content_type("application/x-protobuf".into())
}

impl Handler {
    /// Handles one raw message from a deliveries queue.
    pub async fn handle(&self, payload: &[u8]) -> Disposition {
        let task = match DeliveryTask::decode(payload) {
            Ok(task) if task.schema_version == SCHEMA_VERSION => task,
            Ok(task) => {
                return self
                    .park_raw(
                        payload,
                        &format!("unsupported schema_version {}", task.schema_version),
                    )
                    .await
            }
            Err(e) => {
                return self
                    .park_raw(payload, &format!("not a DeliveryTask: {e}"))
                    .await
            }
        };
        let Some(_slot) = self.take_slot(&task.subscription_id) else {
            return self.defer(&task).await;
        };
        self.metrics.inflight.inc();
        let result = self.sender.send(&task).await;
        self.metrics.inflight.dec();
        match self.after_send(&task, &result).await {
            Ok(()) => Disposition::Ack,
            Err(error) => {
                tracing::warn!(event_id = %task.event_id, subscription_id = %task.subscription_id, attempt = task.attempt, %error, "could not record the attempt's outcome; leaving the task for redelivery");
                Disposition::Requeue
            }
        }
    }

    fn take_slot(&self, subscription_id: &str) -> Option<InflightSlot> {
        let mut map = self.inflight.lock().ok()?;
        let count = map.entry(subscription_id.to_string()).or_insert(0);
        if *count >= self.max_inflight_per_subscription {
            return None;
        }
        *count += 1;
        Some(InflightSlot {
            map: self.inflight.clone(),
            key: subscription_id.to_string(),
        })
    }

    /// The subscription is at its in-flight cap: wait on the first rung
    /// instead of holding a worker slot; the attempt number is unchanged.
    async fn defer(&self, task: &DeliveryTask) -> Disposition {
        let Some(delay) = self
            .policy
            .delays()
            .first()
            .copied()
            .or(Some(Duration::from_secs(1)))
        else {
            return Disposition::Requeue;
        };
        self.metrics.deferred.inc();
        match self
            .publisher
            .publish_confirmed("", &wait_queue(delay), &task.encode_to_vec(), protobuf())
            .await
        {
            Ok(()) => Disposition::Ack,
            Err(_) => Disposition::Requeue,
        }
    }

    /// Parks a message that cannot be decoded, never looping on it.
    async fn park_raw(&self, payload: &[u8], reason: &str) -> Disposition {
        tracing::error!(reason, "parking an undecodable delivery task");
        let properties = protobuf().with_headers(error_headers(reason));
        match self
            .publisher
            .publish_confirmed("", DEAD_QUEUE, payload, properties)
            .await
        {
            Ok(()) => Disposition::Ack,
            Err(_) => Disposition::Requeue,
        }
    }

    /// The next hop for this attempt, then its history record. Returning Ok
    /// means every publish was confirmed: this is where at-least-once is
    /// decided, since the caller acks the task only then.
    async fn after_send(&self, task: &DeliveryTask, result: &SendResult) -> Result<(), AmqpError> {
        let now = Utc::now();
        let status = match result.classification {
            Classification::Succeeded => {
                let lag = (now.timestamp_millis() - task.occurred_at_ms).max(0) as f64 / 1000.0;
                if !task.test {
                    self.metrics.event_to_delivery.observe(lag);
                }
                AttemptStatus::Succeeded
            }
            Classification::Gone => AttemptStatus::Failed,
            Classification::Failed => match self
                .policy
                .after_failure(task.attempt, result.retry_after)
            {
                Step::Retry { delay, attempt, .. } => {
                    let mut next = task.clone();
                    next.attempt = attempt;
                    self.publisher
                        .publish_confirmed(
                            "",
                            &wait_queue(delay),
                            &next.encode_to_vec(),
                            protobuf(),
                        )
                        .await?;
                    self.metrics
                        .retries
                        .with_label_values(&[&format_duration(delay)])
                        .inc();
                    AttemptStatus::Failed
                }
                Step::Exhausted => {
                    let dead = DeadLetter {
                        schema_version: SCHEMA_VERSION,
                        task: Some(task.clone()),
                        attempts: task.attempt,
                        last_response_status: result.response_status.map(u32::from).unwrap_or(0),
                        last_error: result.error.clone().unwrap_or_default(),
                        dead_at_ms: now.timestamp_millis(),
                    };
                    self.publisher
                        .publish_confirmed("", DEAD_QUEUE, &dead.encode_to_vec(), protobuf())
                        .await?;
                    AttemptStatus::Dead
                }
            },
        };
        let outcome = status_name(status);
        self.metrics
            .deliveries
            .with_label_values(&[outcome, result.status_class.as_str()])
            .inc();
        self.metrics
            .duration
            .with_label_values(&[outcome])
            .observe(result.duration.as_secs_f64());
        tracing::info!(
            event_id = %task.event_id,
            subscription_id = %task.subscription_id,
            attempt = task.attempt,
            outcome,
            response_status = result.response_status,
            duration_ms = result.duration.as_millis() as u64,
            "delivery attempt finished"
        );
        let record = attempt_record(task, result, status, now);
        if status != AttemptStatus::Succeeded || self.publish_successes {
            let body = serde_json::to_vec(&attempt_json(&record)).unwrap_or_default();
            let key = format!("{outcome}.{}", task.event_type);
            let properties =
                BasicProperties::default().with_content_type("application/json".into());
            self.publisher
                .broadcast(OUTCOMES_EXCHANGE, &key, &body, properties)
                .await?
                .confirmed()
                .await?;
        }
        self.records.record(record).await
    }
}
