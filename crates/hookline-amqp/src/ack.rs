//! Settling deliveries that finish out of order with few ack frames.
//!
//! Acking each message costs the broker dearly; one `multiple` ack settles
//! every tag up to it. But `multiple` may only cover tags that are no longer
//! in flight, and a slow send must not hold the acks of later, finished
//! messages (they count against prefetch). So: the finished tags below the
//! oldest in-flight tag go in one `multiple` ack; finished tags above it are
//! acked one by one once they have waited `max_wait`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// One ack frame to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckFrame {
    /// The channel's delivery tag; tags are per channel, so frames never
    /// cross channels.
    pub tag: u64,
    /// Whether it settles every unsettled tag up to `tag`.
    pub multiple: bool,
}

/// The delivery tags of one channel: in flight, and finished awaiting an ack.
#[derive(Debug, Default)]
pub struct AckLedger {
    in_flight: BTreeSet<u64>,
    finished: BTreeMap<u64, Instant>,
}

impl AckLedger {
    /// A delivery arrived and its work started.
    pub fn delivered(&mut self, tag: u64) {
        self.in_flight.insert(tag);
    }

    /// The work of `tag` is done and it may be acked.
    pub fn finished(&mut self, tag: u64, now: Instant) {
        self.in_flight.remove(&tag);
        self.finished.insert(tag, now);
    }

    /// `tag` was settled some other way (nack, reject): forget it.
    pub fn settled_elsewhere(&mut self, tag: u64) {
        self.in_flight.remove(&tag);
        self.finished.remove(&tag);
    }

    /// Tags finished but not yet acked.
    pub fn pending(&self) -> usize {
        self.finished.len()
    }

    /// The frames to send now, and forgets the tags they settle.
    pub fn plan(&mut self, now: Instant, max_wait: Duration) -> Vec<AckFrame> {
        let mut frames = Vec::new();
        let oldest_in_flight = self.in_flight.first().copied().unwrap_or(u64::MAX);
        let below: Vec<u64> = self
            .finished
            .range(..oldest_in_flight)
            .map(|(t, _)| *t)
            .collect();
        if let Some(&highest) = below.last() {
            frames.push(AckFrame {
                tag: highest,
                multiple: below.len() > 1,
            });
            for tag in below {
                self.finished.remove(&tag);
            }
        }
        let stale: Vec<u64> = self
            .finished
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= max_wait)
            .map(|(t, _)| *t)
            .collect();
        for tag in stale {
            self.finished.remove(&tag);
            frames.push(AckFrame {
                tag,
                multiple: false,
            });
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_millis(20);

    #[test]
    fn finished_tags_below_every_in_flight_tag_go_in_one_multiple_ack() {
        let mut ledger = AckLedger::default();
        let now = Instant::now();
        for tag in 1..=5 {
            ledger.delivered(tag);
        }
        for tag in [2, 1, 3] {
            ledger.finished(tag, now);
        }
        assert_eq!(
            ledger.plan(now, WAIT),
            vec![AckFrame {
                tag: 3,
                multiple: true
            }]
        );
        assert_eq!(ledger.plan(now, WAIT), vec![]);
    }

    #[test]
    fn a_slow_message_does_not_hold_back_later_acks_for_long() {
        let mut ledger = AckLedger::default();
        let start = Instant::now();
        for tag in 1..=3 {
            ledger.delivered(tag);
        }
        ledger.finished(2, start);
        ledger.finished(3, start);
        assert_eq!(ledger.plan(start, WAIT), vec![], "tag 1 is still in flight");
        let later = start + WAIT;
        assert_eq!(
            ledger.plan(later, WAIT),
            vec![
                AckFrame {
                    tag: 2,
                    multiple: false
                },
                AckFrame {
                    tag: 3,
                    multiple: false
                }
            ]
        );
        ledger.finished(1, later);
        assert_eq!(
            ledger.plan(later, WAIT),
            vec![AckFrame {
                tag: 1,
                multiple: false
            }]
        );
    }

    #[test]
    fn a_nacked_tag_is_never_covered_by_a_later_multiple_ack() {
        let mut ledger = AckLedger::default();
        let now = Instant::now();
        for tag in 1..=3 {
            ledger.delivered(tag);
        }
        ledger.settled_elsewhere(1);
        ledger.finished(2, now);
        ledger.finished(3, now);
        // Multiple up to 3 would also settle 1, which the broker already
        // took back by the nack: a multiple ack skips settled tags, so this
        // is safe, and it is one frame.
        assert_eq!(
            ledger.plan(now, WAIT),
            vec![AckFrame {
                tag: 3,
                multiple: true
            }]
        );
        assert_eq!(ledger.pending(), 0);
    }
}
