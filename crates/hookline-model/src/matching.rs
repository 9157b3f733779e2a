//! Subscription patterns and the index fanout matches events against.
//!
//! Lookup cost is O(patterns for that tenant and type): one hash lookup for
//! the exact type, one per dot-prefix of the type, plus the tenant's `*`
//! subscriptions; never a scan of all subscriptions.

use std::collections::HashMap;
use std::sync::Arc;

use crate::envelope::is_valid_event_type;

/// One entry of a subscription's `event_types`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// `lead.created`: that type only.
    Exact(String),
    /// `lead.*`: every type under `lead.` at any depth.
    Prefix(String),
    /// `*`: every type.
    All,
}

impl Pattern {
    /// Parses `lead.created`, `lead.*` or `*`; `None` when malformed.
    pub fn parse(text: &str) -> Option<Pattern> {
        if text == "*" {
            return Some(Pattern::All);
        }
        if let Some(prefix) = text.strip_suffix(".*") {
            return is_valid_event_type(prefix).then(|| Pattern::Prefix(prefix.to_string()));
        }
        is_valid_event_type(text).then(|| Pattern::Exact(text.to_string()))
    }

    /// Whether an event type matches; the index does the same faster.
    pub fn matches(&self, event_type: &str) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Exact(t) => t == event_type,
            Pattern::Prefix(p) => event_type
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.starts_with('.')),
        }
    }
}

#[derive(Debug)]
struct TenantIndex<T> {
    exact: HashMap<String, Vec<Arc<T>>>,
    prefix: HashMap<String, Vec<Arc<T>>>,
    all: Vec<Arc<T>>,
}

impl<T> Default for TenantIndex<T> {
    fn default() -> Self {
        Self {
            exact: HashMap::new(),
            prefix: HashMap::new(),
            all: Vec::new(),
        }
    }
}

/// Enabled subscriptions by tenant and pattern. `T` is whatever the caller
/// needs per subscription (fanout keeps the ready-to-send task template).
#[derive(Debug)]
pub struct SubscriptionIndex<T> {
    tenants: HashMap<String, TenantIndex<T>>,
    len: usize,
}

impl<T> Default for SubscriptionIndex<T> {
    fn default() -> Self {
        Self {
            tenants: HashMap::new(),
            len: 0,
        }
    }
}

/// Something the index can tell apart, so a subscription that matches through
/// two patterns is delivered once.
pub trait Identified {
    /// Stable id.
    fn id(&self) -> &str;
}

impl<T: Identified> SubscriptionIndex<T> {
    /// Adds one subscription under each of its patterns.
    pub fn insert(&mut self, tenant: &str, patterns: &[Pattern], subscription: Arc<T>) {
        let index = self.tenants.entry(tenant.to_string()).or_default();
        for pattern in patterns {
            let list = match pattern {
                Pattern::All => &mut index.all,
                Pattern::Exact(t) => index.exact.entry(t.clone()).or_default(),
                Pattern::Prefix(p) => index.prefix.entry(p.clone()).or_default(),
            };
            list.push(subscription.clone());
        }
        self.len += 1;
    }

    /// Replaces everything known about one tenant.
    pub fn replace_tenant(&mut self, tenant: &str, other: SubscriptionIndex<T>) {
        let old = self.count_tenant(tenant);
        self.tenants.remove(tenant);
        self.len -= old;
        let added = other.len;
        if let Some(index) = other
            .tenants
            .into_iter()
            .find(|(t, _)| t == tenant)
            .map(|(_, i)| i)
        {
            self.tenants.insert(tenant.to_string(), index);
            self.len += added;
        }
    }

    /// Removes one tenant and returns it as an index of its own.
    pub fn take_tenant(&mut self, tenant: &str) -> SubscriptionIndex<T> {
        let count = self.count_tenant(tenant);
        let mut taken = SubscriptionIndex::default();
        if let Some(index) = self.tenants.remove(tenant) {
            self.len -= count;
            taken.tenants.insert(tenant.to_string(), index);
            taken.len = count;
        }
        taken
    }

    /// The tenants that have at least one subscription.
    pub fn tenants(&self) -> impl Iterator<Item = &str> {
        self.tenants.keys().map(String::as_str)
    }

