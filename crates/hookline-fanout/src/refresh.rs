//! Keeping the index current: a full load at start and periodically, and a
//! tenant reload whenever the api announces a change on `hookline.control`.
//! The event type catalogue rides along: loaded with every full load, and
//! reloaded whole when the api announces a catalogue change.

use std::time::Duration;

use hookline_amqp::{next_control, AmqpError};
use hookline_proto::ChangeKind;
use hookline_runtime::Readiness;
use tokio_util::sync::CancellationToken;

use crate::index::{Loader, SharedIndex, Target};
use crate::lanes::SlowLanes;
use crate::metrics::Metrics;
use hookline_model::versioned::VersionedIndex;

/// The index for writing. `parking_lot` locks do not poison: a panic while
/// one was held (every change is one assignment) cannot turn every later
/// event into "unmatched".
fn write(index: &SharedIndex) -> parking_lot::RwLockWriteGuard<'_, VersionedIndex<Target>> {
    index.write()
}

/// Loads the whole index, replacing what is there. Returns whether it worked;
/// on failure the last index keeps serving.
pub async fn reload_all(
    loader: &Loader,
    index: &SharedIndex,
    metrics: &Metrics,
    readiness: &Readiness,
) -> bool {
    if let Err(error) = loader.reload_catalogue().await {
        tracing::warn!(%error, "cannot load the event type catalogue; checking against the last one");
    }
    // The ticket is taken before the query: see `VersionedIndex`.
    let ticket = write(index).ticket();
    match loader.load_all().await {
        Ok(fresh) => {
            let mut index = write(index);
            if !index.apply_full(ticket, fresh) {
                tracing::debug!("a newer full load is already in; dropping this one");
            }
            metrics.loaded.set(index.index().len() as i64);
            drop(index);
            readiness.set("database", true);
            true
        }
        Err(error) => {
            readiness.set("database", false);
            tracing::warn!(%error, "cannot load subscriptions; matching from the last loaded index");
            false
        }
    }
}

/// Reloads every `interval` until cancelled.
pub async fn periodic(
    loader: Loader,
    index: SharedIndex,
    metrics: Metrics,
    readiness: Readiness,
    interval: Duration,
    token: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = token.cancelled() => break,
        }
        reload_all(&loader, &index, &metrics, &readiness).await;
    }
}

/// What the control listener updates.
pub struct Listener {
    /// Where tenants are reloaded from.
    pub loader: Loader,
    /// The index to update.
    pub index: SharedIndex,
    /// Slow notes from deliverers.
    pub lanes: SlowLanes,
    /// `subscriptions_loaded`.
    pub metrics: Metrics,
}

/// Reloads the changed tenant for every message on this instance's
/// `hookline.control` queue: a change made through the api is matched within
/// milliseconds, well inside the contract's 1 s. A deliverer's "slow" note
/// routes that subscription to its lane instead.
pub async fn listen(
    mut consumer: lapin::Consumer,
    listener: Listener,
    token: CancellationToken,
) -> Result<(), AmqpError> {
    let Listener {
        loader,
        index,
        lanes,
        metrics,
    } = listener;
    loop {
        // The control queue is `no_ack`: nothing to settle.
        let message = next_control(&mut consumer, &token, &metrics.control_ignored).await?;
        let Some((change, kind)) = message.change else {
            continue;
        };
        match kind {
            ChangeKind::Slow => {
                lanes.note(&change.subscription_id);
                continue;
            }
            // A deliverer catching up on the control log, and inbound
            // sources (ingest's business): not subscription changes.
            ChangeKind::Mark | ChangeKind::Sources => continue,
            ChangeKind::Catalogue => {
                match loader.reload_catalogue().await {
                    Ok(types) => tracing::debug!(types, "event type catalogue reloaded"),
                    Err(error) => {
                        tracing::warn!(%error, "cannot reload the changed catalogue; the periodic refresh will")
                    }
                }
                continue;
            }
            _ => {}
        }
        {
            let ticket = write(&index).ticket();
            match loader.load_tenant(&change.tenant).await {
                Ok(fresh) => {
                    let mut index = write(&index);
                    if !index.apply_tenant(ticket, &change.tenant, fresh) {
                        tracing::debug!(tenant = %change.tenant, "newer rows of this tenant are already in; dropping this reload");
                    }
                    metrics.loaded.set(index.index().len() as i64);
                }
                Err(error) => {
                    tracing::warn!(tenant = %change.tenant, %error, "cannot reload a changed tenant; the periodic refresh will")
                }
            }
        }
    }
}
