//! The daily roll call of endpoint policies. Deliverers learn which
//! subscriptions have a queue of their own (`ordering: "fifo"`,
//! `rate_limit`) from the control log, which keeps changes for 7 days; a
//! subscription configured longer ago would fall out of it, and a deliverer
//! started then would never consume its queue. So every api announces each
//! such subscription again at start and once a day: the log always holds
//! every live policy, 6 days before it could age out.

use std::sync::Arc;
use std::time::Duration;

use hookline_model::sealed::Keyring;
use tokio_util::sync::CancellationToken;

use crate::control::{Announcement, Notifier};
use crate::db::Database;

/// How often every policy is announced again; well inside the log's 7 days.
pub const ROLL_CALL_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Announces every subscription with an endpoint policy, now and then every
/// [`ROLL_CALL_EVERY`], until `token` is cancelled.
pub(crate) async fn run(
    db: Database,
    keyring: Arc<Keyring>,
    notifier: Notifier,
    token: CancellationToken,
) {
    let Some(pool) = db.ready(&token).await else {
        return;
    };
    loop {
        match crate::store::subscriptions::with_endpoint_policy(pool).await {
            Ok(rows) => {
                for row in &rows {
                    match Announcement::of_row(row, &keyring) {
                        Ok(change) => notifier.announce(change).await,
                        Err(error) => {
                            tracing::warn!(subscription_id = %row.id, ?error, "cannot announce an endpoint policy")
                        }
                    }
                }
                tracing::debug!(subscriptions = rows.len(), "endpoint policies announced");
            }
            Err(error) => tracing::warn!(%error, "cannot read the endpoint policies to announce"),
        }
        tokio::select! {
            _ = tokio::time::sleep(ROLL_CALL_EVERY) => {}
            _ = token.cancelled() => return,
        }
    }
}
