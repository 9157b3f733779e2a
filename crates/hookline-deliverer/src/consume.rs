//! The consume loop: takes tasks from one queue, hands each to the
//! handler on a slot of its own, and settles (acks or requeues) them in few
//! frames. It knows nothing of lanes or control: the session and the
//! supervisors say which queue to consume and how.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hookline_amqp::{AckLedger, AmqpError};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::endpoints::EndpointRule;
use crate::handle::{Disposition, Handler, Slots};

/// What the settler hears of one message: the handler's [`Disposition`]
/// is the decision, this only adds the delivery tag and the start (the
/// ledger acks in tag order, so it must know what is still running).
enum Settle {
    /// The message arrived and its handling started.
    Started(u64),
    /// The handler decided.
    Finished(u64, Disposition),
}

/// Acks at most this long after a send finished.
const ACK_DELAY: Duration = Duration::from_millis(5);
/// A finished tag above a slow in-flight one is acked alone after this.
const ACK_MAX_WAIT: Duration = Duration::from_millis(20);

/// Where a consumer takes its tasks from.
pub struct Source {
    /// `hookline.deliveries` or one subscription's lane.
    pub queue: String,
    /// Unacked messages the broker may hand over.
    pub prefetch: usize,
    /// A slot pool of this source's own besides the deliverer-wide one.
    pub own_slots: Option<Arc<Semaphore>>,
    /// Which kind of queue it is, which decides how its tasks wait.
    pub origin: Origin,
    /// Stop after this long without a message.
    pub idle: Option<Duration>,
    /// Stops this consumer alone (an endpoint queue's policy changed).
    pub stop: Option<CancellationToken>,
}

/// Where a task was taken from.
#[derive(Clone, Debug)]
pub enum Origin {
    /// A shared queue: a task with an endpoint policy moves to its endpoint
    /// queue, a saturated subscription's task to its slow lane.
    Shared,
    /// A slow lane: its tasks wait for their subscription however long.
    Lane,
    /// An endpoint queue, taken out under its rule.
    Endpoint(Arc<EndpointRule>),
}

impl Source {
    /// One of the shared queues.
    pub(crate) fn queue(queue: &str, prefetch: usize, own_slots: Option<Arc<Semaphore>>) -> Self {
        Self {
            queue: queue.to_string(),
            prefetch,
            own_slots,
            origin: Origin::Shared,
            idle: None,
            stop: None,
        }
    }
}

/// Why a consumer stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The session is ending.
    Cancelled,
    /// No message for the source's idle time.
    Idle,
    /// The broker cancelled the consumer (its queue was deleted).
    Gone,
}

/// What every consumer of one session shares.
#[derive(Clone)]
pub struct TaskConsumers {
    /// The session's connection.
    pub connection: Arc<Connection>,
    /// The deliverer-wide slot pool.
    pub all_slots: Arc<Semaphore>,
    /// Handles each task.
    pub handler: Arc<Handler>,
    /// Every send started, so the session can wait for them.
    pub inflight: TaskTracker,
    /// The session's end.
    pub token: CancellationToken,
}

impl TaskConsumers {
    /// A shared queue: its consumer ending is the session's failure.
    pub(crate) async fn run(&self, source: Source) -> Result<(), AmqpError> {
        match self.consume(source).await? {
            Ended::Gone => Err(AmqpError::Unavailable("a consumer was cancelled".into())),
            _ => Ok(()),
        }
    }

