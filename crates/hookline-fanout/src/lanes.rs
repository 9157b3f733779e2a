//! Subscriptions a deliverer reported slow: their tasks are published to
//! `hookline.lanes` (and so into that subscription's slow lane) instead of
//! `hookline.deliveries`. A task in the lane costs the broker one hop like
//! any other, where a task taken from the shared queue and put back would
//! cost three, and that is what keeps one slow endpoint from taking the
//! broker's throughput from the healthy ones.
//!
//! A note lasts [`NOTE_LASTS`]; deliverers repeat it while the endpoint
//! stays slow. Routing to a lane that is gone is harmless: the exchange's
//! alternate exchange puts the task on `hookline.deliveries`.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// How long one "slow" note routes a subscription to its lane.
pub const NOTE_LASTS: Duration = Duration::from_secs(30);

/// Slow subscriptions and until when their note holds.
#[derive(Clone, Debug, Default)]
pub struct SlowLanes {
    until: Arc<Mutex<HashMap<String, Instant>>>,
}

impl SlowLanes {
    /// Records a deliverer's note that `subscription_id` is slow.
    pub fn note(&self, subscription_id: &str) {
        let now = Instant::now();
        let mut until = self.until.lock();
        until.retain(|_, at| *at > now);
        until.insert(subscription_id.to_string(), now + NOTE_LASTS);
    }

    /// Which of `subscription_ids` go to their lane now; one lock per event.
    pub fn routed<'a>(&self, subscription_ids: impl Iterator<Item = &'a str>) -> Vec<bool> {
        let until = self.until.lock();
        if until.is_empty() {
            return subscription_ids.map(|_| false).collect();
        }
        let now = Instant::now();
        subscription_ids
            .map(|id| until.get(id).is_some_and(|at| *at > now))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_noted_subscription_is_routed_to_its_lane_and_others_are_not() {
        let lanes = SlowLanes::default();
        assert_eq!(lanes.routed(["a", "b"].into_iter()), vec![false, false]);
        lanes.note("b");
        assert_eq!(lanes.routed(["a", "b"].into_iter()), vec![false, true]);
    }
}