    fn count_tenant(&self, tenant: &str) -> usize {
        let Some(index) = self.tenants.get(tenant) else {
            return 0;
        };
        let mut ids: Vec<&str> = index
            .exact
            .values()
            .chain(index.prefix.values())
            .flatten()
            .chain(index.all.iter())
            .map(|s| s.id())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// Subscriptions loaded.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is loaded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every subscription of `tenant` matching `event_type`, each once.
    pub fn matching(&self, tenant: &str, event_type: &str) -> Vec<Arc<T>> {
        let Some(index) = self.tenants.get(tenant) else {
            return Vec::new();
        };
        let mut found: Vec<Arc<T>> = Vec::new();
        let mut push = |list: &Vec<Arc<T>>| {
            for s in list {
                if !found.iter().any(|f| f.id() == s.id()) {
                    found.push(s.clone());
                }
            }
        };
        if let Some(list) = index.exact.get(event_type) {
            push(list);
        }
        for (i, byte) in event_type.bytes().enumerate() {
            if byte == b'.' {
                if let Some(list) = index.prefix.get(&event_type[..i]) {
                    push(list);
                }
            }
        }
        push(&index.all);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Sub(&'static str);
    impl Identified for Sub {
        fn id(&self) -> &str {
            self.0
        }
    }

    fn patterns(list: &[&str]) -> Vec<Pattern> {
        list.iter().map(|p| Pattern::parse(p).unwrap()).collect()
    }

    fn ids(found: Vec<Arc<Sub>>) -> Vec<&'static str> {
        let mut ids: Vec<_> = found.iter().map(|s| s.0).collect();
        ids.sort();
        ids
    }

    #[test]
    fn patterns_parse_exact_prefix_and_all() {
        assert_eq!(Pattern::parse("*"), Some(Pattern::All));
        assert_eq!(
            Pattern::parse("lead.*"),
            Some(Pattern::Prefix("lead".into()))
        );
        assert_eq!(
            Pattern::parse("lead.created"),
            Some(Pattern::Exact("lead.created".into()))
        );
        for bad in ["", "lead.", "Lead", "lead.**", "*.created", "lead*", ".*"] {
            assert_eq!(Pattern::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_prefix_matches_types_below_it_only() {
        let p = Pattern::parse("lead.*").unwrap();
        assert!(p.matches("lead.created"));
        assert!(p.matches("lead.note.added"));
        assert!(!p.matches("lead"));
        assert!(!p.matches("leads.created"));
    }

    #[test]
    fn the_index_matches_by_tenant_exact_prefix_and_wildcard() {
        let mut index = SubscriptionIndex::default();
        index.insert("acme", &patterns(&["lead.created"]), Arc::new(Sub("exact")));
        index.insert("acme", &patterns(&["lead.*"]), Arc::new(Sub("prefix")));
        index.insert("acme", &patterns(&["*"]), Arc::new(Sub("all")));
        index.insert(
            "acme",
            &patterns(&["appointment.*"]),
            Arc::new(Sub("other")),
        );
        index.insert("globex", &patterns(&["*"]), Arc::new(Sub("globex")));
        assert_eq!(
            ids(index.matching("acme", "lead.created")),
            ["all", "exact", "prefix"]
        );
        assert_eq!(
            ids(index.matching("acme", "lead.updated")),
            ["all", "prefix"]
        );
        assert_eq!(ids(index.matching("acme", "invoice.paid")), ["all"]);
        assert_eq!(
            ids(index.matching("initech", "lead.created")),
            Vec::<&str>::new()
        );
        assert_eq!(index.len(), 5);
    }

    #[test]
    fn a_subscription_matching_through_two_patterns_is_found_once() {
        let mut index = SubscriptionIndex::default();
        index.insert(
            "acme",
            &patterns(&["lead.created", "lead.*", "*"]),
            Arc::new(Sub("s")),
        );
        assert_eq!(ids(index.matching("acme", "lead.created")), ["s"]);
    }

    #[test]
    fn replacing_a_tenant_keeps_the_others() {
        let mut index = SubscriptionIndex::default();
        index.insert("acme", &patterns(&["*"]), Arc::new(Sub("a1")));
        index.insert("globex", &patterns(&["*"]), Arc::new(Sub("g1")));
        let mut fresh = SubscriptionIndex::default();
        fresh.insert("acme", &patterns(&["lead.*"]), Arc::new(Sub("a2")));
        index.replace_tenant("acme", fresh);
        assert_eq!(ids(index.matching("acme", "lead.x")), ["a2"]);
        assert_eq!(ids(index.matching("globex", "lead.x")), ["g1"]);
        assert_eq!(index.len(), 2);
        index.replace_tenant("acme", SubscriptionIndex::default());
        assert_eq!(index.len(), 1);
    }
}
