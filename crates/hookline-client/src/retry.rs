//! The one retry loop both transports use: try, and on an outcome that
//! leaves it unknown whether Hookline has the event, wait a jittered,
//! doubling delay and try again, until the deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::PublishError;

/// One try's outcome when it did not succeed.
pub(crate) enum Failed {
    /// Unknown whether Hookline has it: send again, same id.
    Retry(String),
    /// Hookline answered, and sending again will not change the answer.
    Refused(PublishError),
}

/// How long to keep trying, and how far apart.
#[derive(Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
    pub(crate) deadline: Duration,
}

/// Runs `attempt` until it succeeds, is refused, or the next wait would
/// pass the deadline ([`PublishError::Unavailable`] then).
pub(crate) async fn until_deadline<T, F, Fut>(
    backoff: Backoff,
    mut attempt: F,
) -> Result<T, PublishError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failed>>,
{
    let started = Instant::now();
    let mut delay = backoff.initial;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(Failed::Refused(error)) => return Err(error),
            Err(Failed::Retry(reason)) => {
                let wait = jittered(delay);
                if started.elapsed() + wait > backoff.deadline {
                    return Err(PublishError::Unavailable(format!(
                        "{reason} (gave up after {:?}; publish the same event again)",
                        started.elapsed()
                    )));
                }
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(backoff.max);
            }
        }
    }
}

/// `delay` scaled by a random factor in [0.5, 1.5), so that many producers
/// cut off together do not come back together.
fn jittered(delay: Duration) -> Duration {
    let random = (ulid::Ulid::new().random() % 1000) as f64 / 1000.0;
    delay.mul_f64(0.5 + random)
}
