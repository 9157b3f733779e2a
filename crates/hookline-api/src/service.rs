//! `run`: wires the pool, the publisher, the recorders and the HTTP server
//! together, and drains them on shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hookline_amqp::{SharedPublisher, SharedPublisherConfig, Topology};
use hookline_model::ssrf::Guard;
use hookline_runtime::{ops, Readiness, Shutdown};
use hookline_send::Sender;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::config::ApiConfig;
use crate::control::Notifier;
use crate::db::{self, Database};
use crate::metrics::Metrics;
use crate::recorder::Recorders;
use crate::state::{AppState, Shared};
use crate::validate::Rules;
use crate::{readiness, reseal, retention, routes};

/// Runs until shutdown.token is cancelled, then drains (bounded by the grace period) and returns.
///
/// PostgreSQL may be down at start: the api keeps trying in the background,
/// answers `503` on its database routes meanwhile, and reports `database`
/// as not ready. Only a configuration error (a malformed URL) or a failing
/// listener makes this return an error.
pub async fn run(
    config: ApiConfig,
    listener: TcpListener,
    registry: Registry,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    // A child token, so that a failing server can stop this service's own
    // tasks without cancelling the caller's other services.
    let token = shutdown.token.child_token();
    let metrics = Metrics::register(&registry).context("cannot register the api metrics")?;
    let db = Database::connect_lazy(&config.database).context("database.url")?;
    let topology = Topology {
        queue_type: config.amqp.queue_type,
        retry_delays: config.delivery.retry_delays.clone(),
    };
    let publisher = Arc::new(
        SharedPublisher::new(
            SharedPublisherConfig {
                broker: hookline_amqp::Broker::from_settings(&config.amqp),
                name: "hookline-api".into(),
                window: config.amqp.confirm_window,
                timeout: config.amqp.publish_timeout,
                topology: topology.clone(),
            },
            None,
        )
        .context("amqp.url")?,
    );
    let keyring = Arc::new(hookline_send::keyring_of(&config.api));
    let sender = Sender::new(&config.delivery, keyring.clone()).context("delivery")?;
    let notifier = Notifier::new(publisher.clone());
    let readiness = Readiness::new();
    readiness.set("database", false);
    readiness.set("amqp", false);

    let tracker = &shutdown.tracker;
    tracker.spawn(db::watch(db.clone(), readiness.clone(), token.clone()));
    let consumers = Recorders {
        db: db.clone(),
        topology,
        config: config.clone(),
        metrics: metrics.clone(),
        notifier: notifier.clone(),
        keyring: keyring.clone(),
        token: token.clone(),
    }
    .spawn(tracker);
    tracker.spawn(readiness::watch(
        publisher.clone(),
        consumers,
        readiness.clone(),
        metrics.ready.clone(),
        metrics.recorder_connected.clone(),
        token.clone(),
    ));
    tracker.spawn(reseal::run(
        db.clone(),
        keyring.clone(),
        notifier.clone(),
        token.clone(),
    ));
    tracker.spawn(crate::policies::run(
        db.clone(),
        keyring.clone(),
        notifier.clone(),
        token.clone(),
    ));
    tracker.spawn(retention::run(
        db.clone(),
        retention::Rule::all(&config.api),
        token.clone(),
    ));

    let manual_sends_per_minute = config.api.manual_sends_per_minute;
    let token_lookups = metrics.token_lookups.clone();
    let grace = config.grace_period;
    let http = config.http;
    let state = AppState::new(Shared {
        db: db.clone(),
        rules: Rules {
            allow_insecure_urls: config.api.allow_insecure_urls,
            guard: Guard::new(config.delivery.allowed_networks.clone()),
            max_headers: config.api.max_headers,
        },
        config,
        notifier,
        publisher,
        sender,
        metrics,
        keyring: keyring.clone(),
        unknown_tokens: Default::default(),
        manual_sends: crate::limits::MinuteBudget::new(manual_sends_per_minute),
        wrong_tokens: crate::limits::MinuteBudget::new(crate::limits::WRONG_TOKENS_PER_MINUTE),
        token_lookups,
    });
    let app = routes::router(state)
        .merge(ops::router(registry, readiness))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed);
    tracing::info!(addr = ?listener.local_addr().ok(), "api listening");

    let mut server = tokio::spawn(ops::serve(listener, app, http, token.clone()));
    let failed_early = tokio::select! {
        joined = &mut server => Some(joined),
        _ = token.cancelled() => None,
    };
    // Shutdown began (or the server stopped on its own): open requests and
    // background tasks share one grace period.
    token.cancel();
    let deadline = Instant::now() + grace;
    let served = match failed_early {
        Some(joined) => joined,
        None => match tokio::time::timeout_at(deadline, &mut server).await {
            Ok(joined) => joined,
            Err(_) => {
                tracing::warn!("open requests did not finish within the grace period");
                server.abort();
                Ok(Ok(()))
            }
        },
    };
    tracker.close();
    if tokio::time::timeout_at(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not finish within the grace period");
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), db.close()).await;
    served
        .context("the api server task failed")?
        .context("the api server failed")
}
