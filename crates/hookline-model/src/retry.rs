//! Classifying an attempt's result and choosing what happens next.

use std::time::{Duration, SystemTime};

/// Coarse result class, the `status_class` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx.
    Success,
    /// 1xx or 3xx (redirects are never followed).
    Redirect,
    /// 4xx.
    ClientError,
    /// 5xx.
    ServerError,
    /// No complete answer within the deadline.
    Timeout,
    /// DNS, TCP, TLS or guard refusal before an answer.
    Connect,
}

impl StatusClass {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Success => "2xx",
            StatusClass::Redirect => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
            StatusClass::Timeout => "timeout",
            StatusClass::Connect => "connect",
        }
    }
}

/// What one attempt's result means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// 2xx: done.
    Succeeded,
    /// Anything else: try again later, unless the ladder is exhausted.
    Failed,
    /// 410 Gone: the receiver asked us to stop; the subscription is disabled
    /// and no further attempt is made.
    Gone,
    /// Nothing was sent: the task's sealed credentials do not open with the
    /// configured keys. Retrying cannot help until an operator fixes
    /// `api.secret_key` / `api.previous_secret_keys`, so the task is parked
    /// as a dead letter at once, to be replayed after the fix.
    Unsendable,
    /// Nothing was sent this time: the broker has delivered the task so
    /// often without an ack (deliverers crashed on it, or gave it back at
    /// shutdown) that the next return would make the broker drop it into
    /// the dead queue without a history. Parked as a dead letter at once.
    Redelivered,
    /// Nothing was sent: the subscription's body template failed on this
    /// event (out of fuel, over the size limit, or an error in a filter).
    /// The same template would fail again, so the task is parked at once;
    /// a replay after the template is fixed renders it afresh.
    Unrenderable,
}

/// Classifies an HTTP status.
pub fn classify_status(status: u16) -> (Classification, StatusClass) {
    match status {
        200..=299 => (Classification::Succeeded, StatusClass::Success),
        410 => (Classification::Gone, StatusClass::ClientError),
        400..=499 => (Classification::Failed, StatusClass::ClientError),
        500..=599 => (Classification::Failed, StatusClass::ServerError),
        _ => (Classification::Failed, StatusClass::Redirect),
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Wait on rung `rung` (its delay is `delay`), then make attempt `attempt`.
    Retry {
        /// Index into the ladder.
        rung: usize,
        /// The rung's delay.
        delay: Duration,
        /// The 1-based number of the next attempt.
        attempt: u32,
    },
    /// No attempts left: park the task as a dead letter.
    Exhausted,
}

/// The retry ladder: `delays.len() + 1` attempts in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    delays: Vec<Duration>,
}

impl RetryPolicy {
    /// A ladder of waits, shortest first.
    pub fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// The waits.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// Attempts in all.
    pub fn max_attempts(&self) -> u32 {
        self.delays.len() as u32 + 1
    }

    /// After attempt `attempt` (1-based) failed: the next rung, bumped up to
    /// the first rung at or above `retry_after` when the receiver asked for a
    /// longer wait (clamped to the last rung).
    pub fn after_failure(&self, attempt: u32, retry_after: Option<Duration>) -> Step {
        let normal = attempt.saturating_sub(1) as usize;
        if attempt == 0 || normal >= self.delays.len() {
            return Step::Exhausted;
        }
        let mut rung = normal;
        if let Some(wanted) = retry_after {
            let at_or_above = self
                .delays
                .iter()
                .position(|d| *d >= wanted)
                .unwrap_or(self.delays.len() - 1);
            rung = rung.max(at_or_above);
        }
        Step::Retry {
            rung,
            delay: self.delays[rung],
            attempt: attempt + 1,
        }
    }
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP date. Garbage is
/// ignored (`None`); a date in the past is zero.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(100 * 365 * 86400)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn policy() -> RetryPolicy {
        RetryPolicy::new(vec![secs(5), secs(30), secs(120)])
    }

    #[test]
    fn statuses_classify_as_the_contract_says() {
        assert_eq!(classify_status(204).0, Classification::Succeeded);
        assert_eq!(
            classify_status(301),
            (Classification::Failed, StatusClass::Redirect)
        );
        assert_eq!(
            classify_status(404),
            (Classification::Failed, StatusClass::ClientError)
        );
        assert_eq!(classify_status(410).0, Classification::Gone);
        assert_eq!(
            classify_status(503),
            (Classification::Failed, StatusClass::ServerError)
        );
    }

    #[test]
    fn each_failure_climbs_one_rung_until_the_ladder_is_exhausted() {
        let p = policy();
        assert_eq!(p.max_attempts(), 4);
        assert_eq!(
            p.after_failure(1, None),
            Step::Retry {
                rung: 0,
                delay: secs(5),
                attempt: 2
            }
        );
        assert_eq!(
            p.after_failure(3, None),
            Step::Retry {
                rung: 2,
                delay: secs(120),
                attempt: 4
            }
        );
        assert_eq!(p.after_failure(4, None), Step::Exhausted);
    }

    #[test]
    fn retry_after_picks_the_first_rung_at_or_above_it() {
        let p = policy();
        assert_eq!(
            p.after_failure(1, Some(secs(10))),
            Step::Retry {
                rung: 1,
                delay: secs(30),
                attempt: 2
            }
        );
        assert_eq!(
            p.after_failure(1, Some(secs(30))),
            Step::Retry {
                rung: 1,
                delay: secs(30),
                attempt: 2
            }
        );
        assert_eq!(
            p.after_failure(2, Some(secs(1))),
            Step::Retry {
                rung: 1,
                delay: secs(30),
                attempt: 3
            }
        );
    }

    #[test]
    fn retry_after_beyond_the_ladder_is_clamped_to_the_last_rung() {
        let p = policy();
        assert_eq!(
            p.after_failure(1, Some(secs(86400 * 365))),
            Step::Retry {
                rung: 2,
                delay: secs(120),
                attempt: 2
            }
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_dates_and_ignores_garbage() {
        let now = SystemTime::UNIX_EPOCH + secs(1_700_000_000);
        assert_eq!(parse_retry_after("120", now), Some(secs(120)));
        let later = httpdate::fmt_http_date(now + secs(60));
        assert_eq!(parse_retry_after(&later, now), Some(secs(60)));
        let earlier = httpdate::fmt_http_date(now - secs(60));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn an_empty_ladder_means_one_attempt() {
        assert_eq!(
            RetryPolicy::new(vec![]).after_failure(1, None),
            Step::Exhausted
        );
    }
}
