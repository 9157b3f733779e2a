//! One broker session: two consumers (first attempts and retries) feeding a
//! bounded pool of sends.

use std::sync::Arc;

use futures_util::StreamExt;
use hookline_amqp::names::{DELIVERIES_QUEUE, RETRY_QUEUE};
use hookline_amqp::{declare, AckLedger, AmqpError, ConfirmedPublisher};
use hookline_model::retry::RetryPolicy;
use hookline_runtime::Readiness;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::DelivererConfig;
use crate::handle::{Disposition, Handler, Slots};
use crate::metrics::Metrics;
use crate::sender::Sender;

/// What outlives one broker session: made once per deliverer.
#[derive(Clone)]
pub struct Carried {
    /// The HTTP side, with its connection pool.
    pub sender: Sender,
    /// Metric handles.
    pub metrics: Metrics,
    /// `/readyz`.
    pub readiness: Readiness,
    /// The newest known change of each subscription.
    pub revisions: crate::revisions::Revisions,
    /// Slow lanes to resume after a reconnect.
    pub book: crate::lanes::LaneBook,
}

/// Runs consumers on `connection` until it fails or `token` is cancelled,
/// then lets in-flight sends finish and ack.
pub async fn session(
    connection: Arc<Connection>,
    config: DelivererConfig,
    carried: Carried,
    token: CancellationToken,
) -> Result<(), AmqpError> {
    let Carried {
        sender,
        metrics,
        readiness,
        revisions,
        book,
    } = carried;
    let publisher = ConfirmedPublisher::open(
        &connection,
        config.confirm_window,
        Some(metrics.confirm_seconds.clone()),
    )
    .await?;
    declare(publisher.channel(), &config.topology).await?;
    let (records, batcher) = crate::attempts::spawn(publisher.clone());
    let (open_lane, lanes_to_open) = mpsc::unbounded_channel();
    let handler = Arc::new(Handler {
        sender,
        policy: RetryPolicy::new(config.delivery.retry_delays.clone()),
        records,
        metrics: metrics.clone(),
        publish_successes: config.delivery.publish_successes,
        fairness: crate::fairness::Fairness::new(
            config.delivery.max_inflight_per_subscription,
            Some(FAIR_WAIT),
        ),
        lanes: crate::lanes::Diverter::new(
            connection.clone(),
            publisher.clone(),
            config.topology.queue_type,
            open_lane.clone(),
            book.clone(),
            config.delivery.max_lanes,
        ),
        publisher: publisher.clone(),
        revisions: revisions.clone(),
        readiness: readiness.clone(),
        shutdown: token.clone(),
    });
    let all_slots = Arc::new(Semaphore::new(config.delivery.concurrency));
    let retry_slots = Arc::new(Semaphore::new(config.retry_slots()));
    let inflight = TaskTracker::new();
    readiness.set("amqp", true);
    // Lanes stop with the session's main consumers, whatever ended them.
    let session_token = token.child_token();
    let consumers = Consumers {
        connection: connection.clone(),
        all_slots,
        handler: handler.clone(),
        inflight: inflight.clone(),
        token: session_token.clone(),
    };

    let lanes = crate::lanes::run(
        consumers.clone(),
        lanes_to_open,
        book,
        crate::lanes::LaneSettings {
            queue_type: config.topology.queue_type,
            prefetch: config.delivery.max_inflight_per_subscription,
            slots: Arc::new(Semaphore::new(config.retry_slots())),
            max_lanes: config.delivery.max_lanes,
        },
    );
    let lanes = tokio::spawn(lanes);
    let (caught_up, read_to_mark) = oneshot::channel();
    let control = crate::revisions::listen(
        connection.clone(),
        crate::revisions::Listener {
            revisions,
            lanes: open_lane,
            publisher,
            ignored: metrics.control_ignored.clone(),
            caught_up,
        },
        token.clone(),
    );
    tokio::pin!(control);
    // No task is taken before every change in the control log is known: a
    // deliverer restarted after a delete must not send that subscription's
    // retries. A log that cannot be read to its end in time (a broker in
    // trouble) is reported, and delivery goes on with what was read.
    readiness.set("control_log", false);
    tokio::select! {
        read = tokio::time::timeout(CATCH_UP_WAIT, read_to_mark) => {
            if read.is_err() {
                tracing::warn!(wait = ?CATCH_UP_WAIT, "the control log was not read to its end in time; taking tasks with the changes read so far");
            }
        }
        Err(error) = &mut control => return Err(error),
        _ = token.cancelled() => return Ok(()),
    }
    readiness.set("control_log", true);
    let result = {
        let first = consumers.run(Source::queue(
            DELIVERIES_QUEUE,
            config.delivery.concurrency * 2,
            None,
        ));
        let retries = consumers.run(Source::queue(
            RETRY_QUEUE,
            config.retry_slots() * 2,
            Some(retry_slots),
        ));
        let main = async {
            let (first, retries) = tokio::join!(first, retries);
            first.and(retries)
        };
        tokio::pin!(main);
        tokio::select! {
            result = &mut main => result,
            // A failed control consumer means a failed connection: start over.
            Err(error) = control => {
                session_token.cancel();
                let _ = main.await;
                Err(error)
            }
        }
    };
    session_token.cancel();
    let _ = lanes.await;
    // Consumers are cancelled; the sends already started finish and ack.
    inflight.close();
    inflight.wait().await;
    drop(consumers);
    drop(handler);
    let _ = batcher.await;
    result
}