    /// Consumes `source`, spawning one send per message that holds a slot.
    pub async fn consume(&self, source: Source) -> Result<Ended, AmqpError> {
        if let Origin::Endpoint(rule) = &source.origin {
            if let Some(batching) = rule.batch {
                let rule = rule.clone();
                return crate::batches::consume(self, source, rule, batching).await;
            }
        }
        let channel = self.connection.create_channel().await?;
        // Prefetch is twice the slots this consumer may use: every slot
        // busy, plus room for tasks waiting in a busy subscription's short
        // line. Beyond that, unstarted work stays in the queue for other
        // deliverers.
        channel
            .basic_qos(
                source.prefetch.min(u16::MAX as usize) as u16,
                BasicQosOptions::default(),
            )
            .await?;
        let queue = source.queue.as_str();
        let tag = format!("{queue}.{}", hookline_model::ids::new_id("c"));
        let mut consumer = channel
            .basic_consume(
                queue.into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let (settle, settled) = mpsc::unbounded_channel();
        // An endpoint queue hands over its next message only once the last
        // is acked (prefetch 1 for FIFO): ack at once there, not on the tick.
        let endpoint = matches!(source.origin, Origin::Endpoint(_));
        let settler = tokio::spawn(settle_loop(channel.clone(), settled, endpoint));
        let result = loop {
            let idle = async {
                match source.idle {
                    Some(idle) => tokio::time::sleep(idle).await,
                    None => std::future::pending().await,
                }
            };
            let stop = async {
                match &source.stop {
                    Some(stop) => stop.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            let next = tokio::select! {
                next = consumer.next() => next,
                _ = self.token.cancelled() => break Ok(Ended::Cancelled),
                _ = stop => break Ok(Ended::Cancelled),
                _ = idle => break Ok(Ended::Idle),
            };
            let delivery = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(e)) => break Err(AmqpError::from(e)),
                None => break Ok(Ended::Gone),
            };
            // Every outcome is published on one channel: without it each
            // task would only be requeued, so start the session over.
            if !self.handler.publisher.is_usable() {
                let requeue = BasicNackOptions {
                    requeue: true,
                    multiple: false,
                };
                let _ = channel.basic_nack(delivery.delivery_tag, requeue).await;
                break Err(AmqpError::Unavailable(
                    "the publishing channel closed".into(),
                ));
            }
            let handler = self.handler.clone();
            let settle = settle.clone();
            let slots = Slots {
                all: self.all_slots.clone(),
                own: source.own_slots.clone(),
            };
            let delivery_tag = delivery.delivery_tag;
            let origin = source.origin.clone();
            let _ = settle.send(Settle::Started(delivery_tag));
            self.inflight.spawn(async move {
                let disposition = handler
                    .handle(&delivery.data, &delivery.properties, &slots, &origin)
                    .await;
                let _ = settle.send(Settle::Finished(delivery_tag, disposition));
            });
        };
        if !endpoint {
            let _ = channel
                .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                .await;
        }
        // The settler ends once every spawned send has reported (each holds
        // a sender), after acking everything that finished.
        drop(settle);
        let _ = settler.await;
        if endpoint {
            // An endpoint queue's single active consumer hands over only
            // now, with its head settled: cancelling before would let the
            // next deliverer send the message behind a head still in
            // flight. Closing requeues whatever was prefetched meanwhile.
            let _ = channel.close(200, "endpoint consumer stopped".into()).await;
        }
        result
    }
}

/// Settles one channel's messages in few frames (see `AckLedger`); with
/// `eager`, each as soon as it finished.
async fn settle_loop(channel: Channel, mut settled: mpsc::UnboundedReceiver<Settle>, eager: bool) {
    let mut ledger = AckLedger::default();
    let mut tick = tokio::time::interval(ACK_DELAY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let max_wait = tokio::select! {
            message = settled.recv() => match message {
                Some(Settle::Started(tag)) => { ledger.delivered(tag); continue; }
                Some(Settle::Finished(tag, Disposition::Ack)) => {
                    ledger.finished(tag, Instant::now());
                    if !eager && ledger.pending() < 64 { continue; }
                    ACK_MAX_WAIT
                }
                Some(Settle::Finished(tag, Disposition::Requeue)) => {
                    ledger.settled_elsewhere(tag);
                    let requeue = BasicNackOptions { requeue: true, multiple: false };
                    let _ = channel.basic_nack(tag, requeue).await;
                    continue;
                }
                None => Duration::ZERO,
            },
            _ = tick.tick() => ACK_MAX_WAIT,
        };
        for frame in ledger.plan(Instant::now(), max_wait) {
            let _ = channel
                .basic_ack(
                    frame.tag,
                    BasicAckOptions {
                        multiple: frame.multiple,
                    },
                )
                .await;
        }
        if max_wait.is_zero() {
            break;
        }
    }
}
