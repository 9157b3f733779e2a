//! Per-subscription admission, so one slow endpoint cannot take a
//! deliverer's throughput from the healthy ones.
//!
//! A subscription may have `cap` sends in flight. A task over the cap waits
//! here (holding no worker slot) for at most `max_wait`, in a line bounded
//! only by that wait while the endpoint answers fast (a burst drains in
//! milliseconds) and of at most `cap` once its last answer was slow. A task
//! that finds the line full, or waits longer, is deferred: moved into the
//! subscription's slow lane without counting an attempt.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Per-subscription state.
#[derive(Debug)]
struct Gate {
    sends: Arc<Semaphore>,
    waiting: AtomicUsize,
    slow: AtomicBool,
    /// When each send in flight started, oldest first: a send still running
    /// after `SLOW_ANSWER` marks the endpoint slow before any answer does.
    started: Mutex<VecDeque<(u64, Instant)>>,
    next_ticket: AtomicU64,
}

impl Gate {
    fn new(cap: usize) -> Self {
        Self {
            sends: Arc::new(Semaphore::new(cap)),
            waiting: AtomicUsize::new(0),
            slow: AtomicBool::new(false),
            started: Mutex::new(VecDeque::with_capacity(cap)),
            next_ticket: AtomicU64::new(0),
        }
    }

    fn ticket(self: Arc<Self>, permit: OwnedSemaphorePermit) -> Ticket {
        let id = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        self.started.lock().push_back((id, Instant::now()));
        Ticket {
            _permit: permit,
            gate: self,
            id,
        }
    }

    /// Whether the last answer was slow or a send is taking long now.
    fn is_slow(&self) -> bool {
        self.slow.load(Ordering::Relaxed)
            || self
                .started
                .lock()
                .front()
                .is_some_and(|(_, at)| at.elapsed() > SLOW_ANSWER)
    }
}

/// An answer slower than this marks the endpoint slow.
const SLOW_ANSWER: Duration = Duration::from_millis(500);

/// A send slot of one subscription; reports how long the send took.
#[derive(Debug)]
pub struct Ticket {
    _permit: OwnedSemaphorePermit,
    gate: Arc<Gate>,
    id: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut started = self.gate.started.lock();
        if let Some(at) = started.iter().position(|(id, _)| *id == self.id) {
            started.remove(at);
        }
    }
}

impl Ticket {
    /// Records the send's duration: it decides how long this endpoint's
    /// line may grow.
    pub fn finished(&self, took: Duration) {
        self.gate.slow.store(took > SLOW_ANSWER, Ordering::Relaxed);
    }
}

/// Admission control for one deliverer.
#[derive(Debug)]
pub struct Gates {
    cap: usize,
    max_wait: Duration,
    gates: Mutex<HashMap<String, Arc<Gate>>>,
}

/// The outcome of asking to send.
#[derive(Debug)]
pub enum Admission {
    /// Send now; the ticket frees the subscription's slot when dropped.
    Admitted(Ticket),
    /// The subscription is saturated: put the task back on the ladder.
    Defer,
}

/// Gates kept before idle ones are swept.
const SWEEP_ABOVE: usize = 4096;

impl Gates {
    /// `cap` sends per subscription; `max_wait` in line before deferring.
    pub fn new(cap: usize, max_wait: Duration) -> Self {
        Self {
            cap,
            max_wait,
            gates: Mutex::new(HashMap::new()),
        }
    }

    fn gate(&self, subscription_id: &str) -> Arc<Gate> {
        let mut gates = self.gates.lock();
        if gates.len() > SWEEP_ABOVE {
            let cap = self.cap;
            gates.retain(|_, gate| {
                gate.sends.available_permits() < cap || gate.waiting.load(Ordering::Relaxed) > 0
            });
        }
        gates
            .entry(subscription_id.to_string())
            .or_insert_with(|| Arc::new(Gate::new(self.cap)))
            .clone()
    }

    /// Whether this subscription's last answer was slow.
    pub fn is_slow(&self, subscription_id: &str) -> bool {
        let gates = self.gates.lock();
        gates
            .get(subscription_id)
            .is_some_and(|gate| gate.is_slow())
    }

