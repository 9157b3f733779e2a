//! Telling fanouts and deliverers that a subscription changed (and ingests
//! and fanouts that the catalogue did), through the `hookline.control`
//! fanout exchange, after the change is committed.

use std::sync::Arc;

use chrono::Utc;
use hookline_amqp::names::CONTROL_EXCHANGE;
use hookline_amqp::{AmqpError, SharedPublisher};
use hookline_model::sealed::Keyring;
use hookline_proto::{ChangeKind, Message as _, SubscriptionChanged, SubscriptionShape};

use crate::error::ApiError;
use crate::store::subscriptions::SubscriptionRow;

/// One committed change to announce: what it is, the subscription's
/// revision after it, and for an upsert where deliveries now go.
#[derive(Debug, Clone)]
pub(crate) struct Announcement {
    tenant: String,
    subscription_id: String,
    kind: ChangeKind,
    revision: i64,
    shape: Option<SubscriptionShape>,
}

impl Announcement {
    /// A created or modified subscription: an upsert carrying its shape, or
    /// a disable when it is now disabled (deliverers drop its queued tasks).
    pub fn of_row(row: &SubscriptionRow, keyring: &Keyring) -> Result<Self, ApiError> {
        // An unverified subscription is announced like a disabled one:
        // fanouts leave it out and deliverers drop its queued tasks.
        let (kind, shape) = if row.enabled && row.verified {
            let shape = crate::routes::task::shape(row, keyring, Utc::now())?;
            (ChangeKind::Upserted, Some(shape))
        } else {
            (ChangeKind::Disabled, None)
        };
        Ok(Self {
            tenant: row.tenant.clone(),
            subscription_id: row.id.clone(),
            kind,
            revision: row.revision,
            shape,
        })
    }

    /// A deletion, with the revision the delete took.
    pub fn deleted(tenant: &str, subscription_id: &str, revision: i64) -> Self {
        Self::bare(tenant, subscription_id, ChangeKind::Deleted, revision)
    }

    /// A hint that rows of `tenant` changed without changing where or how
    /// they deliver (re-sealed under a new key): fanouts reload the tenant,
    /// deliverers have nothing to re-shape.
    pub fn tenant_reload(tenant: &str, any_subscription_id: &str) -> Self {
        Self::bare(tenant, any_subscription_id, ChangeKind::Upserted, 0)
    }

    /// The event type catalogue changed: ingests and fanouts reload it
    /// whole (it is small), so the message names nothing.
    pub fn catalogue() -> Self {
        Self::bare("", "", ChangeKind::Catalogue, 0)
    }

    /// A source was created or deleted: ingests reload the sources whole.
    pub fn sources(tenant: &str, source_id: &str) -> Self {
        Self::bare(tenant, source_id, ChangeKind::Sources, 0)
    }

    /// A disable by a 410 Gone answer.
    pub fn disabled(tenant: &str, subscription_id: &str, revision: i64) -> Self {
        Self::bare(tenant, subscription_id, ChangeKind::Disabled, revision)
    }

    fn bare(tenant: &str, subscription_id: &str, kind: ChangeKind, revision: i64) -> Self {
        Self {
            tenant: tenant.to_string(),
            subscription_id: subscription_id.to_string(),
            kind,
            revision,
            shape: None,
        }
    }

    fn message(&self) -> SubscriptionChanged {
        SubscriptionChanged {
            revision: self.revision.max(0) as u64,
            shape: self.shape.clone(),
            ..SubscriptionChanged::of(self.kind, &self.tenant, &self.subscription_id)
        }
    }
}

/// Publishes `SubscriptionChanged` messages.
#[derive(Clone)]
pub(crate) struct Notifier {
    publisher: Arc<SharedPublisher>,
}

impl Notifier {
    /// Publishes through the api's shared, confirmed publisher.
    pub fn new(publisher: Arc<SharedPublisher>) -> Self {
        Self { publisher }
    }

    /// Announces a committed change. A failure is only logged: the change is
    /// already in PostgreSQL, fanouts also reload periodically, and a task
    /// carries the revision it was built from, so the request that made it
    /// still succeeds.
    pub async fn announce(&self, change: Announcement) {
        let message = change.message();
        if let Err(error) = self.publish(&message.encode_to_vec()).await {
            tracing::warn!(
                tenant = %change.tenant, subscription_id = %change.subscription_id,
                change = change.kind.as_str_name(), %error,
                "cannot announce a subscription change; fanouts will pick it up on their next refresh"
            );
        }
    }

    /// Publishes through the shared publisher, with a confirm, within its
    /// timeout; not `mandatory` (see `SharedPublisher::broadcast_confirmed`).
    async fn publish(&self, payload: &[u8]) -> Result<(), AmqpError> {
        let properties = hookline_amqp::protobuf_properties().with_delivery_mode(2);
        self.publisher
            .broadcast_confirmed(CONTROL_EXCHANGE, "", payload, properties)
            .await
    }
}
