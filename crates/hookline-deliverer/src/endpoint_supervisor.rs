//! The endpoint supervisor: consumes the queue of every subscription with
//! an endpoint policy, each under its policy, restarts a consumer whose
//! policy changed, and drains then deletes the queue of a policy that was
//! removed. Every deliverer consumes every endpoint queue; the queue's
//! single active consumer makes one of them deliver at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hookline_amqp::declare_endpoint_queue;
use hookline_config::QueueType;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::consume::{Ended, Origin, Source, TaskConsumers};
use crate::endpoints::{EndpointPolicies, EndpointRule};
use hookline_proto::EndpointPolicy;

/// A queue whose policy was removed is deleted once it has been empty and
/// unused this long: long past fanout's last publish under the old policy
/// (it re-declares within 30 s while it still routes there).
pub const DRAIN_IDLE: Duration = Duration::from_secs(60);

/// Pause before consuming again after a consumer failed.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The stop of one endpoint consumer and the policy it runs with,
/// replaced at each restart.
type StopSlot = Arc<Mutex<(CancellationToken, Option<EndpointPolicy>)>>;

/// Consumes every endpoint queue until the session ends. `wake` names a
/// subscription whose policy may have changed.
pub async fn run(
    consumers: TaskConsumers,
    mut wake: mpsc::UnboundedReceiver<String>,
    policies: EndpointPolicies,
    queue_type: QueueType,
) {
    let mut running: HashMap<String, StopSlot> = HashMap::new();
    let tasks = TaskTracker::new();
    let (done, mut finished) = mpsc::unbounded_channel::<String>();
    let mut pending: Vec<String> = policies.ids();
    loop {
        let id = match pending.pop() {
            Some(id) => id,
            None => tokio::select! {
                Some(id) = wake.recv() => id,
                Some(id) = finished.recv() => {
                    running.remove(&id);
                    // A policy that came back while its queue drained.
                    if policies.get(&id).is_none() { continue; }
                    id
                }
                _ = consumers.token.cancelled() => break,
            },
        };
        if let Some(stop) = running.get(&id) {
            // Restart with the new policy (or drain without one); the
            // consumer settles what it holds first.
            let stop = stop.lock();
            if stop.1 != policies.get(&id) {
                stop.0.cancel();
            }
            continue;
        }
        let stop: StopSlot = Arc::new(Mutex::new((consumers.token.child_token(), None)));
        running.insert(id.clone(), stop.clone());
        let (consumers, policies, done) = (consumers.clone(), policies.clone(), done.clone());
        tasks.spawn(async move {
            consume_endpoint(&consumers, &id, &policies, queue_type, &stop).await;
            let _ = done.send(id);
        });
    }
    tasks.close();
    tasks.wait().await;
}

/// Consumes one endpoint queue under its current policy, again after each
/// change, until the policy is gone and the queue drained and deleted, or
/// the session ends.
async fn consume_endpoint(
    consumers: &TaskConsumers,
    id: &str,
    policies: &EndpointPolicies,
    queue_type: QueueType,
    stop: &StopSlot,
) {
    loop {
        if consumers.token.is_cancelled() {
            return;
        }
        let token = consumers.token.child_token();
        let policy = policies.get(id);
        *stop.lock() = (token.clone(), policy);
        let queue = match declare_endpoint_queue(&consumers.connection, queue_type, id).await {
            Ok(queue) => queue,
            Err(error) => {
                tracing::warn!(subscription_id = %id, %error, "cannot declare an endpoint queue");
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        tracing::info!(subscription_id = %id, ?policy, "consuming the subscription's endpoint queue");
        let source = Source {
            queue: queue.clone(),
            prefetch: EndpointRule::prefetch(policy),
            own_slots: None,
            origin: Origin::Endpoint(Arc::new(EndpointRule::of(policy))),
            idle: policy.is_none().then_some(DRAIN_IDLE),
            stop: Some(token),
        };
        match consumers.consume(source).await {
            Ok(Ended::Idle) if crate::lane_supervisor::delete_if_empty(consumers, &queue).await => {
                tracing::info!(subscription_id = %id, "endpoint queue drained and deleted");
                return;
            }
            Ok(Ended::Idle) => {}
            Ok(Ended::Gone) if policies.get(id).is_none() => return,
            Ok(Ended::Gone) => {}
            Ok(Ended::Cancelled) if consumers.token.is_cancelled() => return,
            // Stopped for a policy change: start over with the new one.
            Ok(Ended::Cancelled) => {}
            Err(error) => {
                tracing::warn!(subscription_id = %id, %error, "endpoint queue consumer failed");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}
