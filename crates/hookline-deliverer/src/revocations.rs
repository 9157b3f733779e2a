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
use hookline_proto::{Message, SubscriptionChanged};
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

    /// Applies one change announced by the api.
    pub fn apply(&self, change: &SubscriptionChanged) {
        let Ok(mut revoked) = self.revoked.lock() else {
            return;
        };
        match change.change.as_str() {
            "deleted" | "disabled" => {
                revoked.insert(change.subscription_id.clone(), Instant::now());
            }
            // A deliverer's note about the endpoint, not a change.
            hookline_proto::CHANGE_SLOW => {}
            _ => {
                revoked.remove(&change.subscription_id);
            }
        }
        let keep = self.keep;
        revoked.retain(|_, at| at.elapsed() < keep);
    }

    /// Whether tasks of this subscription must not be sent.
    pub fn is_revoked(&self, subscription_id: &str) -> bool {
        self.revoked
            .lock()
            .map(|r| r.contains_key(subscription_id))
            .unwrap_or(false)
    }
}

/// Applies changes from `hookline.control` until the connection fails, and
/// passes on "slow" notes as lanes to consume; on shutdown it just stops
/// reading and lets the task consumers finish.
pub async fn listen(
    connection: Arc<Connection>,
    revocations: Revocations,
    lanes: mpsc::UnboundedSender<LaneId>,
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
                if let Ok(change) = SubscriptionChanged::decode(delivery.data.as_slice()) {
                    if change.change == hookline_proto::CHANGE_SLOW {
                        let _ = lanes.send(LaneId {
                            subscription_id: change.subscription_id.clone(),
                            tenant: change.tenant.clone(),
                        });
                    }
                    revocations.apply(&change);
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

    fn change(id: &str, kind: &str) -> SubscriptionChanged {
        SubscriptionChanged {
            subscription_id: id.into(),
            change: kind.into(),
            ..SubscriptionChanged::default()
        }
    }

    #[test]
    fn a_deleted_or_disabled_subscription_is_revoked_until_it_is_upserted_again() {
        let r = Revocations::new(Duration::from_secs(60));
        r.apply(&change("sub_1", "deleted"));
        r.apply(&change("sub_2", "disabled"));
        assert!(r.is_revoked("sub_1") && r.is_revoked("sub_2"));
        r.apply(&change("sub_1", "slow"));
        assert!(r.is_revoked("sub_1"), "a slow note does not revive it");
        r.apply(&change("sub_2", "upserted"));
        assert!(!r.is_revoked("sub_2"));
        assert!(!r.is_revoked("sub_3"));
    }
}
