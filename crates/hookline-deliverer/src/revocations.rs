//! Subscriptions deleted or disabled since this deliverer started: their
//! tasks already queued or waiting on the ladder are dropped instead of
//! sent, so "no delivery starts for it afterwards" holds without the
//! deliverer reading the database.
//!
//! A deliverer started after the change has not seen it; tasks it takes for
//! that subscription are still sent (at most until the ladder ends).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hookline_amqp::AmqpError;
use hookline_proto::{ChangeKind, Message, SubscriptionChanged};
use lapin::Connection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::lanes::LaneId;

/// Revoked subscription ids and when they were revoked.
#[derive(Clone, Debug)]
pub struct Revocations {
    revoked: Arc<Mutex<HashMap<String, Instant>>>,
    /// After this no task of a revoked subscription can still be queued.
    keep: Duration,
}

impl Revocations {
    /// Remembers revocations for `keep` (the whole ladder plus a margin).
    pub fn new(keep: Duration) -> Self {
        Self {
            revoked: Arc::default(),
            keep,
        }
    }

    /// Applies one change announced by the api. An unknown change is
    /// ignored: it never revives a revoked subscription.
    pub fn apply(&self, subscription_id: &str, change: ChangeKind) {
        let mut revoked = hookline_model::sync::lock(&self.revoked);
        match change {
            ChangeKind::Deleted | ChangeKind::Disabled => {
                revoked.insert(subscription_id.to_string(), Instant::now());
            }
            ChangeKind::Upserted => {
                revoked.remove(subscription_id);
            }
            // A deliverer's note about the endpoint, not a change.
            ChangeKind::Slow | ChangeKind::Unspecified => {}
        }
        let keep = self.keep;
        revoked.retain(|_, at| at.elapsed() < keep);
    }

    /// Whether tasks of this subscription must not be sent.
    pub fn is_revoked(&self, subscription_id: &str) -> bool {
        hookline_model::sync::lock(&self.revoked).contains_key(subscription_id)
    }
}

/// Applies changes from `hookline.control` until the connection fails, and
/// passes on "slow" notes as lanes to consume; on shutdown it just stops
/// reading and lets the task consumers finish.
pub async fn listen(
    connection: Arc<Connection>,
    revocations: Revocations,
    lanes: mpsc::UnboundedSender<LaneId>,
    ignored: prometheus::IntCounter,
    token: CancellationToken,
) -> Result<(), AmqpError> {
    let (_channel, mut consumer) =
        hookline_amqp::subscribe_control(&connection, "deliverer-control").await?;
    loop {
        let next = tokio::select! {
            next = consumer.next() => next,
            _ = token.cancelled() => std::future::pending().await,
        };
        match next {
            Some(Ok(delivery)) => {
                let change = SubscriptionChanged::decode(delivery.data.as_slice()).ok();
                match change.as_ref().and_then(|c| Some((c, c.change_kind()?))) {
                    Some((change, ChangeKind::Slow)) => {
                        let _ = lanes.send(LaneId {
                            subscription_id: change.subscription_id.clone(),
                            tenant: change.tenant.clone(),
                        });
                    }
                    Some((change, kind)) => revocations.apply(&change.subscription_id, kind),
                    None => {
                        ignored.inc();
                        tracing::warn!(
                            "ignoring a control message this version does not understand"
                        );
                    }
                }
            }
            Some(Err(e)) => return Err(e.into()),
            None => return Err(AmqpError::Unavailable("control consumer ended".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_or_disabled_subscription_is_revoked_until_it_is_upserted_again() {
        let r = Revocations::new(Duration::from_secs(60));
        r.apply("sub_1", ChangeKind::Deleted);
        r.apply("sub_2", ChangeKind::Disabled);
        assert!(r.is_revoked("sub_1") && r.is_revoked("sub_2"));
        r.apply("sub_1", ChangeKind::Slow);
        assert!(r.is_revoked("sub_1"), "a slow note does not revive it");
        r.apply("sub_1", ChangeKind::Unspecified);
        assert!(
            r.is_revoked("sub_1"),
            "an unknown change does not revive it"
        );
        r.apply("sub_2", ChangeKind::Upserted);
        assert!(!r.is_revoked("sub_2"));
        assert!(!r.is_revoked("sub_3"));
    }
}
