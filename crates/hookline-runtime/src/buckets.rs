//! Token buckets by key: the api's per-tenant budget of manual sends and
//! ingest's per-source rate limit are the same rule with other numbers.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Past this many keys, idle full buckets are forgotten (a full bucket is
/// what a new key gets anyway).
const MAX_KEYS: usize = 100_000;

/// One bucket per key: `capacity` requests at once, refilled at
/// `per_second`.
pub struct KeyedBuckets<K> {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Eq + Hash + Clone> KeyedBuckets<K> {
    /// Buckets holding `capacity` (at least 1) refilled at `per_second`.
    pub fn new(capacity: f64, per_second: f64) -> Self {
        Self {
            capacity: capacity.max(1.0),
            per_second: per_second.max(f64::MIN_POSITIVE),
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from `key`'s bucket, or says how long until one is
    /// available.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let full_after = Duration::from_secs_f64(self.capacity / self.per_second);
            buckets.retain(|_, (_, at)| now.duration_since(*at) < full_after);
        }
        let (tokens, at) = buckets.entry(key.clone()).or_insert((self.capacity, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_second))
        }
    }

    /// Whether `key` could take a request now, without taking it: for a
    /// budget that only failures spend, checked before the work.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let buckets = self.buckets.lock();
        let Some((tokens, at)) = buckets.get(key) else {
            return Ok(());
        };
        let tokens = (tokens + at.elapsed().as_secs_f64() * self.per_second).min(self.capacity);
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
        }
    }

    /// Forgets the keys `keep` refuses (deleted sources, say).
    pub fn retain(&self, keep: impl Fn(&K) -> bool) {
        self.buckets.lock().retain(|key, _| keep(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_says_what_take_would_without_spending() {
        let buckets = KeyedBuckets::new(1.0, 0.001);
        assert!(buckets.check(&"a").is_ok());
        assert!(buckets.check(&"a").is_ok());
        assert!(buckets.take(&"a").is_ok());
        assert!(buckets.check(&"a").is_err());
        assert!(buckets.take(&"a").is_err());
        assert!(buckets.check(&"b").is_ok());
    }

    #[test]
    fn a_key_gets_its_burst_then_waits_and_others_are_unaffected() {
        let buckets = KeyedBuckets::new(2.0, 1.0);
        assert!(buckets.take(&"a").is_ok());
        assert!(buckets.take(&"a").is_ok());
        let wait = buckets.take(&"a").unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(buckets.take(&"b").is_ok());
        buckets.retain(|key| *key != "a");
        assert!(buckets.take(&"a").is_ok(), "a forgotten key starts full");
    }
}
