//! Ingest: accepts events over HTTP, validates them (the envelope, and
//! `data` against the catalogue's schema of its type), and answers `202`
//! only after RabbitMQ confirmed the publish to `hookline.events`.

pub mod auth;
pub mod catalogue;
pub mod config;
pub mod handlers;
pub mod inbound;
pub mod metrics;
pub mod mirror;
pub mod openapi;
pub mod request_log;
pub mod sources;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use hookline_amqp::{SharedPublisher, SharedPublisherConfig};
use hookline_runtime::{ops, Readiness, Shutdown};
use prometheus::Registry;
use tokio::net::TcpListener;

pub use config::IngestConfig;

/// Shared by every request.
pub struct AppState {
    /// Confirmed, reconnecting publisher.
    pub publisher: Arc<SharedPublisher>,
    /// Metric handles.
    pub metrics: metrics::Metrics,
    /// Limits.
    pub config: IngestConfig,
    /// Who may publish.
    pub tokens: auth::ProducerTokens,
    /// Cancelled on shutdown: new requests get 503 while open ones finish.
    pub draining: tokio_util::sync::CancellationToken,
    /// The event types' schemas that `data` is checked against.
    pub catalogue: hookline_catalogue::SharedCatalogue,
    /// The inbound sources, by URL token hash.
    pub sources: sources::SharedSources,
    /// `ingest.source_rate_limit`, one bucket per source id; `None`: off.
    pub source_limits: Option<hookline_runtime::buckets::KeyedBuckets<String>>,
    /// Notes of requests to sources, for the tenant's view of them.
    pub request_log: request_log::RequestLog,
}

/// Runs ingest until `shutdown.token` is cancelled.
pub async fn run(
    config: IngestConfig,
    listener: TcpListener,
    registry: Registry,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let metrics = metrics::Metrics::register(&registry)?;
    let publisher = Arc::new(SharedPublisher::new(
        SharedPublisherConfig {
            broker: config.broker.clone(),
            name: "hookline-ingest".into(),
            window: config.confirm_window,
            timeout: config.publish_timeout,
            topology: config.topology.clone(),
        },
        Some(metrics.confirm_seconds.clone()),
    )?);
    let readiness = Readiness::new();
    readiness.set("amqp", false);
    let request_log = request_log::RequestLog::spawn(
        &shutdown,
        publisher.clone(),
        metrics.source_log_dropped.clone(),
    );
    let state = Arc::new(AppState {
        publisher,
        request_log,
        metrics: metrics.clone(),
        config: config.clone(),
        tokens: auth::ProducerTokens::new(config.tokens.iter().map(|t| t.expose())),
        draining: shutdown.token.clone(),
        catalogue: hookline_catalogue::SharedCatalogue::default(),
        sources: sources::SharedSources::default(),
        source_limits: source_limits(config.source_rate_limit),
    });
    let reader = mirror::ApiReader::new(&config);
    mirror::spawn(
        &shutdown,
        &config,
        vec![
            catalogue::mirror(reader.clone(), state.catalogue.clone()),
            sources::mirror(reader, state.clone()),
        ],
        metrics.control_ignored.clone(),
    );
    spawn_broker_watch(&shutdown, state.clone(), readiness.clone());
    hookline_runtime::health::spawn_ready_gauge(
        &shutdown,
        readiness.clone(),
        metrics.ready.clone(),
    );

    let router = ops::router(registry, readiness).merge(routes(&config, state));
    ops::serve(listener, router, config.http, shutdown.token.clone()).await?;
    Ok(())
}

/// One bucket per source: `per_second` requests, in bursts of as many;
/// `None` for `0`, no limit.
fn source_limits(per_second: u32) -> Option<hookline_runtime::buckets::KeyedBuckets<String>> {
    let rate = f64::from(per_second);
    (per_second > 0).then(|| hookline_runtime::buckets::KeyedBuckets::new(rate, rate))
}

/// Ingest's own routes, built from [`openapi::ROUTES`] so that nothing is
/// served that the document does not describe. `/healthz`, `/readyz` and
/// `/metrics` come from `ops::router`, merged by the caller.
fn routes(config: &IngestConfig, state: Arc<AppState>) -> Router {
    use openapi::{EVENTS, EVENTS_BATCH, HEALTHZ, INBOUND, METRICS, OPENAPI, READYZ};
    let batch_limit = config.max_event_bytes.saturating_mul(40);
    let mut router = Router::new();
    let authenticated = axum::middleware::from_fn_with_state(state.clone(), auth::require_token);
    for &(method, path) in openapi::ROUTES {
        let handler = match (method, path) {
            ("POST", EVENTS) => post(handlers::publish_one)
                .layer(DefaultBodyLimit::max(config.max_event_bytes))
                .layer(authenticated.clone()),
            ("POST", EVENTS_BATCH) => post(handlers::publish_batch)
                .layer(DefaultBodyLimit::max(batch_limit))
                .layer(authenticated.clone()),
            // Authenticated by the URL's token and the source's signature.
            ("POST", INBOUND) => {
                post(inbound::receive).layer(DefaultBodyLimit::max(config.max_event_bytes))
            }
            ("GET", OPENAPI) => get(openapi::document),
            // Served by `ops::router`.
            ("GET", HEALTHZ | READYZ | METRICS) => continue,
            _ => panic!("openapi::ROUTES lists {method} {path}, which has no handler"),
        };
        router = router.route(path, handler);
    }
    router.with_state(state)
}

/// Keeps a channel open (reconnecting after broker outages) and mirrors it
/// into readiness, so a load balancer stops sending to an ingest that
/// cannot publish.
fn spawn_broker_watch(shutdown: &Shutdown, state: Arc<AppState>, readiness: Readiness) {
    let token = shutdown.token.clone();
    let reconnects = state.metrics.reconnects.clone();
    shutdown.tracker.spawn(async move {
        let mut was_up = false;
        loop {
            let up = state.publisher.publisher().await.is_ok();
            if up && !was_up {
                tracing::info!("connected to the broker");
            } else if !up && was_up {
                reconnects.inc();
                tracing::warn!("lost the broker; publishing answers 503 until it returns");
            }
            was_up = up;
            readiness.set("amqp", up);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = token.cancelled() => break,
            }
        }
    });
}
