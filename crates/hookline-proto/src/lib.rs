//! Protocol Buffers messages that cross RabbitMQ, generated at build time from
//! `proto-schemas/hookline.proto`.

#[allow(missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/hookline.v1.rs"));
}

pub use generated::*;

pub mod signature;

/// The schema version this build writes and accepts; a message with another
/// version is parked rather than guessed at.
pub const SCHEMA_VERSION: u32 = 1;

pub use prost::Message;

/// The AMQP `type` of a [`DeliveryBatch`] on the deliveries queues, which
/// otherwise carry bare [`DeliveryTask`]s.
pub const DELIVERY_BATCH_TYPE: &str = "hookline.v1.DeliveryBatch";

impl DeliveryTask {
    /// Points the task at its subscription as of `revision`: URL, scheme
    /// and sealed credentials. Used for replays and by a deliverer holding
    /// a task built before the subscription last changed, so a retry goes
    /// where the customer has since moved it, signed as they expect now.
    pub fn reshape(&mut self, shape: &SubscriptionShape, revision: u64) {
        self.url.clone_from(&shape.url);
        self.signature.clone_from(&shape.signature);
        self.secrets.clear();
        self.headers.clear();
        self.sealed_secrets.clone_from(&shape.sealed_secrets);
        self.sealed_headers.clone_from(&shape.sealed_headers);
        self.policy = shape.policy.filter(EndpointPolicy::is_active);
        self.revision = revision;
    }

    /// The policy this task is delivered under, if any.
    pub fn active_policy(&self) -> Option<EndpointPolicy> {
        self.policy.filter(EndpointPolicy::is_active)
    }
}

impl EndpointPolicy {
    /// Whether the policy asks for anything; an all-zero one is no policy
    /// (the subscription uses the shared queues).
    pub fn is_active(&self) -> bool {
        self.fifo || self.rate_per_second > 0 || self.batch_max_events > 0
    }

    /// Whether events are sent in batches.
    pub fn batches(&self) -> bool {
        self.batch_max_events > 0
    }
}

impl SubscriptionChanged {
    /// A control message of `kind`, with the text form too, so readers of
    /// the previous version understand it during a rolling upgrade.
    pub fn of(kind: ChangeKind, tenant: &str, subscription_id: &str) -> Self {
        let text = match kind {
            ChangeKind::Upserted => "upserted",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Disabled => "disabled",
            ChangeKind::Slow => "slow",
            ChangeKind::Mark
            | ChangeKind::Catalogue
            | ChangeKind::Sources
            | ChangeKind::Unspecified => "",
        };
        Self {
            schema_version: SCHEMA_VERSION,
            tenant: tenant.to_string(),
            subscription_id: subscription_id.to_string(),
            change: text.to_string(),
            kind: kind as i32,
            ..Self::default()
        }
    }

    /// What the message says: `kind`, or the text of an older sender;
    /// `None` for anything this build does not know, which the reader
    /// ignores (and counts) rather than guess.
    pub fn change_kind(&self) -> Option<ChangeKind> {
        match ChangeKind::try_from(self.kind) {
            Ok(ChangeKind::Unspecified) => match self.change.as_str() {
                "upserted" => Some(ChangeKind::Upserted),
                "deleted" => Some(ChangeKind::Deleted),
                "disabled" => Some(ChangeKind::Disabled),
                "slow" => Some(ChangeKind::Slow),
                _ => None,
            },
            Ok(kind) => Some(kind),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_reads_from_its_kind_or_from_an_older_senders_text() {
        let new = SubscriptionChanged::of(ChangeKind::Deleted, "acme", "sub_1");
        assert_eq!(new.change_kind(), Some(ChangeKind::Deleted));
        assert_eq!(new.change, "deleted");
        let old = SubscriptionChanged {
            change: "slow".into(),
            ..SubscriptionChanged::default()
        };
        assert_eq!(old.change_kind(), Some(ChangeKind::Slow));
    }

    #[test]
    fn an_unknown_change_is_none_whatever_its_text() {
        let unknown_kind = SubscriptionChanged {
            kind: 99,
            change: "upserted".into(),
            ..SubscriptionChanged::default()
        };
        assert_eq!(unknown_kind.change_kind(), None);
        let unknown_text = SubscriptionChanged {
            change: "revived".into(),
            ..SubscriptionChanged::default()
        };
        assert_eq!(unknown_text.change_kind(), None);
    }
}
