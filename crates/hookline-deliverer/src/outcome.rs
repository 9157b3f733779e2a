//! The decision after one attempt, kept pure (no AMQP, no clock) so that
//! every branch of the retry rules is unit-tested here, and the handler
//! only carries it out.

use std::time::Duration;

use hookline_model::retry::{Classification, RetryPolicy, StatusClass, Step};
use hookline_proto::AttemptStatus;
use hookline_send::SendResult;

/// Where the task goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHop {
    /// Delivered: only the history record is left to write.
    Delivered,
    /// The endpoint answered `410 Gone`: no retry; the api disables the
    /// subscription when it records the attempt.
    Gone,
    /// Back on the ladder: wait `delay`, then make attempt `attempt`.
    Retry {
        /// The rung's delay, which names its wait queue.
        delay: Duration,
        /// The 1-based number of the next attempt.
        attempt: u32,
    },
    /// Parked as a dead letter, for replay.
    Park,
    /// A verification challenge that was not answered with its token: it
    /// is not retried (the tenant asks for a new one, with a new token).
    Unanswered,
}

impl NextHop {
    /// The status history records for the attempt that led here.
    pub fn status(self) -> AttemptStatus {
        match self {
            NextHop::Delivered => AttemptStatus::Succeeded,
            NextHop::Gone | NextHop::Retry { .. } | NextHop::Unanswered => AttemptStatus::Failed,
            NextHop::Park => AttemptStatus::Dead,
        }
    }
}

/// The next hop after attempt `attempt` ended with `result`: tasks whose
/// credentials do not open and tasks redelivered too often are parked at
/// once (retrying cannot help them); other failures climb the ladder until
/// it is exhausted.
pub fn decide(attempt: u32, result: &SendResult, policy: &RetryPolicy) -> NextHop {
    match result.classification {
        Classification::Succeeded => NextHop::Delivered,
        Classification::Gone => NextHop::Gone,
        Classification::Unsendable | Classification::Redelivered | Classification::Unrenderable => {
            NextHop::Park
        }
        Classification::Failed => match policy.after_failure(attempt, result.retry_after) {
            Step::Retry { delay, attempt, .. } => NextHop::Retry { delay, attempt },
            Step::Exhausted => NextHop::Park,
        },
    }
}

/// The decision after a verification challenge: `echoed` when the answer
/// was a 2xx holding the token. A challenge never climbs the ladder nor
/// becomes a dead letter, whose replay would send a stale token.
pub fn decide_challenge(result: &SendResult, echoed: bool) -> NextHop {
    match result.classification {
        Classification::Succeeded if echoed => NextHop::Delivered,
        Classification::Gone => NextHop::Gone,
        _ => NextHop::Unanswered,
    }
}

/// The result that parks a message delivered `count` times without an
/// ack (a task, or each event of a batch) instead of sending it again.
pub fn redelivered(count: i64) -> SendResult {
    SendResult {
        classification: Classification::Redelivered,
        status_class: StatusClass::Connect,
        response_status: None,
        duration: Duration::ZERO,
        error: Some(format!(
            "delivered {count} times without being acked (deliverers crashed on it or gave it \
             back); parked before the broker's delivery limit of {}",
            hookline_amqp::DELIVERY_LIMIT
        )),
        retry_after: None,
        answer: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use hookline_model::retry::StatusClass;

    use super::*;

    fn result(classification: Classification, retry_after: Option<Duration>) -> SendResult {
        SendResult {
            classification,
            status_class: StatusClass::ServerError,
            response_status: Some(500),
            duration: Duration::from_millis(5),
            error: None,
            retry_after,
            answer: Vec::new(),
        }
    }

    fn ladder() -> RetryPolicy {
        RetryPolicy::new(vec![Duration::from_secs(1), Duration::from_secs(10)])
    }

    #[test]
    fn failures_climb_the_ladder_then_park() {
        let failed = result(Classification::Failed, None);
        assert_eq!(
            decide(1, &failed, &ladder()),
            NextHop::Retry {
                delay: Duration::from_secs(1),
                attempt: 2
            }
        );
        assert_eq!(
            decide(2, &failed, &ladder()),
            NextHop::Retry {
                delay: Duration::from_secs(10),
                attempt: 3
            }
        );
        assert_eq!(decide(3, &failed, &ladder()), NextHop::Park);
        assert_eq!(decide(3, &failed, &ladder()).status(), AttemptStatus::Dead);
    }

    #[test]
    fn a_retry_after_moves_up_to_a_longer_rung() {
        let asked = result(Classification::Failed, Some(Duration::from_secs(5)));
        assert_eq!(
            decide(1, &asked, &ladder()),
            NextHop::Retry {
                delay: Duration::from_secs(10),
                attempt: 2
            }
        );
    }

    #[test]
    fn success_gone_and_hopeless_tasks_never_retry() {
        let ladder = ladder();
        let hop = |c| decide(1, &result(c, None), &ladder);
        assert_eq!(hop(Classification::Succeeded), NextHop::Delivered);
        assert_eq!(hop(Classification::Gone), NextHop::Gone);
        assert_eq!(hop(Classification::Gone).status(), AttemptStatus::Failed);
        assert_eq!(hop(Classification::Unsendable), NextHop::Park);
        assert_eq!(hop(Classification::Redelivered), NextHop::Park);
        assert_eq!(hop(Classification::Unrenderable), NextHop::Park);
    }

    #[test]
    fn a_challenge_is_delivered_only_when_echoed_and_never_retried() {
        let ok = result(Classification::Succeeded, None);
        assert_eq!(decide_challenge(&ok, true), NextHop::Delivered);
        assert_eq!(decide_challenge(&ok, false), NextHop::Unanswered);
        let failed = result(Classification::Failed, None);
        assert_eq!(decide_challenge(&failed, false), NextHop::Unanswered);
        let gone = result(Classification::Gone, None);
        assert_eq!(decide_challenge(&gone, false), NextHop::Gone);
        assert_eq!(NextHop::Unanswered.status(), AttemptStatus::Failed);
    }
}
