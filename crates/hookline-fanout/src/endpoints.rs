//! Subscriptions with an endpoint policy (`ordering`, `rate_limit`): fanout
//! publishes their tasks to the subscription's own queue,
//! `hookline.endpoint.<id>`, from the first event, so every one of them
//! waits there in match order and leaves under the policy. The queue is
//! declared here before the first publish (deliverers declare it alike), so
//! a task never falls through to the shared queues.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookline_amqp::names::endpoint_queue;
use hookline_amqp::{declare_endpoint_queue, AmqpError};
use hookline_config::QueueType;
use lapin::Connection;
use parking_lot::Mutex;

/// How long a declaration is trusted before the next publish declares the
/// queue again: deliverers delete an endpoint queue only after its policy
/// has been gone and the queue empty for a minute, so this is the bound on
/// a stale belief.
pub const REDECLARE_EVERY: Duration = Duration::from_secs(30);

/// Declares endpoint queues for one session, each at most once per
/// [`REDECLARE_EVERY`].
pub struct EndpointQueues {
    connection: Arc<Connection>,
    queue_type: QueueType,
    declared: Mutex<HashMap<String, Instant>>,
}

impl EndpointQueues {
    /// Declares on channels of `connection`, never the publishing channel.
    pub fn new(connection: Arc<Connection>, queue_type: QueueType) -> Self {
        Self {
            connection,
            queue_type,
            declared: Mutex::default(),
        }
    }

    /// The name of `subscription_id`'s queue, declared recently enough.
    pub async fn ensure(&self, subscription_id: &str) -> Result<String, AmqpError> {
        let now = Instant::now();
        let fresh = self
            .declared
            .lock()
            .get(subscription_id)
            .is_some_and(|at| now.duration_since(*at) < REDECLARE_EVERY);
        if fresh {
            return Ok(endpoint_queue(subscription_id));
        }
        let name =
            declare_endpoint_queue(&self.connection, self.queue_type, subscription_id).await?;
        self.declared
            .lock()
            .insert(subscription_id.to_string(), now);
        Ok(name)
    }
}
