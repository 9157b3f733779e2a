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
            confirm_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "hookline_amqp_publish_confirm_seconds",
                    "Publish to broker confirm.",
                )
                .const_label("service", "ingest")
                .buckets(latency),
            )?,
            reconnects: IntCounter::with_opts(
                Opts::new("hookline_amqp_reconnects_total", "Broker reconnections.")
                    .const_label("service", "ingest"),
            )?,
            ready: IntGauge::with_opts(
                Opts::new("hookline_ready", "1 when the service is ready.")
                    .const_label("service", "ingest"),
            )?,
        };
        for outcome in ["accepted", "invalid", "rejected"] {
            metrics.events.with_label_values(&[outcome]);
        }
        registry.register(Box::new(metrics.events.clone()))?;
        registry.register(Box::new(metrics.request_seconds.clone()))?;
        registry.register(Box::new(metrics.confirm_seconds.clone()))?;
        registry.register(Box::new(metrics.reconnects.clone()))?;
        registry.register(Box::new(metrics.ready.clone()))?;
        Ok(metrics)
    }
}
