//! The deliverer: consumes delivery tasks, signs and POSTs them, and either
//! acks, schedules a retry on the ladder, or parks the task as dead.
//! Stateless and database-free, so it scales on queue depth alone.

pub mod admission;
pub mod attempts;
pub mod batches;
pub mod config;
pub mod consume;
pub mod control;
pub mod endpoint_supervisor;
pub mod endpoints;
pub mod handle;
pub mod lane_supervisor;
pub mod lanes;
pub mod metrics;
pub mod outcome;
pub mod park;
pub mod revisions;
pub mod session;

use hookline_amqp::{supervise, SessionContext};
use hookline_runtime::{ops, Readiness, Shutdown};
use prometheus::Registry;
use tokio::net::TcpListener;

pub use config::DelivererConfig;

/// Runs a deliverer until `shutdown.token` is cancelled; in-flight sends
/// then finish and ack (the caller bounds that by the grace period).
pub async fn run(
    config: DelivererConfig,
    listener: TcpListener,
    registry: Registry,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let metrics = metrics::Metrics::register(&registry)?;
    let sender = hookline_send::Sender::new(&config.delivery, config.keyring.clone())?;
    let readiness = Readiness::new();
    readiness.set("amqp", false);
    readiness.set("control_log", false);
    hookline_runtime::health::spawn_ready_gauge(
        &shutdown,
        readiness.clone(),
        metrics.ready.clone(),
    );

    let token = shutdown.token.clone();
    let ops_router = ops::router(registry, readiness.clone());
    let http = config.http;
    shutdown.tracker.spawn(async move {
        if let Err(error) = ops::serve(listener, ops_router, http, token).await {
            tracing::error!(%error, "deliverer listener failed");
        }
    });

    let ctx = SessionContext {
        broker: config.broker.clone(),
        name: "hookline-deliverer".into(),
        reconnect_delay: config.reconnect_delay,
        readiness: readiness.clone(),
        reconnects: metrics.reconnects.clone(),
        token: shutdown.token.clone(),
    };
    let ladder: std::time::Duration = config.delivery.retry_delays.iter().sum();
    let revisions = revisions::Revisions::new(ladder + std::time::Duration::from_secs(3600));
    let carried = session::AcrossSessions {
        sender,
        metrics,
        readiness,
        revisions,
        consumed_lanes: lanes::ConsumedLanes::default(),
        policies: endpoints::EndpointPolicies::default(),
    };
    let token = shutdown.token.clone();
    shutdown.tracker.spawn(async move {
        supervise(ctx, |connection| {
            session::session(connection, config.clone(), carried.clone(), token.clone())
        })
        .await;
    });
    shutdown.token.cancelled().await;
    Ok(())
}
