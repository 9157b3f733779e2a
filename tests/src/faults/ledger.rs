//! What a receiver saw, per delivery: the exact set of event ids that
//! arrived on each path, the duplicates, and whether every copy of one
//! delivery carried the same `webhook-id` (what receivers deduplicate on).

use std::collections::{BTreeMap, BTreeSet};

use crate::Captured;

/// Requests grouped by `(path, event id)`, each with its `webhook-id`.
#[derive(Debug, Default)]
pub struct Ledger {
    deliveries: BTreeMap<(String, String), Vec<String>>,
}

impl Ledger {
    /// Groups captured requests; a body without an `id` counts under `""`.
    pub fn of(requests: &[Captured]) -> Self {
        let mut deliveries: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for request in requests {
            let id = request.json()["id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let webhook_id = request.header("webhook-id").unwrap_or_default().to_string();
            deliveries
                .entry((request.path.clone(), id))
                .or_default()
                .push(webhook_id);
        }
        Self { deliveries }
    }

    /// Event ids that arrived on `path` at least once.
    pub fn event_ids(&self, path: &str) -> BTreeSet<String> {
        self.deliveries
            .keys()
            .filter(|(p, _)| p == path)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// How many times `event_id` arrived on `path`.
    pub fn copies(&self, path: &str, event_id: &str) -> usize {
        self.deliveries
            .get(&(path.to_string(), event_id.to_string()))
            .map_or(0, Vec::len)
    }

    /// Requests beyond the first of each delivery.
    pub fn duplicates(&self) -> usize {
        self.deliveries
            .values()
            .map(|copies| copies.len() - 1)
            .sum()
    }

    /// Panics unless every copy of each delivery had one and the same
    /// non-empty `webhook-id`, and different deliveries had different ones.
    pub fn assert_one_webhook_id_per_delivery(&self) {
        let mut seen = BTreeMap::new();
        for (key, ids) in &self.deliveries {
            let first = &ids[0];
            assert!(!first.is_empty(), "{key:?} arrived without a webhook-id");
            assert!(
                ids.iter().all(|id| id == first),
                "copies of {key:?} carried different webhook-ids: {ids:?}"
            );
            if let Some(other) = seen.insert(first.clone(), key.clone()) {
                panic!("{key:?} and {other:?} share the webhook-id {first}");
            }
        }
    }
}

/// Panics unless `delivered` is exactly `expected`, naming what is missing
/// and what is extra.
pub fn assert_same_ids(what: &str, delivered: &BTreeSet<String>, expected: &BTreeSet<String>) {
    let missing: Vec<_> = expected.difference(delivered).collect();
    let extra: Vec<_> = delivered.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} expected, {} delivered; missing {missing:?}; unexpected {extra:?}",
        expected.len(),
        delivered.len()
    );
}
