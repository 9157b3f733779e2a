//! Endpoint queues: a subscription with an endpoint policy (`ordering:
//! "fifo"`, `rate_limit`) has its own queue, `hookline.endpoint.<id>`,
//! which fanout fills from the first event and every deliverer consumes
//! with a single active consumer, so exactly one of them applies the policy
//! at any moment.
//!
//! Deliverers learn the policies from the control log (read from its start
//! at every session, and re-announced by the api every day so no policy
//! ages out of it) and remember them across sessions here. A task with a
//! policy found on a shared queue (a retry coming back from the ladder, a
//! replay) is moved into its endpoint queue once, confirmed, like a slow
//! lane's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookline_amqp::{declare_endpoint_queue, protobuf_properties, AmqpError, ConfirmedPublisher};
use hookline_config::QueueType;
use hookline_proto::{
    ChangeKind, DeliveryBatch, DeliveryTask, EndpointPolicy, Message, SubscriptionChanged,
};
use lapin::Connection;
use parking_lot::Mutex;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::batches::{batch_properties, BatchRule};

/// A removed policy is remembered this long, past the control log's age
/// (7 days), so re-reading the log cannot bring an older policy back.
const FORGET_REMOVED: Duration = Duration::from_secs(8 * 24 * 3600);

/// How long a rate permit is held after a `429`, at most, whatever its
/// `Retry-After` asks: the limit is lowered for a while, not stopped.
pub const MAX_RATE_PAUSE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Known {
    revision: u64,
    policy: Option<EndpointPolicy>,
    at: Instant,
}

/// The newest known endpoint policy of every subscription that has had
/// one, kept across sessions.
#[derive(Clone, Debug, Default)]
pub struct EndpointPolicies {
    known: Arc<Mutex<HashMap<String, Known>>>,
}

impl EndpointPolicies {
    /// Applies one control change; true when the subscription's policy
    /// changed (its queue's consumer must then start, restart or drain).
    /// An older revision never replaces a newer one.
    pub fn apply(&self, change: &SubscriptionChanged, kind: ChangeKind) -> bool {
        let policy = match kind {
            ChangeKind::Upserted if change.revision > 0 => change
                .shape
                .as_ref()
                .and_then(|shape| shape.policy)
                .filter(EndpointPolicy::is_active),
            ChangeKind::Deleted | ChangeKind::Disabled => None,
            _ => return false,
        };
        self.set(&change.subscription_id, change.revision, policy)
    }

    /// Records the policy a task carries (its subscription's as of the
    /// task's revision); true when that is news.
    pub fn noticed(&self, task: &DeliveryTask) -> bool {
        self.set(&task.subscription_id, task.revision, task.active_policy())
    }

    fn set(&self, subscription_id: &str, revision: u64, policy: Option<EndpointPolicy>) -> bool {
        let now = Instant::now();
        let mut known = self.known.lock();
        known.retain(|_, k| k.policy.is_some() || now.duration_since(k.at) < FORGET_REMOVED);
        match known.get_mut(subscription_id) {
            Some(k) if revision < k.revision => false,
            Some(k) => {
                let changed = k.policy != policy;
                *k = Known {
                    revision,
                    policy,
                    at: now,
                };
                changed
            }
            None if policy.is_some() => {
                known.insert(
                    subscription_id.to_string(),
                    Known {
                        revision,
                        policy,
                        at: now,
                    },
                );
                true
            }
            None => false,
        }
    }

    /// The subscription's policy now; `None` once removed (its queue then
    /// drains and is deleted).
    pub fn get(&self, subscription_id: &str) -> Option<EndpointPolicy> {
        self.known
            .lock()
            .get(subscription_id)
            .and_then(|k| k.policy)
    }

    /// Every subscription that has or recently had a policy: a session
    /// consumes the queues of the first and drains those of the second.
    pub fn ids(&self) -> Vec<String> {
        self.known.lock().keys().cloned().collect()
    }
}

/// At most `per_second` requests in any one-second window: a permit is
/// taken before a send and handed back one second after the send ended (so
/// the window holds at the receiver, whatever the network adds), or later
/// after a `429`. Whoever waits for a permit holds no worker slot.
#[derive(Debug)]
pub struct RatePacer {
    permits: Arc<Semaphore>,
}

impl RatePacer {
    /// A pacer for `per_second` (at least 1).
    pub fn new(per_second: u32) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(per_second.max(1) as usize)),
        }
    }

    /// Waits for a permit.
    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .expect("the pacer's semaphore is never closed")
    }
}

/// Hands a permit back after `hold`.
pub fn release_after(permit: OwnedSemaphorePermit, hold: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        drop(permit);
    });
}

/// How long a send's permit stays taken once it ended: the window, or a
/// `Retry-After` (capped) when the receiver answered `429`.
pub fn permit_hold(response_status: Option<u16>, retry_after: Option<Duration>) -> Duration {
    let window = Duration::from_secs(1);
    match response_status {
        Some(429) => retry_after.unwrap_or(window).clamp(window, MAX_RATE_PAUSE),
        _ => window,
    }
}

/// How the tasks of one endpoint queue are taken out, as of the policy its
/// consumer started with. Each task still follows its own (re-shaped)
/// policy for holding a failed head in place.
#[derive(Debug)]
pub struct EndpointRule {
    /// Paces the sends; `None` without a rate limit.
    pub pacer: Option<RatePacer>,
    /// Groups the events into batched requests; `None` without `batch`.
    pub batch: Option<BatchRule>,
}

impl EndpointRule {
    /// The rule of `policy` (`None`: a queue draining after its policy
    /// was removed).
    pub fn of(policy: Option<EndpointPolicy>) -> Self {
        let pacer = policy
            .filter(|p| p.rate_per_second > 0)
            .map(|p| RatePacer::new(p.rate_per_second));
        let batch = policy.and_then(|p| BatchRule::of(&p));
        Self { pacer, batch }
    }

