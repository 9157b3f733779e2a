//! The request of a batch (`batch` option): one body holding the bodies its
//! events would have had alone, under one `webhook-id` derived from them.
//! Kept here so the deliverer's batches and the api's test sends of a
//! batched subscription are built the same way.

use hookline_proto::DeliveryTask;
use sha2::{Digest, Sha256};

/// What a batch body opens with, before its entries.
const OPEN: &[u8] = b"{\"payload\":[";
/// What a batch body closes with.
const CLOSE: &[u8] = b"]}";

/// What one event adds to a batch body, without the comma before it: its
/// own body, or `null` for an event whose body is empty.
pub fn entry(task: &DeliveryTask) -> &[u8] {
    if task.body.is_empty() {
        b"null"
    } else {
        &task.body
    }
}

/// The length of a batch body of `entries` events whose entries take
/// `entry_bytes` together: checked before an event joins a batch.
pub fn body_len(entries: usize, entry_bytes: usize) -> usize {
    OPEN.len() + CLOSE.len() + entry_bytes + entries.saturating_sub(1)
}

/// `{"payload": [ … ]}` of `tasks`, in their order.
pub fn body(tasks: &[DeliveryTask]) -> Vec<u8> {
    let bytes = tasks.iter().map(|t| entry(t).len()).sum();
    let mut body = Vec::with_capacity(body_len(tasks.len(), bytes));
    body.extend_from_slice(OPEN);
    for (n, task) in tasks.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(entry(task));
    }
    body.extend_from_slice(CLOSE);
    body
}

/// The batch's `webhook-id`: the same events of the same subscription give
/// the same id, so a receiver that saw a batch recognises its retries.
pub fn batch_id(subscription_id: &str, tasks: &[DeliveryTask]) -> String {
    let mut hash = Sha256::new();
    hash.update(subscription_id.as_bytes());
    for task in tasks {
        hash.update([0]);
        hash.update(task.delivery_id.as_bytes());
    }
    let digest = hex::encode(hash.finalize());
    format!("batch_{}", &digest[..32])
}

/// Makes `task` the batch of itself alone: what a test send or a preview of
/// a batching subscription shows, so the receiver checks the shape it will
/// get.
pub fn alone(task: &mut DeliveryTask) {
    let one = std::slice::from_ref(task);
    let (body, id) = (body(one), batch_id(&task.subscription_id, one));
    task.body = body.into();
    task.delivery_id = id;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(delivery_id: &str, body: &str) -> DeliveryTask {
        DeliveryTask {
            delivery_id: delivery_id.into(),
            body: body.as_bytes().to_vec().into(),
            ..DeliveryTask::default()
        }
    }

    #[test]
    fn a_body_holds_each_entry_in_order_and_its_length_is_known_beforehand() {
        let tasks = [
            task("msg_1", r#"{"id":"a"}"#),
            task("msg_2", ""),
            task("msg_3", "[1]"),
        ];
        let body = body(&tasks);
        assert_eq!(body, br#"{"payload":[{"id":"a"},null,[1]]}"#);
        let entries: usize = tasks.iter().map(|t| entry(t).len()).sum();
        assert_eq!(body_len(tasks.len(), entries), body.len());
        assert_eq!(super::body(&[]), br#"{"payload":[]}"#);
        assert_eq!(body_len(0, 0), 14);
    }

    #[test]
    fn the_same_events_give_the_same_id_and_others_another() {
        let ab = [task("msg_a", "1"), task("msg_b", "2")];
        let id = batch_id("sub_1", &ab);
        assert!(id.starts_with("batch_") && id.len() == 38, "{id}");
        assert_eq!(batch_id("sub_1", &ab), id);
        assert_ne!(batch_id("sub_2", &ab), id);
        assert_ne!(batch_id("sub_1", &ab[..1]), id);
        // Joined with a separator: "ab" + "c" is not "a" + "bc".
        let joined = [task("msg_ab", "1"), task("c", "2")];
        let split = [task("msg_a", "1"), task("bc", "2")];
        assert_ne!(batch_id("sub_1", &joined), batch_id("sub_1", &split));
    }
}
