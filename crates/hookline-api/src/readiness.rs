//! The `amqp` readiness (publisher and both recorders connected) and the
//! `hookline_ready{service="api"}` gauge. The `database` half lives in
//! `db::watch`.

use std::sync::Arc;
use std::time::Duration;

use hookline_amqp::SharedPublisher;
use hookline_runtime::Readiness;
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
        let consumers_up = consumers.iter().all(Readiness::is_ready);
        readiness.set("amqp", publisher_up && consumers_up);
        gauge.set(readiness.is_ready() as i64);
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
    gauge.set(0);
}
