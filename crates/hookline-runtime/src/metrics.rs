//! The registry each process exposes and its text encoding.

use prometheus::{Encoder, Registry, TextEncoder};

/// A registry with the process collector (CPU, RSS, fds) already in it.
pub fn new_registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    {
        let _ = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
    }
    registry
}

/// The Prometheus text exposition (not OpenMetrics).
pub fn encode(registry: &Registry) -> String {
    let mut buffer = Vec::new();
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buffer);
    String::from_utf8(buffer).unwrap_or_default()
}

/// `hookline_ready{service}`: one constructor, so every service registers
/// the family with the same help text and `hookline all` can hold them all
/// in one registry.
pub fn ready_gauge(service: &str) -> prometheus::Result<prometheus::IntGauge> {
    prometheus::IntGauge::with_opts(
        prometheus::Opts::new("hookline_ready", "1 when the service is ready, else 0.")
            .const_label("service", service),
    )
}

/// `hookline_amqp_reconnects_total{service}`, shared for the same reason.
pub fn reconnects_counter(service: &str) -> prometheus::Result<prometheus::IntCounter> {
    prometheus::IntCounter::with_opts(
        prometheus::Opts::new("hookline_amqp_reconnects_total", "Broker reconnections.")
            .const_label("service", service),
    )
}

/// `hookline_amqp_publish_confirm_seconds{service}`, shared for the same reason.
pub fn confirm_histogram(service: &str) -> prometheus::Result<prometheus::Histogram> {
    prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new(
            "hookline_amqp_publish_confirm_seconds",
            "Publish to broker confirm.",
        )
        .const_label("service", service)
        .buckets(prometheus::exponential_buckets(0.0005, 2.0, 16)?),
    )
}

/// `hookline_control_messages_ignored_total{service}`: control messages of a
/// kind this build does not know (a newer sender, or a forged message).
pub fn control_ignored_counter(service: &str) -> prometheus::Result<prometheus::IntCounter> {
    prometheus::IntCounter::with_opts(
        prometheus::Opts::new(
            "hookline_control_messages_ignored_total",
            "Control messages ignored because their change is unknown.",
        )
        .const_label("service", service),
    )
}
