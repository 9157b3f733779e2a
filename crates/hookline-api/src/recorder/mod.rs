//! The recorders: consumers that turn the deliverers' messages into rows.
//! `hookline.attempts` becomes delivery history, `hookline.deliveries.dead`
//! becomes dead letters, `hookline.source-requests` the inbound request log;
//! whatever cannot be decoded is parked, never looped.

mod attempts;
mod consume;

pub(crate) use consume::PARKING;
mod dead_letters;
mod source_requests;

use std::sync::Arc;

use hookline_amqp::{supervise, SessionContext, Topology};
use hookline_model::sealed::Keyring;
use hookline_runtime::Readiness;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ApiConfig;
use crate::control::Notifier;
use crate::db::Database;
use crate::metrics::Metrics;

pub(crate) use consume::Sink;

/// What both recorders need.
#[derive(Clone)]
pub(crate) struct Recorders {
    /// Where the rows go.
    pub db: Database,
    /// Declared before consuming, so a fresh broker works.
    pub topology: Topology,
    /// Broker URL and reconnect delay come from here.
    pub config: ApiConfig,
    /// Counters and the lag histogram.
    pub metrics: Metrics,
    /// Announces subscriptions disabled by a 410, or verified by an echo.
    pub notifier: Notifier,
    /// For the shape a verified subscription is announced with.
    pub keyring: Arc<Keyring>,
    /// The api's shutdown signal: consumers stop taking messages and drain.
    pub token: CancellationToken,
}

impl Recorders {
    /// Spawns both consumers on `tracker`; returns each one's queue and
    /// state, for `hookline_api_recorder_connected` and the `parking` check.
    pub fn spawn(self, tracker: &TaskTracker) -> Vec<(&'static str, Readiness)> {
        let attempts = attempts::AttemptSink {
            metrics: self.metrics.clone(),
            notifier: self.notifier.clone(),
            keyring: self.keyring.clone(),
        };
        let dead = dead_letters::DeadLetterSink {
            metrics: self.metrics.clone(),
        };
        let inbound = source_requests::SourceRequestSink {
            metrics: self.metrics.clone(),
        };
        vec![
            (
                attempts::AttemptSink::QUEUE,
                self.spawn_one(tracker, attempts),
            ),
            (
                dead_letters::DeadLetterSink::QUEUE,
                self.spawn_one(tracker, dead),
            ),
            (
                source_requests::SourceRequestSink::QUEUE,
                self.spawn_one(tracker, inbound),
            ),
        ]
    }

    fn spawn_one<S: Sink>(&self, tracker: &TaskTracker, sink: S) -> Readiness {
        let up = Readiness::new();
        up.set("amqp", false);
        let ctx = SessionContext {
            broker: hookline_amqp::Broker::from_settings(&self.config.amqp),
            name: format!("hookline-api {}", S::QUEUE),
            reconnect_delay: self.config.amqp.reconnect_delay,
            readiness: up.clone(),
            reconnects: self.metrics.reconnects.clone(),
            token: self.token.clone(),
        };
        let session = Arc::new(consume::Session {
            sink,
            db: self.db.clone(),
            topology: self.topology.clone(),
            up: up.clone(),
            token: self.token.clone(),
        });
        tracker.spawn(async move {
            supervise(ctx, move |connection| {
                let session = session.clone();
                async move { session.run(connection).await }
            })
            .await;
        });
        up
    }
}
