//! The subscription index with load versions, so an older snapshot never
//! replaces newer state.
//!
//! Fanout loads the index two ways: everything (at start and periodically)
//! and one tenant (when the api announces a change). The two race: a full
//! load whose query ran before a change, but finished after that tenant's
//! reload, would put the old rows back (a new subscription missing events, a
//! rotated secret reverted) until the next full load. Each load takes a
//! ticket from one clock *before* it queries; a result is applied only over
//! state loaded with an older ticket.

use std::collections::HashMap;

use crate::matching::{Identified, SubscriptionIndex};

/// A [`SubscriptionIndex`] and the ticket each part of it was loaded with.
#[derive(Debug)]
pub struct VersionedIndex<T> {
    index: SubscriptionIndex<T>,
    clock: u64,
    /// Ticket of the last full load applied.
    full: u64,
    /// Tenants reloaded with a ticket newer than `full`.
    tenants: HashMap<String, u64>,
}

impl<T> Default for VersionedIndex<T> {
    fn default() -> Self {
        Self {
            index: SubscriptionIndex::default(),
            clock: 0,
            full: 0,
            tenants: HashMap::new(),
        }
    }
}

/// Taken before a load queries the database; orders loads by when their
/// snapshot was read, not by when they finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

impl<T: Identified> VersionedIndex<T> {
    /// The index to match against.
    pub fn index(&self) -> &SubscriptionIndex<T> {
        &self.index
    }

    /// A ticket for a load about to query.
    pub fn ticket(&mut self) -> Ticket {
        self.clock += 1;
        Ticket(self.clock)
    }

    fn version_of(&self, tenant: &str) -> u64 {
        self.tenants
            .get(tenant)
            .copied()
            .unwrap_or(0)
            .max(self.full)
    }

    /// Applies a full load; tenants reloaded since its ticket was taken keep
    /// their newer rows. Returns whether anything was applied.
    pub fn apply_full(&mut self, ticket: Ticket, mut fresh: SubscriptionIndex<T>) -> bool {
        if ticket.0 <= self.full {
            return false;
        }
        let newer: Vec<String> = self
            .tenants
            .iter()
            .filter(|(_, loaded)| **loaded > ticket.0)
            .map(|(tenant, _)| tenant.clone())
            .collect();
        for tenant in &newer {
            let kept = self.index.take_tenant(tenant);
            fresh.replace_tenant(tenant, kept);
        }
        self.index = fresh;
        self.full = ticket.0;
        self.tenants.retain(|_, loaded| *loaded > ticket.0);
        true
    }

    /// Applies one tenant's reload unless newer rows of that tenant are
    /// already in. Returns whether it was applied.
    pub fn apply_tenant(
        &mut self,
        ticket: Ticket,
        tenant: &str,
        fresh: SubscriptionIndex<T>,
    ) -> bool {
        if ticket.0 <= self.version_of(tenant) {
            return false;
        }
        self.index.replace_tenant(tenant, fresh);
        self.tenants.insert(tenant.to_string(), ticket.0);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::matching::Pattern;

    #[derive(Debug)]
    struct Sub(&'static str);
    impl Identified for Sub {
        fn id(&self) -> &str {
            self.0
        }
    }

    fn one(tenant: &str, id: &'static str) -> SubscriptionIndex<Sub> {
        let mut index = SubscriptionIndex::default();
        index.insert(tenant, &[Pattern::All], Arc::new(Sub(id)));
        index
    }

    fn ids(index: &VersionedIndex<Sub>, tenant: &str) -> Vec<&'static str> {
        index
            .index()
            .matching(tenant, "x")
            .iter()
            .map(|s| s.0)
            .collect()
    }

    #[test]
    fn a_full_load_read_before_a_tenant_reload_does_not_undo_it() {
        let mut index = VersionedIndex::default();
        let full = index.ticket(); // the full load queries: sub_old only
        let tenant = index.ticket(); // a change, then the tenant reload queries
        assert!(index.apply_tenant(tenant, "acme", one("acme", "sub_new")));
        assert!(index.apply_full(full, one("acme", "sub_old")));
        assert_eq!(ids(&index, "acme"), ["sub_new"]);
        assert_eq!(index.index().len(), 1);
    }

    #[test]
    fn a_tenant_reload_older_than_the_last_full_load_is_ignored() {
        let mut index = VersionedIndex::default();
        let tenant = index.ticket();
        let full = index.ticket();
        assert!(index.apply_full(full, one("acme", "sub_new")));
        assert!(!index.apply_tenant(tenant, "acme", one("acme", "sub_old")));
        assert_eq!(ids(&index, "acme"), ["sub_new"]);
    }

    #[test]
    fn an_older_full_load_never_replaces_a_newer_one() {
        let mut index = VersionedIndex::default();
        let first = index.ticket();
        let second = index.ticket();
        assert!(index.apply_full(second, one("acme", "sub_new")));
        assert!(!index.apply_full(first, one("acme", "sub_old")));
        assert_eq!(ids(&index, "acme"), ["sub_new"]);
    }

    #[test]
    fn newer_loads_apply_in_turn() {
        let mut index = VersionedIndex::default();
        let t1 = index.ticket();
        assert!(index.apply_full(t1, one("acme", "sub_a")));
        let t2 = index.ticket();
        assert!(index.apply_tenant(t2, "acme", SubscriptionIndex::default()));
        assert!(ids(&index, "acme").is_empty());
        let t3 = index.ticket();
        assert!(index.apply_full(t3, one("acme", "sub_b")));
        assert_eq!(ids(&index, "acme"), ["sub_b"]);
    }
}
