//! Ingest's metric families.

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, Opts, Registry,
};

/// Handles to every ingest metric.
#[derive(Clone)]
pub struct Metrics {
    /// `hookline_ingest_events_total{outcome}`: accepted, invalid, rejected.
    pub events: IntCounterVec,
    /// `hookline_ingest_request_duration_seconds{route}`.
    pub request_seconds: HistogramVec,
    /// `hookline_amqp_publish_confirm_seconds{service="ingest"}`.
    pub confirm_seconds: Histogram,
    /// `hookline_amqp_reconnects_total{service="ingest"}`.
    pub reconnects: IntCounter,
    /// `hookline_ready{service="ingest"}`.
    pub ready: IntGauge,
    /// `hookline_control_messages_ignored_total{service="ingest"}`: ingest
    /// listens to `hookline.control` for catalogue changes.
    pub control_ignored: IntCounter,
}

impl Metrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let latency = exponential_buckets(0.0005, 2.0, 16)?;
        let metrics = Self {
            events: IntCounterVec::new(
                Opts::new(
                    "hookline_ingest_events_total",
                    "Events received, by outcome.",
                ),
                &["outcome"],
            )?,
            request_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "hookline_ingest_request_duration_seconds",
                    "Ingest request latency.",
                )
                .buckets(latency.clone()),
                &["route"],
            )?,
            confirm_seconds: hookline_runtime::metrics::confirm_histogram("ingest")?,
            reconnects: hookline_runtime::metrics::reconnects_counter("ingest")?,
            ready: hookline_runtime::metrics::ready_gauge("ingest")?,
            control_ignored: hookline_runtime::metrics::control_ignored_counter("ingest")?,
        };
        for outcome in ["accepted", "invalid", "rejected"] {
            metrics.events.with_label_values(&[outcome]);
        }
        registry.register(Box::new(metrics.events.clone()))?;
        registry.register(Box::new(metrics.request_seconds.clone()))?;
        registry.register(Box::new(metrics.confirm_seconds.clone()))?;
        registry.register(Box::new(metrics.reconnects.clone()))?;
        registry.register(Box::new(metrics.ready.clone()))?;
        registry.register(Box::new(metrics.control_ignored.clone()))?;
        Ok(metrics)
    }
}
