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
    /// `hookline_ingest_source_requests_total{outcome}`: requests to source
    /// URLs (no tenant or source label: a label per source would grow
    /// without bound).
    pub source_requests: IntCounterVec,
    /// `hookline_ingest_source_log_dropped_total`: request notes dropped
    /// because the buffer was full (the broker away for long).
    pub source_log_dropped: IntCounter,
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
            source_requests: IntCounterVec::new(
                Opts::new(
                    "hookline_ingest_source_requests_total",
                    "Requests to inbound source URLs, by outcome.",
                ),
                &["outcome"],
            )?,
            source_log_dropped: IntCounter::new(
                "hookline_ingest_source_log_dropped_total",
                "Notes of inbound source requests dropped because the buffer was full.",
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
        for outcome in crate::inbound::Outcome::ALL {
            metrics
                .source_requests
                .with_label_values(&[outcome.as_str()]);
        }
        registry.register(Box::new(metrics.events.clone()))?;
        registry.register(Box::new(metrics.source_requests.clone()))?;
        registry.register(Box::new(metrics.source_log_dropped.clone()))?;
        registry.register(Box::new(metrics.request_seconds.clone()))?;
        registry.register(Box::new(metrics.confirm_seconds.clone()))?;
        registry.register(Box::new(metrics.reconnects.clone()))?;
        registry.register(Box::new(metrics.ready.clone()))?;
        registry.register(Box::new(metrics.control_ignored.clone()))?;
        Ok(metrics)
    }
}
