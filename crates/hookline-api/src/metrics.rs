//! The api's metric families, registered once into the process registry.
//! No tenant, URL or subscription id ever becomes a label.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

/// Handles to every metric the api updates.
#[derive(Clone)]
pub struct Metrics {
    /// `hookline_attempt_records_written_total`: attempt rows stored.
    pub attempt_records_written: IntCounter,
    /// `hookline_attempt_record_lag_seconds`: from the attempt to its row,
    /// i.e. how stale delivery history is.
    pub attempt_record_lag: Histogram,
    /// `hookline_dead_letters_total`: dead letters stored.
    pub dead_letters: IntCounter,
    /// `hookline_api_parked_messages_total`: messages the recorders could
    /// not decode and kept in `parked_messages` instead.
    pub parked_messages: IntCounter,
    /// `hookline_amqp_reconnects_total{service="api"}`: recorder reconnections.
    pub reconnects: IntCounter,
    /// `hookline_ready{service="api"}`: 1 when `/readyz` would answer 200.
    pub ready: IntGauge,
    /// `hookline_api_token_lookups_total`: bearer tokens looked up in the
    /// database (unknown ones are then answered from memory for a while).
    pub token_lookups: IntCounter,
    /// `hookline_api_recorder_connected{queue}`: whether each recorder
    /// consumes its queue. Not part of `/readyz`: a recorder reconnecting
    /// must not take the control plane out of its load balancer.
    pub recorder_connected: prometheus::IntGaugeVec,
    /// `hookline_verifications_total{outcome}`: challenges sent, and how
    /// each verification ended (see [`Verification`]).
    pub verifications: prometheus::IntCounterVec,
}

/// The `outcome` label of `hookline_verifications_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// A challenge was published for a deliverer to send.
    Sent,
    /// The endpoint echoed the token: verified.
    Echoed,
    /// The endpoint answered without the token, or not at all.
    Unanswered,
    /// The tenant typed in the right token: verified.
    Manual,
    /// A typed-in token was wrong (or already used).
    WrongToken,
    /// The token was right but past `api.verification_ttl`, or an echo came
    /// for a challenge already replaced.
    Expired,
    /// Too many wrong tokens: refused before checking.
    RateLimited,
}

impl Verification {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Sent => "sent",
            Verification::Echoed => "echoed",
            Verification::Unanswered => "unanswered",
            Verification::Manual => "manual",
            Verification::WrongToken => "wrong_token",
            Verification::Expired => "expired",
            Verification::RateLimited => "rate_limited",
        }
    }
}

impl Metrics {
    /// Creates and registers the families; the shared ones come from
    /// `hookline_runtime::metrics` so `hookline all` can hold every service.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            attempt_records_written: IntCounter::new(
                "hookline_attempt_records_written_total",
                "Attempt records written to the delivery history.",
            )?,
            attempt_record_lag: Histogram::with_opts(
                HistogramOpts::new(
                    "hookline_attempt_record_lag_seconds",
                    "Time from an attempt to its record being written to the history.",
                )
                .buckets(vec![
                    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
                    3600.0,
                ]),
            )?,
            dead_letters: IntCounter::new("hookline_dead_letters_total", "Dead letters recorded.")?,
            parked_messages: IntCounter::new(
                "hookline_api_parked_messages_total",
                "Undecodable messages the api recorders kept in parked_messages.",
            )?,
            reconnects: hookline_runtime::metrics::reconnects_counter("api")?,
            ready: hookline_runtime::metrics::ready_gauge("api")?,
            token_lookups: IntCounter::new(
                "hookline_api_token_lookups_total",
                "Bearer tokens looked up in the database.",
            )?,
            recorder_connected: prometheus::IntGaugeVec::new(
                prometheus::Opts::new(
                    "hookline_api_recorder_connected",
                    "1 while the recorder of this queue consumes it (history and dead letters).",
                ),
                &["queue"],
            )?,
            verifications: prometheus::IntCounterVec::new(
                prometheus::Opts::new(
                    "hookline_verifications_total",
                    "Verification challenges sent, and how verifications ended.",
                ),
                &["outcome"],
            )?,
        };
        registry.register(Box::new(metrics.attempt_records_written.clone()))?;
        registry.register(Box::new(metrics.attempt_record_lag.clone()))?;
        registry.register(Box::new(metrics.dead_letters.clone()))?;
        registry.register(Box::new(metrics.parked_messages.clone()))?;
        registry.register(Box::new(metrics.reconnects.clone()))?;
        registry.register(Box::new(metrics.ready.clone()))?;
        registry.register(Box::new(metrics.token_lookups.clone()))?;
        registry.register(Box::new(metrics.recorder_connected.clone()))?;
        registry.register(Box::new(metrics.verifications.clone()))?;
        Ok(metrics)
    }

    /// Counts one verification step.
    pub fn verification(&self, outcome: Verification) {
        self.verifications
            .with_label_values(&[outcome.as_str()])
            .inc();
    }
}