/// How a finished send settles its message.
enum Settle {
    /// The message arrived and its send started.
    Delivered(u64),
    /// The next hop is confirmed.
    Ack(u64),
    /// Broker trouble: give it back for redelivery.
    Requeue(u64),
}

/// How long a session may spend reading the control log before it takes
/// tasks anyway.
const CATCH_UP_WAIT: Duration = Duration::from_secs(30);

/// How long a task may wait for its subscription's send slot before it is
/// moved into its slow lane: a fast endpoint's burst clears well within
/// it, and a slow one's tasks do not hold the prefetch for long.
const FAIR_WAIT: Duration = Duration::from_millis(250);

/// Acks at most this long after a send finished.
const ACK_DELAY: Duration = Duration::from_millis(5);
/// A finished tag above a slow in-flight one is acked alone after this.
const ACK_MAX_WAIT: Duration = Duration::from_millis(20);

/// Where a consumer takes its tasks from.
pub struct Source {
    /// The queue.
    pub queue: String,
    /// Unacked messages the broker may hand over.
    pub prefetch: usize,
    /// A slot pool of this source's own besides the deliverer-wide one.
    pub own_slots: Option<Arc<Semaphore>>,
    /// A slow lane: its tasks wait for their subscription however long.
    pub lane: bool,
    /// Stop after this long without a message.
    pub idle: Option<Duration>,
}

impl Source {
    /// One of the shared queues.
    fn queue(queue: &str, prefetch: usize, own_slots: Option<Arc<Semaphore>>) -> Self {
        Self {
            queue: queue.to_string(),
            prefetch,
            own_slots,
            lane: false,
            idle: None,
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
pub struct Consumers {
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

impl Consumers {
    /// A shared queue: its consumer ending is the session's failure.
    async fn run(&self, source: Source) -> Result<(), AmqpError> {
        match self.consume(source).await? {
            Ended::Gone => Err(AmqpError::Unavailable("a consumer was cancelled".into())),
            _ => Ok(()),
        }
    }

    /// Consumes `source`, spawning one send per message that holds a slot.
    pub async fn consume(&self, source: Source) -> Result<Ended, AmqpError> {
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
                queue,
                &tag,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let (settle, settled) = mpsc::unbounded_channel();
        let settler = tokio::spawn(settle_loop(channel.clone(), settled));
        let result = loop {
            let idle = async {
                match source.idle {
                    Some(idle) => tokio::time::sleep(idle).await,
                    None => std::future::pending().await,
                }
            };
            let next = tokio::select! {
                next = consumer.next() => next,
                _ = self.token.cancelled() => break Ok(Ended::Cancelled),
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
            let from_lane = source.lane;
            let _ = settle.send(Settle::Delivered(delivery_tag));
            self.inflight.spawn(async move {
                let outcome = match handler
                    .handle(
                        &delivery.data,
                        delivery.properties.headers().as_ref(),
                        &slots,
                        from_lane,
                    )
                    .await
                {
                    Disposition::Ack => Settle::Ack(delivery_tag),
                    Disposition::Requeue => Settle::Requeue(delivery_tag),
                };
                let _ = settle.send(outcome);
            });
        };
        let _ = channel
            .basic_cancel(&tag, BasicCancelOptions::default())
            .await;
        // The settler ends once every spawned send has reported (each holds
        // a sender), after acking everything that finished.
        drop(settle);
        let _ = settler.await;
        result
    }
}

/// Settles one channel's messages in few frames (see `AckLedger`).
async fn settle_loop(channel: Channel, mut settled: mpsc::UnboundedReceiver<Settle>) {
    let mut ledger = AckLedger::default();
    let mut tick = tokio::time::interval(ACK_DELAY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let max_wait = tokio::select! {
            message = settled.recv() => match message {
                Some(Settle::Delivered(tag)) => { ledger.delivered(tag); continue; }
                Some(Settle::Ack(tag)) => {
                    ledger.finished(tag, Instant::now());
                    if ledger.pending() < 64 { continue; }
                    ACK_MAX_WAIT
                }
                Some(Settle::Requeue(tag)) => {
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
