//! The lane supervisor: consumes every slow lane this deliverer was asked
//! to (by its own diversions, other deliverers' notes, or a previous
//! session), each with the consume loop at the endpoint's pace, deletes
//! lanes left idle and empty, and repeats the "slow" note while an endpoint
//! stays slow. Moving tasks into lanes is `lanes::Diverter`'s job.

use std::collections::HashMap;
use std::sync::Arc;

use hookline_config::QueueType;
use lapin::options::QueueDeleteOptions;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::task::TaskTracker;

use crate::consume::{Ended, Origin, Source, TaskConsumers};
use crate::lanes::{declare_apart, ConsumedLanes, LaneId, LANE_IDLE, NOTE_EVERY};

/// How lanes are consumed.
pub struct LaneSettings {
    /// Queue type the lanes are declared with.
    pub queue_type: QueueType,
    /// Prefetch of a lane: the per-subscription cap.
    pub prefetch: usize,
    /// Slots every lane's sends share, so slow endpoints together cannot
    /// hold every worker slot.
    pub slots: Arc<Semaphore>,
    /// Lanes consumed at once (`delivery.max_lanes`): with the prefetch, it
    /// bounds the tasks lanes hold in memory to `max_lanes × prefetch`,
    /// whatever "slow" notes arrive on the control exchange.
    pub max_lanes: usize,
}

/// Consumes every lane asked for (by this deliverer's diversions, other
/// deliverers' notes, or a previous session) until the session ends, and
/// repeats the "slow" note for lanes whose endpoint is still slow.
pub async fn run(
    consumers: TaskConsumers,
    mut open: mpsc::UnboundedReceiver<LaneId>,
    consumed_lanes: ConsumedLanes,
    settings: LaneSettings,
) {
    let settings = Arc::new(settings);
    let mut running: HashMap<String, LaneId> = HashMap::new();
    let lanes = TaskTracker::new();
    let (done, mut finished) = mpsc::unbounded_channel::<LaneId>();
    let mut resume = consumed_lanes.all();
    let mut note = tokio::time::interval(NOTE_EVERY);
    loop {
        let lane = match resume.pop() {
            Some(lane) => lane,
            None => tokio::select! {
                Some(lane) = open.recv() => lane,
                Some(lane) = finished.recv() => {
                    running.remove(&lane.subscription_id);
                    continue;
                }
                _ = note.tick() => {
                    for lane in running.values() {
                        if consumers.handler.gates.is_slow(&lane.subscription_id) {
                            consumers.handler.lanes.note_slow(lane).await;
                        }
                    }
                    continue;
                }
                _ = consumers.token.cancelled() => break,
            },
        };
        if running.contains_key(&lane.subscription_id) {
            continue;
        }
        if running.len() >= settings.max_lanes {
            // Its tasks wait in the lane for another deliverer, or go back
            // to the shared retry queue after LANE_TTL.
            consumers.handler.metrics.lanes_refused.inc();
            tracing::debug!(subscription_id = %lane.subscription_id, "delivery.max_lanes reached; not consuming another lane");
            continue;
        }
        running.insert(lane.subscription_id.clone(), lane.clone());
        let (consumers, consumed_lanes, settings, done) = (
            consumers.clone(),
            consumed_lanes.clone(),
            settings.clone(),
            done.clone(),
        );
        lanes.spawn(async move {
            consume_lane(&consumers, &lane, &consumed_lanes, &settings).await;
            let _ = done.send(lane);
        });
    }
    lanes.close();
    lanes.wait().await;
}

/// Consumes one lane until it is idle and empty (then deletes it), deleted
/// by someone else, or the session ends.
async fn consume_lane(
    consumers: &TaskConsumers,
    lane: &LaneId,
    consumed_lanes: &ConsumedLanes,
    settings: &LaneSettings,
) {
    let id = &lane.subscription_id;
    loop {
        let declared = declare_apart(&consumers.connection, settings.queue_type, id);
        let queue = match declared.await {
            Ok(queue) => queue,
            Err(error) => {
                tracing::warn!(subscription_id = %id, %error, "cannot declare a slow lane");
                return;
            }
        };
        consumed_lanes.remember(lane);
        tracing::info!(subscription_id = %id, "consuming the subscription's slow lane");
        let source = Source {
            queue: queue.clone(),
            prefetch: settings.prefetch,
            own_slots: Some(settings.slots.clone()),
            origin: Origin::Lane,
            idle: Some(LANE_IDLE),
            stop: None,
        };
        match consumers.consume(source).await {
            Ok(Ended::Idle) if delete_if_empty(consumers, &queue).await => {}
            // Tasks arrived meanwhile: keep consuming.
            Ok(Ended::Idle) => continue,
            Ok(Ended::Gone) => {}
            Ok(Ended::Cancelled) => return,
            Err(error) => {
                tracing::warn!(subscription_id = %id, %error, "slow lane consumer failed");
                return;
            }
        }
        tracing::info!(subscription_id = %id, "slow lane removed");
        consumed_lanes.forget(lane);
        consumers.handler.lanes.deleted(id);
        return;
    }
}

/// Deletes `queue` if it holds nothing. A refusal closes the channel it was
/// asked on, so that is a channel of its own.
pub(crate) async fn delete_if_empty(consumers: &TaskConsumers, queue: &str) -> bool {
    let Ok(channel) = consumers.connection.create_channel().await else {
        return false;
    };
    let options = QueueDeleteOptions {
        if_empty: true,
        ..QueueDeleteOptions::default()
    };
    let deleted = channel.queue_delete(queue.into(), options).await.is_ok();
    if deleted {
        let _ = channel.close(200, "lane deleted".into()).await;
    }
    deleted
}
