//! Identifiers: random ones for new objects, derived ones where a redelivery
//! must reproduce the same id.

use sha2::{Digest, Sha256};

/// A new sortable id with a type prefix (`sub_01J…`), newest sorting last.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new())
}

/// The `webhook-id` of every attempt of one event to one subscription. Derived,
/// not random, so that a fanout redelivered after a crash produces the same id
/// and receivers can deduplicate.
pub fn delivery_id(tenant: &str, event_id: &str, subscription_id: &str) -> String {
    let mut hash = Sha256::new();
    for part in [tenant, event_id, subscription_id] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    format!("msg_{}", &hex::encode(hash.finalize())[..32])
}

/// An event id for an AMQP message that came without one: derived from the
/// raw message so that a redelivery of the same message gets the same id.
pub fn event_id_for_message(raw: &[u8]) -> String {
    format!("evt_{}", &hex::encode(Sha256::digest(raw))[..26])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_stable_for_the_same_event_and_subscription() {
        let a = delivery_id("acme", "evt_1", "sub_1");
        assert_eq!(a, delivery_id("acme", "evt_1", "sub_1"));
        assert_ne!(a, delivery_id("acme", "evt_1", "sub_2"));
        assert_ne!(a, delivery_id("acme", "evt_1sub", "_1"));
        assert!(a.starts_with("msg_"));
    }

    #[test]
    fn new_ids_carry_their_prefix_and_differ() {
        let a = new_id("sub");
        assert!(a.starts_with("sub_"));
        assert_ne!(a, new_id("sub"));
    }
}
