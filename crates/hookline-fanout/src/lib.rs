//! Fanout: consumes events, matches them against an in-memory index of
//! enabled subscriptions, and publishes one delivery task per match.

pub mod config;
pub mod consumer;
pub mod endpoints;
pub mod index;
pub mod lanes;
pub mod metrics;
pub mod refresh;

use std::sync::Arc;

use parking_lot::RwLock;
use std::time::Duration;

use hookline_amqp::{supervise, SessionContext};
use hookline_model::versioned::VersionedIndex;
use hookline_runtime::{ops, Readiness, Shutdown};
use prometheus::Registry;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;

pub use config::FanoutConfig;

/// Runs fanout until `shutdown.token` is cancelled.
pub async fn run(
    config: FanoutConfig,
    listener: TcpListener,
    registry: Registry,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let metrics = metrics::Metrics::register(&registry)?;
    let readiness = Readiness::new();
    readiness.set("amqp", false);
    readiness.set("database", false);
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
            tracing::error!(%error, "fanout listener failed");
        }
    });

    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy(&config.database_url)
        .map_err(|e| anyhow::anyhow!("database.url: {e}"))?;
    let loader = index::Loader::new(pool);
    let index = Arc::new(RwLock::new(VersionedIndex::default()));
    // Consuming before the first load would match nothing and ack events
    // as unmatched: wait for it.
    while !refresh::reload_all(&loader, &index, &metrics, &readiness).await {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.token.cancelled() => return Ok(()),
        }
    }
    shutdown.tracker.spawn(refresh::periodic(
        loader.clone(),
        index.clone(),
        metrics.clone(),
        readiness.clone(),
        config.refresh_interval,
        shutdown.token.clone(),
    ));

    let ctx = SessionContext {
        broker: config.broker.clone(),
        name: "hookline-fanout".into(),
        reconnect_delay: config.reconnect_delay,
        readiness: readiness.clone(),
        reconnects: metrics.reconnects.clone(),
        token: shutdown.token.clone(),
    };
    let token = shutdown.token.clone();
    let lanes = lanes::SlowLanes::default();
    shutdown.tracker.spawn(async move {
        supervise(ctx, |connection| {
            let (config, index, metrics, token, readiness, loader, lanes) = (
                config.clone(),
                index.clone(),
                metrics.clone(),
                token.clone(),
                readiness.clone(),
                loader.clone(),
                lanes.clone(),
            );
            async move {
                // Listen first, then load everything: a change made while
                // this fanout was not listening is in the fresh load, and
                // one made from now on arrives on the control queue. Only
                // then is this fanout ready.
                let (_control_channel, control) =
                    hookline_amqp::subscribe_control(&connection, "fanout-control").await?;
                refresh::reload_all(&loader, &index, &metrics, &readiness).await;
                readiness.set("amqp", true);
                let listener = refresh::Listener {
                    loader,
                    index: index.clone(),
                    lanes: lanes.clone(),
                    metrics: metrics.clone(),
                };
                let catalogue = listener.loader.catalogue();
                let control = refresh::listen(control, listener, token.clone());
                let events =
                    consumer::session(connection, config, index, catalogue, lanes, metrics, token);
                tokio::select! {
                    result = events => result,
                    result = control => result,
                }
            }
        })
        .await;
    });
    shutdown.token.cancelled().await;
    Ok(())
}
