//! The `amqp` readiness (publisher and both recorders connected) and the
//! `hookline_ready{service="api"}` gauge. The `database` half lives in
//! `db::watch`.

use std::sync::Arc;
use std::time::Duration;

use hookline_amqp::SharedPublisher;
use hookline_runtime::Readiness;

use crate::recorder::PARKING;
use prometheus::IntGauge;
use tokio_util::sync::CancellationToken;

/// How often readiness is recomputed.
const INTERVAL: Duration = Duration::from_secs(1);

/// Keeps the publisher's channel open (so the first replay after an outage
/// does not pay for the reconnect, and readiness is true rather than
/// optimistic) and publishes the combined state every second.
pub(crate) async fn watch(
    publisher: Arc<SharedPublisher>,
    consumers: Vec<Readiness>,
    readiness: Readiness,
    gauge: IntGauge,
    token: CancellationToken,
) {
    loop {
        let publisher_up = publisher.is_connected().await
            || matches!(
                tokio::time::timeout(INTERVAL, publisher.publisher()).await,
                Ok(Ok(_))
            );
        let parking = |c: &Readiness| c.snapshot().get(PARKING).copied().unwrap_or(true);
        let consumers_up = consumers
            .iter()
            .all(|c| c.snapshot().into_iter().all(|(k, up)| up || k == PARKING));
        readiness.set("amqp", publisher_up && consumers_up);
        // A recorder holding a message it cannot park says so on its own.
        readiness.set(PARKING, consumers.iter().all(parking));
        gauge.set(readiness.is_ready() as i64);
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
    gauge.set(0);
}
