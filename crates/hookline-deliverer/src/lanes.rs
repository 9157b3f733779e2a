//! Slow lanes: a subscription whose endpoint answers slowly gets a queue of
//! its own, `hookline.lane.<subscription id>`, drained at the endpoint's
//! pace (prefetch = the per-subscription cap) while the shared queues keep
//! flowing for everyone else.
//!
//! A task that finds its subscription saturated is moved into the lane once
//! (one confirmed publish) instead of circling the retry ladder, and the
//! deliverer tells fanout over `hookline.control` ("slow"), so that fanout
//! publishes the subscription's next tasks straight into the lane: then a
//! slow endpoint's task costs the broker no more than a fast one's.
//!
//! A lane nobody has taken a task from for [`LANE_IDLE`] is deleted if it
//! is empty. Lanes this deliverer consumes are remembered across
//! reconnects; a lane whose every consumer went away hands its tasks back to
//! the retry queue after `LANE_TTL` (see `hookline_amqp::declare_lane`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use hookline_amqp::names::{lane_queue, CONTROL_EXCHANGE};
use hookline_amqp::{declare_lane, protobuf_properties, AmqpError, ConfirmedPublisher};
use hookline_config::QueueType;
use hookline_proto::{ChangeKind, DeliveryTask, Message, SubscriptionChanged};
use lapin::Connection;
use tokio::sync::mpsc;

/// A lane unused this long is deleted (when empty).
pub const LANE_IDLE: Duration = Duration::from_secs(60);
/// How often the "slow" note is repeated while the endpoint stays slow
/// (fanout keeps a note for 30 s).
pub const NOTE_EVERY: Duration = Duration::from_secs(10);

/// A lane to consume: the subscription and its tenant (for the note).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LaneId {
    /// Whose lane.
    pub subscription_id: String,
    /// The subscription's tenant.
    pub tenant: String,
}

/// The lanes this deliverer consumes, kept across broker sessions so a
/// reconnect resumes them.
#[derive(Clone, Debug, Default)]
pub struct ConsumedLanes {
    known: Arc<Mutex<HashSet<LaneId>>>,
}

impl ConsumedLanes {
    /// Remembers a lane being consumed.
    pub fn remember(&self, lane: &LaneId) {
        self.known.lock().insert(lane.clone());
    }

    /// Forgets a lane that was deleted.
    pub fn forget(&self, lane: &LaneId) {
        self.known.lock().remove(lane);
    }

    /// Every lane to resume after a reconnect.
    pub fn all(&self) -> Vec<LaneId> {
        self.known.lock().iter().cloned().collect()
    }

    /// Lanes consumed now.
    pub fn len(&self) -> usize {
        self.known.lock().len()
    }

    /// Whether no lane is consumed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One session's side of the lanes: moves tasks into lanes, asks for lanes
/// to be consumed, and sends the "slow" notes.
pub struct Diverter {
    connection: Arc<Connection>,
    publisher: ConfirmedPublisher,
    queue_type: QueueType,
    declared: Mutex<HashSet<String>>,
    noted: Mutex<HashMap<String, Instant>>,
    open: mpsc::UnboundedSender<LaneId>,
    consumed_lanes: ConsumedLanes,
    max_lanes: usize,
}

impl Diverter {
    /// Diverts on `publisher`'s channel (lanes are declared on channels of
    /// their own); lanes to consume go to `open`.
    pub fn new(
        connection: Arc<Connection>,
        publisher: ConfirmedPublisher,
        queue_type: QueueType,
        open: mpsc::UnboundedSender<LaneId>,
        consumed_lanes: ConsumedLanes,
        max_lanes: usize,
    ) -> Self {
        Self {
            connection,
            publisher,
            queue_type,
            declared: Mutex::default(),
            noted: Mutex::default(),
            open,
            consumed_lanes,
            max_lanes,
        }
    }

    /// Whether a task of this subscription may go to its lane: the lane is
    /// consumed already, or this deliverer may consume one more
    /// (`delivery.max_lanes`). Otherwise the task waits where it is.
    pub fn has_room(&self, subscription_id: &str) -> bool {
        self.declared.lock().contains(subscription_id) || self.consumed_lanes.len() < self.max_lanes
    }

    async fn declare(&self, subscription_id: &str) -> Result<String, AmqpError> {
        let name = declare_apart(&self.connection, self.queue_type, subscription_id).await?;
        self.declared.lock().insert(subscription_id.to_string());
        Ok(name)
    }

    /// Moves `task` into its subscription's lane; Ok once confirmed. The
    /// publish is mandatory on the lane queue itself, so a lane deleted
    /// meanwhile is declared again rather than sending the task in a circle.
    pub async fn divert(&self, task: &DeliveryTask) -> Result<(), AmqpError> {
        let subscription_id = task.subscription_id.as_str();
        let known = self.declared.lock().contains(subscription_id);
        let lane = if known {
            lane_queue(subscription_id)
        } else {
            self.declare(subscription_id).await?
        };
        let body = task.encode_to_vec();
        match self
            .publisher
            .publish_confirmed("", &lane, &body, protobuf_properties())
            .await
        {
            Err(AmqpError::Unroutable(_)) => {
                self.declare(subscription_id).await?;
                self.publisher
                    .publish_confirmed("", &lane, &body, protobuf_properties())
                    .await?;
            }
            other => other?,
        }
        let lane = LaneId {
            subscription_id: subscription_id.to_string(),
            tenant: task.tenant.clone(),
        };
        let _ = self.open.send(lane.clone());
        self.note_slow(&lane).await;
        Ok(())
    }

    /// Tells every fanout (and deliverer) that this subscription is slow, at
    /// most once per [`NOTE_EVERY`]. Best effort: without the note tasks
    /// still reach the lane, one hop later.
    pub async fn note_slow(&self, lane: &LaneId) {
        let now = Instant::now();
        {
            let mut noted = self.noted.lock();
            if noted
                .get(&lane.subscription_id)
                .is_some_and(|at| now.duration_since(*at) < NOTE_EVERY)
            {
                return;
            }
            noted.insert(lane.subscription_id.clone(), now);
        }
        let note = SubscriptionChanged::of(ChangeKind::Slow, &lane.tenant, &lane.subscription_id);
        let sent = self
            .publisher
            .broadcast(
                CONTROL_EXCHANGE,
                "",
                &note.encode_to_vec(),
                protobuf_properties(),
            )
            .await;
        if let Ok(pending) = sent {
            let _ = pending.confirmed().await;
        }
    }

    /// Forgets that a lane was declared (it was deleted).
    pub fn deleted(&self, subscription_id: &str) {
        self.declared.lock().remove(subscription_id);
    }
}

/// Declares a lane on a channel of its own: a refused declaration closes
/// only that channel, never the one every outcome is published on.
pub(crate) async fn declare_apart(
    connection: &Connection,
    queue_type: QueueType,
    subscription_id: &str,
) -> Result<String, AmqpError> {
    let channel = connection.create_channel().await?;
    let name = declare_lane(&channel, queue_type, subscription_id).await?;
    let _ = channel.close(200, "lane declared".into()).await;
    Ok(name)
}
