//! The composition root of one broker session: opens the publisher,
//! declares the topology, reads the control log up to now, then runs the
//! consumers of the shared queues and the lane and endpoint supervisors
//! until the connection fails or shutdown comes.

use std::sync::Arc;
use std::time::Duration;

use hookline_amqp::names::{DELIVERIES_QUEUE, RETRY_QUEUE};
use hookline_amqp::{declare, AmqpError, ConfirmedPublisher};
use hookline_model::retry::RetryPolicy;
use hookline_runtime::Readiness;
use hookline_send::Sender;
use lapin::Connection;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::DelivererConfig;
use crate::consume::{Source, TaskConsumers};
use crate::handle::Handler;
use crate::metrics::Metrics;

/// What outlives one broker session: made once per deliverer.
#[derive(Clone)]
pub struct AcrossSessions {
    /// The HTTP side, with its connection pool.
    pub sender: Sender,
    /// The contract's deliverer metrics, shared with the handler.
    pub metrics: Metrics,
    /// `/readyz`.
    pub readiness: Readiness,
    /// The newest known change of each subscription.
    pub revisions: crate::revisions::Revisions,
    /// Slow lanes to resume after a reconnect.
    pub consumed_lanes: crate::lanes::ConsumedLanes,
    /// Endpoint policies read from the control log.
    pub policies: crate::endpoints::EndpointPolicies,
}

/// Runs consumers on `connection` until it fails or `token` is cancelled,
/// then lets in-flight sends finish and ack.
pub async fn session(
    connection: Arc<Connection>,
    config: DelivererConfig,
    carried: AcrossSessions,
    token: CancellationToken,
) -> Result<(), AmqpError> {
    let AcrossSessions {
        sender,
        metrics,
        readiness,
        revisions,
        consumed_lanes,
        policies,
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
    let (policy_changed, endpoints_to_check) = mpsc::unbounded_channel();
    let handler = Arc::new(Handler {
        sender,
        policy: RetryPolicy::new(config.delivery.retry_delays.clone()),
        records,
        metrics: metrics.clone(),
        publish_successes: config.delivery.publish_successes,
        gates: crate::admission::Gates::new(
            config.delivery.max_inflight_per_subscription,
            FAIR_WAIT,
        ),
        lanes: crate::lanes::Diverter::new(
            connection.clone(),
            publisher.clone(),
            config.topology.queue_type,
            open_lane.clone(),
            consumed_lanes.clone(),
            config.delivery.max_lanes,
        ),
        endpoints: crate::endpoints::Router::new(
            connection.clone(),
            publisher.clone(),
            config.topology.queue_type,
            policies.clone(),
            policy_changed.clone(),
        ),
        publisher: publisher.clone(),
        max_batch_bytes: config.delivery.max_batch_bytes,
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
    let consumers = TaskConsumers {
        connection: connection.clone(),
        all_slots,
        handler: handler.clone(),
        inflight: inflight.clone(),
        token: session_token.clone(),
    };

    let lanes = crate::lane_supervisor::run(
        consumers.clone(),
        lanes_to_open,
        consumed_lanes,
        crate::lane_supervisor::LaneSettings {
            queue_type: config.topology.queue_type,
            prefetch: config.delivery.max_inflight_per_subscription,
            slots: Arc::new(Semaphore::new(config.retry_slots())),
            max_lanes: config.delivery.max_lanes,
        },
    );
    let lanes = tokio::spawn(lanes);
    let (caught_up, read_to_mark) = oneshot::channel();
    let control = crate::control::listen(
        connection.clone(),
        crate::control::Listener {
            revisions,
            lanes: open_lane,
            policies: policies.clone(),
            policy_changed,
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
    // Endpoint queues are taken from once the log is read: the policies
    // are known by then.
    let endpoints = tokio::spawn(crate::endpoint_supervisor::run(
        consumers.clone(),
        endpoints_to_check,
        policies,
        config.topology.queue_type,
    ));
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
    let _ = endpoints.await;
    // TaskConsumers are cancelled; the sends already started finish and ack.
    inflight.close();
    inflight.wait().await;
    drop(consumers);
    drop(handler);
    let _ = batcher.await;
    result
}

/// How long a task may wait for its subscription's send slot before it is
/// moved into its slow lane: a fast endpoint's burst clears well within
/// it, and a slow one's tasks do not hold the prefetch for long.
const FAIR_WAIT: Duration = Duration::from_millis(250);

/// How long a session may spend reading the control log before it takes
/// tasks anyway.
const CATCH_UP_WAIT: Duration = Duration::from_secs(30);
