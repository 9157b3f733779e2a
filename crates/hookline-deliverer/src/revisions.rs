//! The newest change this deliverer knows of each subscription, read from
//! the control log, so "no delivery starts for a deleted subscription" and
//! "a PATCHed URL is used from then on" hold for tasks already queued or
//! waiting on the ladder, without the deliverer reading the database.
//!
//! Each task carries the revision it was built from. A task older than the
//! newest known change is dropped when that change deleted or disabled the
//! subscription, and re-shaped (URL, scheme, sealed credentials) when it
//! modified it. The control log is a stream that keeps changes for longer
//! than any ladder, and a deliverer reads it from its start before it takes
//! a task: a restart, or a notice lost while it was away, forgets nothing.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use hookline_proto::{ChangeKind, DeliveryTask, SubscriptionChanged, SubscriptionShape};

/// What to do with a task, given the newest known change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Built from the newest known revision (or nothing newer is known).
    Current,
    /// Re-shaped to the newest revision; send it.
    Reshaped,
    /// Its subscription was deleted or disabled after it was built.
    Drop,
}

#[derive(Debug, Clone)]
enum State {
    Gone,
    Active(Box<SubscriptionShape>),
}

#[derive(Debug, Clone)]
struct Known {
    /// 0 for a revocation from a sender before revisions: it then applies
    /// to every task, as before.
    revision: u64,
    state: State,
    at: Instant,
}

/// Subscription id to its newest known change.
#[derive(Clone, Debug)]
pub struct Revisions {
    known: Arc<Mutex<HashMap<String, Known>>>,
    /// After this no task built before a change can still be queued.
    keep: Duration,
}

impl Revisions {
    /// Remembers changes for `keep` (the whole ladder plus a margin).
    pub fn new(keep: Duration) -> Self {
        Self {
            known: Arc::default(),
            keep,
        }
    }

    /// Applies one change. Older revisions never replace newer ones (the log
    /// is read again after each reconnect), and an unknown change is
    /// ignored: it never revives a revoked subscription.
    pub fn apply(&self, change: &SubscriptionChanged, kind: ChangeKind) {
        let state = match (kind, &change.shape) {
            (ChangeKind::Deleted | ChangeKind::Disabled, _) => State::Gone,
            (ChangeKind::Upserted, Some(shape)) if change.revision > 0 => {
                State::Active(Box::new(shape.clone()))
            }
            // An upsert without revision: a sender before revisions, or a
            // re-sealing hint. It lifts only a revocation of the same age.
            (ChangeKind::Upserted, _) => {
                let mut known = self.known.lock();
                if known
                    .get(&change.subscription_id)
                    .is_some_and(|k| k.revision == 0)
                {
                    known.remove(&change.subscription_id);
                }
                return;
            }
            // Notes about endpoints and marks are not changes.
            (
                ChangeKind::Slow
                | ChangeKind::Mark
                | ChangeKind::Catalogue
                | ChangeKind::Sources
                | ChangeKind::Unspecified,
                _,
            ) => return,
        };
        let mut known = self.known.lock();
        let newer = known
            .get(&change.subscription_id)
            .is_none_or(|k| k.revision == 0 || change.revision >= k.revision);
        if newer {
            known.insert(
                change.subscription_id.clone(),
                Known {
                    revision: change.revision,
                    state,
                    at: Instant::now(),
                },
            );
        }
        let keep = self.keep;
        known.retain(|_, k| k.at.elapsed() < keep);
    }

