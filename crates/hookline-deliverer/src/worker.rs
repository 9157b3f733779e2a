//! One broker session: two consumers (first attempts and retries) feeding a
//! bounded pool of sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use hookline_amqp::names::{DELIVERIES_QUEUE, RETRY_QUEUE};
use hookline_amqp::{declare, AmqpError, ConfirmedPublisher};
use hookline_model::retry::RetryPolicy;
use hookline_runtime::Readiness;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use lapin::Connection;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::DelivererConfig;
use crate::handle::{Disposition, Handler};
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
        max_inflight_per_subscription: config.delivery.max_inflight_per_subscription,
        inflight: Arc::new(Mutex::new(HashMap::new())),
    });
    let all_slots = Arc::new(Semaphore::new(config.delivery.concurrency));
    let retry_slots = Arc::new(Semaphore::new(config.retry_slots()));
    let inflight = TaskTracker::new();
    readiness.set("amqp", true);

    let first = consume(
        &connection,
        DELIVERIES_QUEUE,
        config.delivery.concurrency,
        None,
        all_slots.clone(),
        handler.clone(),
        inflight.clone(),
        token.clone(),
    );
    let retries = consume(
        &connection,
        RETRY_QUEUE,
        config.retry_slots(),
        Some(retry_slots),
        all_slots,
        handler.clone(),
        inflight.clone(),
        token.clone(),
    );
    let (first, retries) = tokio::join!(first, retries);
    // Consumers are cancelled; the sends already started finish and ack.
    inflight.close();
    inflight.wait().await;
    drop(handler);
    let _ = batcher.await;
    first.and(retries)
}

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
    // Prefetch matches the slots this consumer may use: enough to keep every
    // slot busy, and no more, so unstarted work stays in the queue where
    // another deliverer can take it.
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
        let own = match &own_slots {
            Some(slots) => slots.clone().acquire_owned().await.ok(),
            None => None,
        };
        let Ok(slot) = all_slots.clone().acquire_owned().await else {
            break Ok(());
        };
        let handler = handler.clone();
        inflight.spawn(async move {
            let disposition = handler.handle(&delivery.data).await;
            let _ = match disposition {
                Disposition::Ack => delivery.acker.ack(BasicAckOptions::default()).await,
                Disposition::Requeue => {
                    delivery
                        .acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..BasicNackOptions::default()
                        })
                        .await
                }
            };
            drop((slot, own));
        });
    };
    let _ = channel
        .basic_cancel(&tag, BasicCancelOptions::default())
        .await;
    result
}
