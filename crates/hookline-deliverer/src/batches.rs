//! Batched delivery (`batch` option): the consumer of a batching
//! subscription's endpoint queue takes up to `max_events` of its tasks, or
//! whatever arrived by `max_wait` after the first one was matched, or as
//! many as fit `delivery.max_batch_bytes`, and sends them as one request
//! `{"payload": [ … ]}` under a `webhook-id` derived from them.
//!
//! A batch that fails travels the retry ladder whole, as a
//! [`DeliveryBatch`] (AMQP `type` [`DELIVERY_BATCH_TYPE`]), so every retry
//! sends the same bytes under the same id; a FIFO subscription's batch is
//! retried in place instead. A batch that never succeeds parks one dead
//! letter per event, and history has one attempt per event, each with the
//! batch's id.
//!
//! At-least-once: a batch's messages are acked (one `multiple` ack) only
//! after its outcome — the retry or the dead letters — and every event's
//! attempt record are confirmed. A deliverer that dies before that leaves
//! them unacked: the broker hands them to the next consumer, which batches
//! them again, perhaps with other neighbours (so under another id); the
//! receiver deduplicates by event `id`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use futures_util::StreamExt;
use hookline_amqp::names::wait_queue;
use hookline_amqp::{protobuf_properties, AmqpError};
use hookline_config::format_duration;
use hookline_model::retry::Classification;
use hookline_model::trace::TraceParent;
use hookline_proto::{
    DeliveryBatch, DeliveryTask, EndpointPolicy, Message, DELIVERY_BATCH_TYPE, SCHEMA_VERSION,
};
use hookline_send::record::attempt_record;
use hookline_send::{batch, SendResult};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Consumer};
use tokio::time::Instant;
use tracing::Instrument;

use crate::consume::{Ended, Origin, Source, TaskConsumers};
use crate::endpoints::EndpointRule;
use crate::handle::{Disposition, Handler, Slots, FIFO_MAX_HOLD};
use crate::outcome::{decide, NextHop};

/// How one subscription's events are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRule {
    /// At most this many events per request.
    pub max_events: usize,
    /// Sent at the latest this long after the first event's match.
    pub max_wait: Duration,
}

impl BatchRule {
    /// The rule of `policy`, when it batches.
    pub fn of(policy: &EndpointPolicy) -> Option<Self> {
        policy.batches().then(|| Self {
            max_events: (policy.batch_max_events as usize).clamp(1, 1000),
            max_wait: Duration::from_millis(u64::from(policy.batch_max_wait_ms)),
        })
    }
}

/// Once a batch's wait is over, tasks already on their way still join it
/// while each arrives this soon after the last: a backlog goes out in full
/// batches, not in whatever the first frame held.
const LINGER: Duration = Duration::from_millis(2);

/// Whether a message on a deliveries queue is a [`DeliveryBatch`].
pub fn is_batch(properties: &BasicProperties) -> bool {
    properties
        .kind()
        .as_ref()
        .is_some_and(|kind| kind.as_str() == DELIVERY_BATCH_TYPE)
}

/// The properties a [`DeliveryBatch`] is published with.
pub fn batch_properties() -> BasicProperties {
    protobuf_properties().with_type(DELIVERY_BATCH_TYPE.into())
}

/// The next message, or why there is none.
enum Next {
    Message(Box<Delivery>),
    /// The batch's wait (or the linger after it) is over.
    Deadline,
    End(Result<Ended, AmqpError>),
}