    /// Brings `task` up to the newest known change of its subscription.
    pub fn check(&self, task: &mut DeliveryTask) -> Verdict {
        let known = self.known.lock();
        let Some(newest) = known.get(&task.subscription_id) else {
            return Verdict::Current;
        };
        let older = newest.revision == 0 || task.revision < newest.revision;
        match &newest.state {
            State::Gone if older => Verdict::Drop,
            State::Active(shape) if older && newest.revision > 0 => {
                task.reshape(shape, newest.revision);
                Verdict::Reshaped
            }
            _ => Verdict::Current,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: ChangeKind, id: &str, revision: u64, url: Option<&str>) -> SubscriptionChanged {
        SubscriptionChanged {
            revision,
            shape: url.map(|url| SubscriptionShape {
                url: url.into(),
                sealed_secrets: vec![vec![7u8].into()],
                ..SubscriptionShape::default()
            }),
            ..SubscriptionChanged::of(kind, "acme", id)
        }
    }

    fn task(id: &str, revision: u64) -> DeliveryTask {
        DeliveryTask {
            subscription_id: id.into(),
            url: "http://old/".into(),
            revision,
            ..DeliveryTask::default()
        }
    }

    fn apply(r: &Revisions, c: SubscriptionChanged) {
        let kind = c.change_kind().expect("known");
        r.apply(&c, kind);
    }

    #[test]
    fn a_task_older_than_a_delete_is_dropped_and_a_newer_one_is_sent() {
        let r = Revisions::new(Duration::from_secs(60));
        apply(&r, change(ChangeKind::Deleted, "sub_1", 10, None));
        assert_eq!(r.check(&mut task("sub_1", 9)), Verdict::Drop);
        assert_eq!(r.check(&mut task("sub_1", 10)), Verdict::Current);
        assert_eq!(r.check(&mut task("sub_2", 1)), Verdict::Current);
    }

    #[test]
    fn a_task_older_than_an_upsert_takes_the_new_shape_and_revision() {
        let r = Revisions::new(Duration::from_secs(60));
        apply(
            &r,
            change(ChangeKind::Upserted, "sub_1", 5, Some("http://new/")),
        );
        let mut old = task("sub_1", 4);
        old.secrets = vec!["clear".into()];
        assert_eq!(r.check(&mut old), Verdict::Reshaped);
        assert_eq!(old.url, "http://new/");
        assert_eq!(old.revision, 5);
        assert!(old.secrets.is_empty());
        assert_eq!(old.sealed_secrets.len(), 1);
        let mut current = task("sub_1", 5);
        assert_eq!(r.check(&mut current), Verdict::Current);
        assert_eq!(current.url, "http://old/");
    }

    #[test]
    fn an_older_change_read_again_never_replaces_a_newer_one() {
        let r = Revisions::new(Duration::from_secs(60));
        apply(&r, change(ChangeKind::Deleted, "sub_1", 8, None));
        apply(
            &r,
            change(ChangeKind::Upserted, "sub_1", 7, Some("http://x/")),
        );
        assert_eq!(r.check(&mut task("sub_1", 7)), Verdict::Drop);
    }

    #[test]
    fn notes_marks_and_unknown_changes_revive_nothing() {
        let r = Revisions::new(Duration::from_secs(60));
        apply(&r, change(ChangeKind::Disabled, "sub_1", 3, None));
        for kind in [ChangeKind::Slow, ChangeKind::Mark] {
            apply(&r, change(kind, "sub_1", 99, None));
        }
        r.apply(
            &change(ChangeKind::Upserted, "sub_1", 0, None),
            ChangeKind::Unspecified,
        );
        // A re-sealing hint (no revision) lifts only a revocation without one.
        apply(&r, change(ChangeKind::Upserted, "sub_1", 0, None));
        assert_eq!(r.check(&mut task("sub_1", 2)), Verdict::Drop);
    }

    #[test]
    fn a_revocation_from_a_sender_before_revisions_drops_every_task_until_lifted() {
        let r = Revisions::new(Duration::from_secs(60));
        apply(&r, change(ChangeKind::Deleted, "sub_1", 0, None));
        assert_eq!(r.check(&mut task("sub_1", 50)), Verdict::Drop);
        apply(&r, change(ChangeKind::Upserted, "sub_1", 0, None));
        assert_eq!(r.check(&mut task("sub_1", 50)), Verdict::Current);
    }
}
