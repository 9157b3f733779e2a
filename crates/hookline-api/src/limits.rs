//! Cheap refusals before expensive work: unknown bearer tokens remembered
//! for a short while (so guessing costs no database query each), and a
//! per-tenant budget for test sends and replays, which make real requests
//! to customers' endpoints.

use hookline_runtime::buckets::KeyedBuckets;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long an unknown token is answered `401` from memory. Short, since a
/// key created meanwhile cannot be in it (its hash was never looked up).
const UNKNOWN_TOKEN_TTL: Duration = Duration::from_secs(10);
/// Most unknown tokens remembered; past it the oldest are dropped.
const UNKNOWN_TOKENS_MAX: usize = 10_000;

/// Hashes of bearer tokens the database did not know, and when.
#[derive(Default)]
pub(crate) struct UnknownTokens {
    seen: Mutex<HashMap<String, Instant>>,
}

impl UnknownTokens {
    /// Whether `hash` was unknown less than [`UNKNOWN_TOKEN_TTL`] ago.
    pub(crate) fn is_known_bad(&self, hash: &str) -> bool {
        self.seen
            .lock()
            .get(hash)
            .is_some_and(|at| at.elapsed() < UNKNOWN_TOKEN_TTL)
    }

    /// Remembers that the database does not know `hash`.
    pub(crate) fn remember(&self, hash: String) {
        let mut seen = self.seen.lock();
        if seen.len() >= UNKNOWN_TOKENS_MAX {
            seen.retain(|_, at| at.elapsed() < UNKNOWN_TOKEN_TTL);
            if seen.len() >= UNKNOWN_TOKENS_MAX {
                seen.clear();
            }
        }
        seen.insert(hash, Instant::now());
    }
}

/// A token bucket per key (a tenant, a subscription): `per_minute`
/// requests, refilled evenly.
pub(crate) struct MinuteBudget(KeyedBuckets<String>);

/// Wrong verification tokens one subscription may be sent a minute before
/// every try is refused: a person pasting a token errs once or twice;
/// guessing 256 bits needs far more.
pub(crate) const WRONG_TOKENS_PER_MINUTE: u32 = 5;

impl MinuteBudget {
    /// `per_minute` requests a minute per key, in bursts of as many.
    pub(crate) fn new(per_minute: u32) -> Self {
        let capacity = f64::from(per_minute.max(1));
        Self(KeyedBuckets::new(capacity, capacity / 60.0))
    }

    /// Takes one request from `key`'s budget, or says how long until one
    /// is available.
    pub(crate) fn take(&self, key: &str) -> Result<(), Duration> {
        self.0.take(&key.to_string())
    }

    /// Whether `key` has a request left, without spending it.
    pub(crate) fn check(&self, key: &str) -> Result<(), Duration> {
        self.0.check(&key.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_gets_its_burst_then_waits_and_others_are_unaffected() {
        let budget = MinuteBudget::new(2);
        assert!(budget.take("acme").is_ok());
        assert!(budget.take("acme").is_ok());
        let wait = budget.take("acme").unwrap_err();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(budget.take("globex").is_ok());
    }

    #[test]
    fn unknown_tokens_are_remembered_briefly() {
        let unknown = UnknownTokens::default();
        assert!(!unknown.is_known_bad("h"));
        unknown.remember("h".into());
        assert!(unknown.is_known_bad("h"));
    }
}