/// Consumes a batching subscription's endpoint queue until it ends.
pub(crate) async fn consume(
    consumers: &TaskConsumers,
    source: Source,
    rule: Arc<EndpointRule>,
    batching: BatchRule,
) -> Result<Ended, AmqpError> {
    let channel = consumers.connection.create_channel().await?;
    let prefetch = source.prefetch.clamp(1, u16::MAX as usize) as u16;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("{}.{}", source.queue, hookline_model::ids::new_id("c"));
    let mut consumer = channel
        .basic_consume(
            source.queue.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let result =
        collect_and_send(consumers, &channel, &mut consumer, &source, rule, batching).await;
    // The single active consumer hands over only now, with every batch it
    // sent settled; closing requeues what it was still collecting.
    let _ = channel.close(200, "batch consumer stopped".into()).await;
    result
}

async fn collect_and_send(
    consumers: &TaskConsumers,
    channel: &Channel,
    consumer: &mut Consumer,
    source: &Source,
    rule: Arc<EndpointRule>,
    batching: BatchRule,
) -> Result<Ended, AmqpError> {
    let handler = &consumers.handler;
    let origin = Origin::Endpoint(rule.clone());
    let slots = Slots {
        all: consumers.all_slots.clone(),
        own: source.own_slots.clone(),
    };
    let max_bytes = handler.max_batch_bytes;
    // A task that did not fit the last batch starts the next one.
    let mut carried: Option<(u64, DeliveryTask)> = None;
    loop {
        let (tag, first) = match carried.take() {
            Some(held) => held,
            None => match next(consumer, consumers, source, None).await {
                Next::Message(delivery) => {
                    match take(handler, channel, *delivery, &slots, &origin).await? {
                        Some(held) => held,
                        None => continue,
                    }
                }
                Next::Deadline => continue,
                Next::End(end) => return end,
            },
        };
        let deadline = deadline_of(&first, batching.max_wait);
        let mut bytes = batch::entry(&first).len();
        let mut last_tag = tag;
        let mut tasks = vec![first];
        while tasks.len() < batching.max_events {
            let now = Instant::now();
            let until = if now >= deadline {
                now + LINGER
            } else {
                deadline
            };
            let delivery = match next(consumer, consumers, source, Some(until)).await {
                Next::Message(delivery) => delivery,
                Next::Deadline => break,
                // What was collected is requeued when the channel closes.
                Next::End(end) => return end,
            };
            let (tag, task) = match take(handler, channel, *delivery, &slots, &origin).await? {
                Some(held) => held,
                None => continue,
            };
            let entry = batch::entry(&task).len();
            if batch::body_len(tasks.len() + 1, bytes + entry) > max_bytes {
                carried = Some((tag, task));
                break;
            }
            bytes += entry;
            last_tag = tag;
            tasks.push(task);
        }
        if !handler.publisher.is_usable() {
            return Err(AmqpError::Unavailable(
                "the publishing channel closed".into(),
            ));
        }
        let batch = DeliveryBatch {
            schema_version: SCHEMA_VERSION,
            batch_id: batch::batch_id(&tasks[0].subscription_id, &tasks),
            attempt: 1,
            tasks,
        };
        let sent = send_batch(handler, batch, &slots, Some(&rule));
        let disposition = consumers.inflight.track_future(sent).await;
        // Every message of the batch has a tag up to `last_tag`, and every
        // lower tag not in it was settled on its own already.
        settle(channel, last_tag, disposition, true).await?;
    }
}

/// Waits for the next message until `until` (none: however long, but at
/// most the source's idle time).
async fn next(
    consumer: &mut Consumer,
    consumers: &TaskConsumers,
    source: &Source,
    until: Option<Instant>,
) -> Next {
    let deadline = async {
        match until {
            Some(until) => tokio::time::sleep_until(until).await,
            None => std::future::pending().await,
        }
    };
    let idle = async {
        match (until, source.idle) {
            (None, Some(idle)) => tokio::time::sleep(idle).await,
            _ => std::future::pending().await,
        }
    };
    let stop = async {
        match &source.stop {
            Some(stop) => stop.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        _ = consumers.token.cancelled() => Next::End(Ok(Ended::Cancelled)),
        _ = stop => Next::End(Ok(Ended::Cancelled)),
        next = consumer.next() => match next {
            Some(Ok(delivery)) => Next::Message(Box::new(delivery)),
            Some(Err(e)) => Next::End(Err(AmqpError::from(e))),
            None => Next::End(Ok(Ended::Gone)),
        },
        _ = deadline => Next::Deadline,
        _ = idle => Next::End(Ok(Ended::Idle)),
    }
}

/// Decodes one message: a task to batch (with its tag), or `None` for one
/// settled here (undecodable, redelivered too often, superseded, a retried
/// batch, a test send or an unrenderable task, which go alone).
async fn take(
    handler: &Handler,
    channel: &Channel,
    delivery: Delivery,
    slots: &Slots,
    origin: &Origin,
) -> Result<Option<(u64, DeliveryTask)>, AmqpError> {
    let tag = delivery.delivery_tag;
    if is_batch(&delivery.properties) {
        let headers = delivery.properties.headers().as_ref();
        let disposition = retried(handler, &delivery.data, headers, slots, origin).await;
        settle(channel, tag, disposition, false).await?;
        return Ok(None);
    }
    match handler
        .admit(&delivery.data, delivery.properties.headers().as_ref())
        .await
    {
        Ok(task)
            if !task.test && task.challenge_token.is_empty() && task.render_error.is_empty() =>
        {
            Ok(Some((tag, task)))
        }
        Ok(_) => {
            let disposition = handler
                .handle(&delivery.data, &delivery.properties, slots, origin)
                .await;
            settle(channel, tag, disposition, false).await?;
            Ok(None)
        }
        Err(disposition) => {
            settle(channel, tag, disposition, false).await?;
            Ok(None)
        }
    }
}

/// Acks or requeues `tag` (with `multiple`, every unsettled tag up to it).
async fn settle(
    channel: &Channel,
    tag: u64,
    disposition: Disposition,
    multiple: bool,
) -> Result<(), AmqpError> {
    match disposition {
        Disposition::Ack => channel.basic_ack(tag, BasicAckOptions { multiple }).await?,
        Disposition::Requeue => {
            let options = BasicNackOptions {
                multiple,
                requeue: true,
            };
            channel.basic_nack(tag, options).await?
        }
    }
    Ok(())
}

/// When a batch starting with `first` must be sent: `max_wait` after fanout
/// matched it (after now, when it carries no match time), never later than
/// `max_wait` from now whatever the clocks say.
fn deadline_of(first: &DeliveryTask, max_wait: Duration) -> Instant {
    let now = Instant::now();
    if first.matched_at_ms <= 0 {
        return now + max_wait;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let wait_ms = max_wait.as_millis() as i64;
    let left = (first.matched_at_ms + wait_ms - now_ms).clamp(0, wait_ms);
    now + Duration::from_millis(left as u64)
}

/// A batch that came back from the retry ladder (or a replay of one). On
/// a shared queue it goes back into its endpoint queue while its
/// subscription still has a policy, so the policy paces it; otherwise it
/// is sent as it is.
pub(crate) async fn retried(
    handler: &Handler,
    payload: &[u8],
    headers: Option<&FieldTable>,
    slots: &Slots,
    origin: &Origin,
) -> Disposition {
    let mut batch = match DeliveryBatch::decode(payload) {
        Ok(batch) if batch.schema_version == SCHEMA_VERSION && !batch.tasks.is_empty() => batch,
        Ok(batch) => {
            let reason = format!(
                "a DeliveryBatch of schema_version {} with {} tasks",
                batch.schema_version,
                batch.tasks.len()
            );
            return handler.park_raw(payload, &reason).await;
        }
        Err(e) => {
            return handler
                .park_raw(payload, &format!("not a DeliveryBatch: {e}"))
                .await
        }
    };
    batch.tasks.retain_mut(|task| !handler.superseded(task));
    if batch.tasks.is_empty() {
        return Disposition::Ack;
    }
    if let Some(count) = hookline_amqp::redelivered_too_often(headers) {
        tracing::error!(batch_id = %batch.batch_id, "parking a batch redelivered too often, one dead letter per event");
        let result = crate::outcome::redelivered(count);
        return match after_batch(handler, &batch, &result, None, false).await {
            Ok(_) => Disposition::Ack,
            Err(_) => Disposition::Requeue,
        };
    }
    match origin {
        Origin::Endpoint(rule) => send_batch(handler, batch, slots, Some(rule)).await,
        _ if batch.tasks[0].active_policy().is_some() => {
            match handler.endpoints.route_batch(&batch).await {
                Ok(()) => {
                    handler.metrics.to_endpoint_queues.inc();
                    Disposition::Ack
                }
                Err(error) => {
                    tracing::warn!(batch_id = %batch.batch_id, %error, "could not move a batch into its endpoint queue; leaving it for redelivery");
                    Disposition::Requeue
                }
            }
        }
        _ => send_batch(handler, batch, slots, None).await,
    }
}

/// The request of `batch`: its newest task's shape (URL, credentials,
/// signature) with the batch's body and id.
fn request_of(batch: &DeliveryBatch) -> DeliveryTask {
    let newest = batch
        .tasks
        .iter()
        .max_by_key(|task| task.revision)
        .expect("a batch has tasks");
    let mut request = newest.clone();
    request.body = batch::body(&batch.tasks).into();
    request.delivery_id = batch.batch_id.clone();
    request.event_id = batch.tasks[0].event_id.clone();
    request.attempt = batch.attempt;
    request
}

/// Sends `batch` until its outcome is confirmed: the disposition of the
/// messages that carried it.
async fn send_batch(
    handler: &Handler,
    mut batch: DeliveryBatch,
    slots: &Slots,
    rule: Option<&EndpointRule>,
) -> Disposition {
    loop {
        let request = request_of(&batch);
        let (result, trace, span) = match handler.paced_send(&request, slots, true, rule).await {
            Ok(sent) => sent,
            Err(disposition) => return disposition,
        };
        let fifo = rule.is_some()
            && batch
                .tasks
                .iter()
                .any(|task| task.active_policy().is_some_and(|p| p.fifo));
        match after_batch(handler, &batch, &result, Some(trace), fifo)
            .instrument(span)
            .await
        {
            Ok(None) => return Disposition::Ack,
            Ok(Some((delay, attempt))) => {
                tokio::select! {
                    _ = tokio::time::sleep(delay.min(FIFO_MAX_HOLD)) => {}
                    _ = handler.shutdown.cancelled() => return Disposition::Requeue,
                }
                batch.attempt = attempt;
                batch.tasks.retain_mut(|task| !handler.superseded(task));
                if batch.tasks.is_empty() {
                    return Disposition::Ack;
                }
            }
            Err(error) => {
                tracing::warn!(batch_id = %batch.batch_id, subscription_id = %batch.tasks[0].subscription_id, attempt = batch.attempt, %error, "could not record a batch's outcome; leaving it for redelivery");
                return Disposition::Requeue;
            }
        }
    }
}

/// The next hop of the whole batch, then one attempt record per event.
/// Ok means every publish was confirmed (the caller acks only then); `Some`
/// is a FIFO batch to send again, in place, after the delay as attempt.
async fn after_batch(
    handler: &Handler,
    batch: &DeliveryBatch,
    result: &SendResult,
    trace: Option<TraceParent>,
    in_place: bool,
) -> Result<Option<(Duration, u32)>, AmqpError> {
    let now = Utc::now();
    let hop = decide(batch.attempt, result, &handler.policy);
    let span = tracing::Span::current();
    let tasks: Vec<DeliveryTask> = batch
        .tasks
        .iter()
        .map(|task| DeliveryTask {
            attempt: batch.attempt,
            ..task.clone()
        })
        .collect();
    let mut again = None;
    match hop {
        NextHop::Delivered | NextHop::Gone | NextHop::Unanswered => {}
        NextHop::Retry { delay, attempt } => {
            let shown = if in_place {
                again = Some((delay, attempt));
                format_duration(delay.min(FIFO_MAX_HOLD))
            } else {
                let next = DeliveryBatch {
                    attempt,
                    ..batch.clone()
                };
                handler
                    .publisher
                    .publish_confirmed(
                        "",
                        &wait_queue(delay),
                        &next.encode_to_vec(),
                        batch_properties(),
                    )
                    .await?;
                format_duration(delay)
            };
            span.record("hookline.retry_delay", shown.as_str());
            handler.metrics.retries.with_label_values(&[&shown]).inc();
        }
        NextHop::Park => {
            let parks = tasks
                .iter()
                .map(|task| handler.park_dead(task, result, now));
            futures_util::future::try_join_all(parks).await?;
        }
    }
    match result.classification {
        Classification::Succeeded => {
            for task in &tasks {
                let lag = (now.timestamp_millis() - task.occurred_at_ms).max(0) as f64 / 1000.0;
                handler.metrics.event_to_delivery.observe(lag);
            }
        }
        Classification::Unsendable => {
            handler.metrics.unopenable.inc();
            handler.readiness.set(crate::handle::KEYS, false);
            tracing::error!(batch_id = %batch.batch_id, error = ?result.error, "a batch's credentials do not open with the configured keys; parking its events as dead letters (replay them once the keys are fixed)");
        }
        _ => {}
    }
    let status = hop.status();
    let reports = tasks.iter().map(|task| {
        let mut record = attempt_record(task, result, status, now);
        record.batch_id = batch.batch_id.clone();
        record.traceparent = trace.map(|t| t.to_string()).unwrap_or_default();
        handler.report(task, result, status, record)
    });
    futures_util::future::try_join_all(reports).await?;
    Ok(again)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_without_events_does_not_batch_and_sizes_are_bounded() {
        assert_eq!(BatchRule::of(&EndpointPolicy::default()), None);
        let policy = EndpointPolicy {
            batch_max_events: 5000,
            batch_max_wait_ms: 2000,
            ..EndpointPolicy::default()
        };
        let rule = BatchRule::of(&policy).expect("batches");
        assert_eq!(rule.max_events, 1000);
        assert_eq!(rule.max_wait, Duration::from_secs(2));
    }

    #[test]
    fn the_wait_counts_from_the_match_and_never_past_max_wait_from_now() {
        let wait = Duration::from_secs(2);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let at = |matched_at_ms| DeliveryTask {
            matched_at_ms,
            ..DeliveryTask::default()
        };
        let left = |task| deadline_of(&task, wait).saturating_duration_since(Instant::now());
        assert!(left(at(0)) > Duration::from_millis(1900), "no match time");
        let half = left(at(now_ms - 1000));
        assert!(half <= Duration::from_millis(1000) && half > Duration::from_millis(800));
        assert_eq!(left(at(now_ms - 5000)), Duration::ZERO, "long past");
        assert!(left(at(now_ms + 60_000)) <= wait, "a fast clock elsewhere");
    }
}