    /// The prefetch of its consumer: one batch's worth when batching (its
    /// batches are sent one after the other, so FIFO holds), one at a time
    /// for FIFO (the broker hands over the next only when the head is
    /// settled), one window's worth for a rate, and a few for a queue
    /// draining.
    pub fn prefetch(policy: Option<EndpointPolicy>) -> usize {
        match policy {
            Some(p) if p.batches() => BatchRule::of(&p).map_or(1, |rule| rule.max_events),
            Some(p) if p.fifo => 1,
            Some(p) if p.rate_per_second > 0 => (p.rate_per_second as usize).clamp(1, 64),
            _ => 8,
        }
    }
}

/// Moves tasks with a policy from the shared queues into their endpoint
/// queue, and tells the supervisor about policies it learns from tasks.
pub struct Router {
    connection: Arc<Connection>,
    publisher: ConfirmedPublisher,
    queue_type: QueueType,
    policies: EndpointPolicies,
    wake: mpsc::UnboundedSender<String>,
}

impl Router {
    /// Publishes on `publisher`'s channel, declares on channels of its own.
    pub fn new(
        connection: Arc<Connection>,
        publisher: ConfirmedPublisher,
        queue_type: QueueType,
        policies: EndpointPolicies,
        wake: mpsc::UnboundedSender<String>,
    ) -> Self {
        Self {
            connection,
            publisher,
            queue_type,
            policies,
            wake,
        }
    }

    /// Moves `task` to the tail of its endpoint queue; Ok once confirmed.
    /// Declared every time: this happens for retries and replays only, and
    /// a queue deleted meanwhile must not swallow the task.
    pub async fn route(&self, task: &DeliveryTask) -> Result<(), AmqpError> {
        self.publish(task, &task.encode_to_vec(), protobuf_properties())
            .await
    }

    /// Moves a retried batch to the tail of its endpoint queue, whole, so
    /// its subscription's policy paces it; Ok once confirmed.
    pub async fn route_batch(&self, batch: &DeliveryBatch) -> Result<(), AmqpError> {
        let Some(first) = batch.tasks.first() else {
            return Ok(());
        };
        self.publish(first, &batch.encode_to_vec(), batch_properties())
            .await
    }

    /// Publishes `payload` into the endpoint queue of `task`'s subscription,
    /// and wakes the supervisor if `task` tells of a policy it did not know.
    async fn publish(
        &self,
        task: &DeliveryTask,
        payload: &[u8],
        properties: lapin::BasicProperties,
    ) -> Result<(), AmqpError> {
        let queue =
            declare_endpoint_queue(&self.connection, self.queue_type, &task.subscription_id)
                .await?;
        self.publisher
            .publish_confirmed("", &queue, payload, properties)
            .await?;
        if self.policies.noticed(task) {
            let _ = self.wake.send(task.subscription_id.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(
        kind: ChangeKind,
        revision: u64,
        policy: Option<EndpointPolicy>,
    ) -> SubscriptionChanged {
        let mut change = SubscriptionChanged::of(kind, "acme", "sub_1");
        change.revision = revision;
        change.shape = Some(hookline_proto::SubscriptionShape {
            policy,
            ..Default::default()
        });
        change
    }

    const FIFO: EndpointPolicy = EndpointPolicy {
        fifo: true,
        rate_per_second: 0,
        batch_max_events: 0,
        batch_max_wait_ms: 0,
    };

    #[test]
    fn a_policy_is_learnt_changed_and_removed_and_older_revisions_are_ignored() {
        let policies = EndpointPolicies::default();
        assert!(!policies.apply(&change(ChangeKind::Upserted, 1, None), ChangeKind::Upserted));
        assert!(policies.apply(
            &change(ChangeKind::Upserted, 2, Some(FIFO)),
            ChangeKind::Upserted
        ));
        assert_eq!(policies.get("sub_1"), Some(FIFO));
        assert!(!policies.apply(
            &change(ChangeKind::Upserted, 3, Some(FIFO)),
            ChangeKind::Upserted
        ));
        assert!(policies.apply(&change(ChangeKind::Deleted, 4, None), ChangeKind::Deleted));
        assert_eq!(policies.get("sub_1"), None);
        // The log read again from its start: the old upsert stays history.
        assert!(!policies.apply(
            &change(ChangeKind::Upserted, 2, Some(FIFO)),
            ChangeKind::Upserted
        ));
        assert_eq!(policies.get("sub_1"), None);
        assert_eq!(policies.ids(), vec!["sub_1".to_string()]);
    }

    #[test]
    fn a_429_holds_its_permit_for_its_retry_after_within_bounds() {
        assert_eq!(permit_hold(Some(200), None), Duration::from_secs(1));
        assert_eq!(permit_hold(Some(429), None), Duration::from_secs(1));
        assert_eq!(
            permit_hold(Some(429), Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            permit_hold(Some(429), Some(Duration::from_secs(3600))),
            MAX_RATE_PAUSE
        );
    }

    #[tokio::test]
    async fn a_pacer_lets_through_its_rate_and_then_one_per_released_permit() {
        let pacer = RatePacer::new(2);
        let a = pacer.acquire().await;
        let _b = pacer.acquire().await;
        let third = tokio::time::timeout(Duration::from_millis(100), pacer.acquire()).await;
        assert!(third.is_err(), "a third permit within the window");
        release_after(a, Duration::from_millis(50));
        let third = tokio::time::timeout(Duration::from_secs(2), pacer.acquire()).await;
        assert!(third.is_ok(), "the released permit was not handed on");
    }
}
