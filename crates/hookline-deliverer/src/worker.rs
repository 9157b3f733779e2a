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

use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::DelivererConfig;
use crate::handle::{Disposition, Handler, Slots};
use crate::metrics::Metrics;
use crate::sender::Sender;

/// Runs consumers on `connection` until it fails or `token` is cancelled,
/// then lets in-flight sends finish and ack.
pub async fn session(
    connection: Arc<Connection>,
    config: DelivererConfig,
    sender: Sender,
    metrics: Metrics,
    readiness: Readiness,
    revocations: crate::revocations::Revocations,
    token: CancellationToken,
) -> Result<(), AmqpError> {
    let publisher = ConfirmedPublisher::open(
        &connection,
        config.confirm_window,
        Some(metrics.confirm_seconds.clone()),
    )
    .await?;
    declare(publisher.channel(), &config.topology).await?;
    let (records, batcher) = crate::attempts::spawn(publisher.clone());
    let handler = Arc::new(Handler {
        sender,
        policy: RetryPolicy::new(config.delivery.retry_delays.clone()),
        publisher,
        records,
        metrics,
        publish_successes: config.delivery.publish_successes,
        fairness: crate::fairness::Fairness::new(
            config.delivery.max_inflight_per_subscription,
            // Without a ladder there is nowhere to defer to: just wait.
            (!config.delivery.retry_delays.is_empty()).then_some(FAIR_WAIT),
        ),
        revocations: revocations.clone(),
        shutdown: token.clone(),
    });
    let all_slots = Arc::new(Semaphore::new(config.delivery.concurrency));
    let retry_slots = Arc::new(Semaphore::new(config.retry_slots()));
    let inflight = TaskTracker::new();
    readiness.set("amqp", true);

    let first = consume(
        &connection,
        DELIVERIES_QUEUE,
        config.delivery.concurrency * 2,
        None,
        all_slots.clone(),
        handler.clone(),
        inflight.clone(),
        token.clone(),
    );
    let retries = consume(
        &connection,
        RETRY_QUEUE,
        config.retry_slots() * 2,
        Some(retry_slots),
        all_slots,
        handler.clone(),
        inflight.clone(),
        token.clone(),
    );
    let control = crate::revocations::listen(connection.clone(), revocations, token.clone());
    let consumers = async { tokio::join!(first, retries) };
    let (first, retries) = tokio::select! {
        both = consumers => both,
        // A failed control consumer means a failed connection: start over.
        Err(error) = control => (Err(error), Ok(())),
    };
    // Consumers are cancelled; the sends already started finish and ack.
    inflight.close();
    inflight.wait().await;
    drop(handler);
    let _ = batcher.await;
    first.and(retries)
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

/// How long a task may wait for its subscription's send slot before it is
/// deferred: a fast endpoint's burst clears well within it.
const FAIR_WAIT: Duration = Duration::from_secs(1);

/// Acks at most this long after a send finished.
const ACK_DELAY: Duration = Duration::from_millis(5);
/// A finished tag above a slow in-flight one is acked alone after this.
const ACK_MAX_WAIT: Duration = Duration::from_millis(20);

/// Consumes `queue`, spawning one send per message while holding a slot.
#[allow(clippy::too_many_arguments)]
async fn consume(
    connection: &Connection,
    queue: &str,
    prefetch: usize,
    own_slots: Option<Arc<Semaphore>>,
    all_slots: Arc<Semaphore>,
    handler: Arc<Handler>,
    inflight: TaskTracker,
    token: CancellationToken,
) -> Result<(), AmqpError> {
    let channel = connection.create_channel().await?;
    // Prefetch is twice the slots this consumer may use: every slot busy,
    // plus room for tasks waiting in a busy subscription's short line.
    // Beyond that, unstarted work stays in the queue for other deliverers.
    channel
        .basic_qos(
            prefetch.min(u16::MAX as usize) as u16,
            BasicQosOptions::default(),
        )
        .await?;
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
        let next = tokio::select! {
            next = consumer.next() => next,
            _ = token.cancelled() => break Ok(()),
        };
        let delivery = match next {
            Some(Ok(delivery)) => delivery,
            Some(Err(e)) => break Err(AmqpError::from(e)),
            None => break Err(AmqpError::Unavailable(format!("consumer on {queue} ended"))),
        };
        let handler = handler.clone();
        let settle = settle.clone();
        let slots = Slots {
            all: all_slots.clone(),
            own: own_slots.clone(),
        };
        let delivery_tag = delivery.delivery_tag;
        let _ = settle.send(Settle::Delivered(delivery_tag));
        inflight.spawn(async move {
            let outcome = match handler.handle(&delivery.data, &slots).await {
                Disposition::Ack => Settle::Ack(delivery_tag),
                Disposition::Requeue => Settle::Requeue(delivery_tag),
            };
            let _ = settle.send(outcome);
        });
    };
    let _ = channel
        .basic_cancel(&tag, BasicCancelOptions::default())
        .await;
    // The settler ends once every spawned send has reported (each holds a
    // sender), after acking everything that finished.
    drop(settle);
    let _ = settler.await;
    result
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