    /// Waits for a send slot however long it takes: for tasks from the
    /// subscription's own slow lane, whose prefetch already bounds them.
    pub async fn admit_patiently(&self, subscription_id: &str) -> Admission {
        let gate = self.gate(subscription_id);
        gate.waiting.fetch_add(1, Ordering::AcqRel);
        let permit = gate.sends.clone().acquire_owned().await;
        gate.waiting.fetch_sub(1, Ordering::AcqRel);
        match permit {
            Ok(permit) => Admission::Admitted(gate.ticket(permit)),
            Err(_) => Admission::Defer,
        }
    }

    /// Waits for a send slot of `subscription_id`, or says to defer.
    pub async fn admit(&self, subscription_id: &str) -> Admission {
        let gate = self.gate(subscription_id);
        if let Ok(permit) = gate.sends.clone().try_acquire_owned() {
            return Admission::Admitted(gate.ticket(permit));
        }
        // A fast endpoint's line is bounded by the wait alone: its burst
        // clears in milliseconds, and moving it into a gate would only cost
        // the broker work.
        let line = if gate.is_slow() { self.cap } else { usize::MAX };
        if gate.waiting.fetch_add(1, Ordering::AcqRel) >= line {
            gate.waiting.fetch_sub(1, Ordering::AcqRel);
            return Admission::Defer;
        }
        let acquire = gate.sends.clone().acquire_owned();
        let permit = tokio::time::timeout(self.max_wait, acquire)
            .await
            .ok()
            .and_then(Result::ok);
        gate.waiting.fetch_sub(1, Ordering::AcqRel);
        match permit {
            Some(permit) => Admission::Admitted(gate.ticket(permit)),
            None => Admission::Defer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_over_the_cap_waits_for_a_slot_instead_of_being_deferred() {
        let gates = Gates::new(1, Duration::from_secs(1));
        let first = gates.admit("sub").await;
        let Admission::Admitted(permit) = first else {
            panic!("first is admitted")
        };
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(permit);
        });
        assert!(matches!(gates.admit("sub").await, Admission::Admitted(_)));
        release.await.unwrap();
    }

    #[tokio::test]
    async fn a_saturated_subscription_is_deferred_and_others_are_not_affected() {
        let gates = Arc::new(Gates::new(1, Duration::from_millis(50)));
        let Admission::Admitted(_held) = gates.admit("slow").await else {
            panic!("admitted")
        };
        assert!(
            matches!(gates.admit("slow").await, Admission::Defer),
            "waited too long"
        );
        assert!(matches!(gates.admit("fast").await, Admission::Admitted(_)));
    }

    #[tokio::test]
    async fn a_send_running_long_marks_the_endpoint_slow_before_it_answers() {
        let gates = Gates::new(1, Duration::from_secs(5));
        let Admission::Admitted(_held) = gates.admit("slow").await else {
            panic!("admitted")
        };
        assert!(!gates.is_slow("slow"));
        tokio::time::sleep(SLOW_ANSWER + Duration::from_millis(50)).await;
        assert!(gates.is_slow("slow"), "the running send is already slow");
        let waiter = {
            let gates = Arc::new(gates);
            let inner = gates.clone();
            let waiter = tokio::spawn(async move { inner.admit("slow").await });
            tokio::time::sleep(Duration::from_millis(20)).await;
            let started = std::time::Instant::now();
            assert!(matches!(gates.admit("slow").await, Admission::Defer));
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "line of one is full"
            );
            waiter
        };
        waiter.abort();
    }

    #[tokio::test]
    async fn a_full_line_defers_at_once() {
        let gates = Arc::new(Gates::new(1, Duration::from_secs(5)));
        let Admission::Admitted(held) = gates.admit("slow").await else {
            panic!("admitted")
        };
        held.finished(Duration::from_secs(2));
        let waiter = {
            let gates = gates.clone();
            tokio::spawn(async move { gates.admit("slow").await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = std::time::Instant::now();
        assert!(matches!(gates.admit("slow").await, Admission::Defer));
        assert!(started.elapsed() < Duration::from_secs(1));
        waiter.abort();
    }
}
