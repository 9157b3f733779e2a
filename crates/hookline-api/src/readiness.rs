//! The api's `amqp` readiness (its publisher connected), the `parking`
//! check (no recorder holds a message it cannot park), each recorder's
//! connection as a metric, and the `hookline_ready{service="api"}` gauge.
//! The `database` half lives in `db::watch`.
//!
//! A recorder reconnecting is not a reason to take the control plane out of
//! its load balancer: it shows in `hookline_api_recorder_connected` (and
//! the `HooklineRecorderDisconnected` alert), its queue simply waits.

use std::sync::Arc;
use std::time::Duration;

use hookline_amqp::SharedPublisher;
use hookline_runtime::Readiness;

use crate::recorder::PARKING;
use prometheus::{IntGauge, IntGaugeVec};
use tokio_util::sync::CancellationToken;

/// How often readiness is recomputed.
const INTERVAL: Duration = Duration::from_secs(1);

/// Keeps the publisher's channel open (so the first replay after an outage
/// does not pay for the reconnect, and readiness is true rather than
/// optimistic) and publishes the combined state every second.
pub(crate) async fn watch(
    publisher: Arc<SharedPublisher>,
    consumers: Vec<(&'static str, Readiness)>,
    readiness: Readiness,
    gauge: IntGauge,
    connected: IntGaugeVec,
    token: CancellationToken,
) {
    loop {
        let publisher_up = publisher.is_connected().await
            || matches!(
                tokio::time::timeout(INTERVAL, publisher.publisher()).await,
                Ok(Ok(_))
            );
        readiness.set("amqp", publisher_up);
        let mut parking = true;
        for (queue, consumer) in &consumers {
            let state = consumer.snapshot();
            let up = state.get("amqp").copied().unwrap_or(false);
            connected.with_label_values(&[queue]).set(i64::from(up));
            parking &= state.get(PARKING).copied().unwrap_or(true);
        }
        // A recorder holding a message it cannot park is an incident.
        readiness.set(PARKING, parking);
        gauge.set(readiness.is_ready() as i64);
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
    gauge.set(0);
}
