//! The control listener: reads `hookline.control.log` from its start, then
//! live, and turns each message into a typed change for [`Revisions`] or a
//! lane to consume, and keeps the endpoint policies. Unknown messages are counted and ignored.

use std::sync::Arc;

use hookline_amqp::names::CONTROL_EXCHANGE;
use hookline_amqp::{next_control, protobuf_properties, AmqpError, ConfirmedPublisher};
use hookline_proto::{ChangeKind, Message, SubscriptionChanged};
use lapin::options::BasicAckOptions;
use lapin::Connection;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::endpoints::EndpointPolicies;
use crate::lanes::LaneId;
use crate::revisions::Revisions;

/// What the listener needs besides the connection.
pub struct Listener {
    /// Where changes go.
    pub revisions: Revisions,
    /// Slow lanes to consume, from deliverers' notes.
    pub lanes: mpsc::UnboundedSender<LaneId>,
    /// Endpoint policies, kept across sessions.
    pub policies: EndpointPolicies,
    /// Tells the endpoint supervisor of a subscription whose policy changed.
    pub policy_changed: mpsc::UnboundedSender<String>,
    /// Publishes the catch-up mark.
    pub publisher: ConfirmedPublisher,
    /// `hookline_control_messages_ignored_total`.
    pub ignored: prometheus::IntCounter,
    /// Told once the log has been read up to this session's mark.
    pub caught_up: oneshot::Sender<()>,
}

/// Reads the control log from its start, then live, until the connection
/// fails; on shutdown it just stops reading and lets the task consumers
/// finish. To know when the history has been read, it publishes a mark and
/// reports `caught_up` when the mark comes back: every change before it
/// has then been applied. Notes of slow endpoints read before the mark are
/// history and are skipped.
pub async fn listen(
    connection: Arc<Connection>,
    listener: Listener,
    token: CancellationToken,
) -> Result<(), AmqpError> {
    let Listener {
        revisions,
        lanes,
        policies,
        policy_changed,
        publisher,
        ignored,
        caught_up,
    } = listener;
    let (_channel, mut consumer) =
        hookline_amqp::subscribe_control_log(&connection, "deliverer-control-log").await?;
    let mark = hookline_model::ids::new_id("mark");
    let note = SubscriptionChanged::of(ChangeKind::Mark, "", &mark);
    publisher
        .broadcast(
            CONTROL_EXCHANGE,
            "",
            &note.encode_to_vec(),
            protobuf_properties(),
        )
        .await?
        .confirmed()
        .await?;
    let mut caught_up = Some(caught_up);
    loop {
        let message = next_control(&mut consumer, &token, &ignored).await?;
        // Acks on a stream only grant credit; nothing is removed.
        message
            .delivery
            .acker
            .ack(BasicAckOptions::default())
            .await?;
        match &message.change {
            Some((change, ChangeKind::Mark)) if change.subscription_id == mark => {
                if let Some(done) = caught_up.take() {
                    let _ = done.send(());
                }
            }
            // Another deliverer's mark: nothing to do.
            Some((_, ChangeKind::Mark)) => {}
            // Slow notes from before this session's mark are history, already reflected.
            Some((change, ChangeKind::Slow)) if caught_up.is_none() => {
                let _ = lanes.send(LaneId {
                    subscription_id: change.subscription_id.clone(),
                    tenant: change.tenant.clone(),
                });
            }
            Some((_, ChangeKind::Slow)) => {}
            Some((change, kind)) => {
                revisions.apply(change, *kind);
                if policies.apply(change, *kind) {
                    let _ = policy_changed.send(change.subscription_id.clone());
                }
            }
            None => {}
        }
    }
}
