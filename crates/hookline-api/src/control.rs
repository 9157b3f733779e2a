//! Telling fanouts and deliverers that a subscription changed, through the
//! `hookline.control` fanout exchange, after the change is committed.

use std::sync::Arc;

use hookline_amqp::names::CONTROL_EXCHANGE;
use hookline_amqp::{AmqpError, SharedPublisher};
use hookline_proto::{ChangeKind, Message as _, SubscriptionChanged};
use lapin::options::BasicPublishOptions;
use lapin::publisher_confirm::Confirmation;

/// What happened to a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Created or modified (secret rotation included).
    Upserted,
    /// Deleted.
    Deleted,
    /// Disabled because its receiver answered 410 Gone.
    Disabled,
}

impl Change {
    fn kind(self) -> ChangeKind {
        match self {
            Change::Upserted => ChangeKind::Upserted,
            Change::Deleted => ChangeKind::Deleted,
            Change::Disabled => ChangeKind::Disabled,
        }
    }

    fn as_str(self) -> &'static str {
        self.kind().as_str_name()
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
    /// already in PostgreSQL, and fanouts also reload periodically, so the
    /// request that made it still succeeds.
    pub async fn changed(&self, tenant: &str, subscription_id: &str, change: Change) {
        let message = SubscriptionChanged::of(change.kind(), tenant, subscription_id);
        if let Err(error) = self.publish(&message.encode_to_vec()).await {
            tracing::warn!(
                tenant, subscription_id, change = change.as_str(), %error,
                "cannot announce a subscription change; fanouts will pick it up on their next refresh"
            );
        }
    }

    /// Publishes with a confirm but not `mandatory`: an exchange nobody is
    /// bound to (an api running without fanouts) is normal here, not a
    /// topology bug worth a returned message and a warning each time.
    async fn publish(&self, payload: &[u8]) -> Result<(), AmqpError> {
        let publisher = self.publisher.publisher().await?;
        let properties = hookline_amqp::protobuf_properties().with_delivery_mode(2);
        let send = async {
            let confirm = publisher
                .channel()
                .basic_publish(
                    CONTROL_EXCHANGE,
                    "",
                    BasicPublishOptions::default(),
                    payload,
                    properties,
                )
                .await?;
            match confirm.await? {
                Confirmation::Nack(_) => Err(AmqpError::Nacked),
                _ => Ok(()),
            }
        };
        let result = tokio::time::timeout(self.publisher.timeout(), send)
            .await
            .unwrap_or(Err(AmqpError::Timeout));
        if matches!(
            result,
            Err(AmqpError::Connection(_)) | Err(AmqpError::Timeout)
        ) {
            self.publisher.invalidate().await;
        }
        result
    }
}
