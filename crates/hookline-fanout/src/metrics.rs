//! Fanout's metric families.

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry,
};

/// Handles to every fanout metric.
#[derive(Clone)]
pub struct Metrics {
    /// `hookline_fanout_events_total{outcome}`: matched, unmatched, invalid.
    pub events: IntCounterVec,
    /// `hookline_fanout_tasks_total`.
    pub tasks: IntCounter,
    /// `hookline_fanout_lane_tasks_total`: tasks published straight into a
    /// slow subscription's lane (a part of `tasks`).
    pub lane_tasks: IntCounter,
    /// `hookline_fanout_match_duration_seconds`.
    pub match_seconds: Histogram,
    /// `hookline_fanout_subscriptions_loaded`.
    pub loaded: IntGauge,
    /// `hookline_amqp_publish_confirm_seconds{service="fanout"}`.
    pub confirm_seconds: Histogram,
    /// `hookline_amqp_reconnects_total{service="fanout"}`.
    pub reconnects: IntCounter,
    /// `hookline_ready{service="fanout"}`.
    pub ready: IntGauge,
    /// `hookline_control_messages_ignored_total{service="fanout"}`.
    pub control_ignored: IntCounter,
    /// `hookline_fanout_filter_errors_total`: filters whose evaluation
    /// failed, which count as "no match". Exported before content filters
    /// exist (#13), at zero, so the contract's family and the dashboards
    /// that read it are there from the first deploy.
    pub filter_errors: IntCounter,
}

impl Metrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = Self {
            events: IntCounterVec::new(
                Opts::new(
                    "hookline_fanout_events_total",
                    "Events consumed, by outcome.",
                ),
                &["outcome"],
            )?,
            tasks: IntCounter::new("hookline_fanout_tasks_total", "Delivery tasks published.")?,
            lane_tasks: IntCounter::new(
                "hookline_fanout_lane_tasks_total",
                "Delivery tasks published into a slow subscription's lane.",
            )?,
            match_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "hookline_fanout_match_duration_seconds",
                    "Matching one event.",
                )
                .buckets(exponential_buckets(0.00001, 2.0, 16)?),
            )?,
            loaded: IntGauge::new(
                "hookline_fanout_subscriptions_loaded",
                "Enabled subscriptions in the index.",
            )?,
            confirm_seconds: hookline_runtime::metrics::confirm_histogram("fanout")?,
            reconnects: hookline_runtime::metrics::reconnects_counter("fanout")?,
            ready: hookline_runtime::metrics::ready_gauge("fanout")?,
            control_ignored: hookline_runtime::metrics::control_ignored_counter("fanout")?,
            filter_errors: IntCounter::new(
                "hookline_fanout_filter_errors_total",
                "Subscription filters that failed to evaluate and counted as false.",
            )?,
        };
        for outcome in ["matched", "unmatched", "invalid"] {
            metrics.events.with_label_values(&[outcome]);
        }
        registry.register(Box::new(metrics.events.clone()))?;
        registry.register(Box::new(metrics.tasks.clone()))?;
        registry.register(Box::new(metrics.lane_tasks.clone()))?;
        registry.register(Box::new(metrics.match_seconds.clone()))?;
        registry.register(Box::new(metrics.loaded.clone()))?;
        registry.register(Box::new(metrics.confirm_seconds.clone()))?;
        registry.register(Box::new(metrics.reconnects.clone()))?;
        registry.register(Box::new(metrics.ready.clone()))?;
        registry.register(Box::new(metrics.control_ignored.clone()))?;
        registry.register(Box::new(metrics.filter_errors.clone()))?;
        Ok(metrics)
    }
}
