//! The deliverer's metric families, named as the contract says.

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, Opts, Registry,
};

/// Handles to every deliverer metric.
#[derive(Clone)]
pub struct Metrics {
    /// `hookline_deliveries_total{outcome,status_class}`.
    pub deliveries: IntCounterVec,
    /// `hookline_delivery_duration_seconds{outcome}`.
    pub duration: HistogramVec,
    /// `hookline_event_to_delivery_seconds`.
    pub event_to_delivery: Histogram,
    /// `hookline_retries_scheduled_total{delay}`.
    pub retries: IntCounterVec,
    /// `hookline_inflight_deliveries`.
    pub inflight: IntGauge,
    /// `hookline_amqp_publish_confirm_seconds{service="deliverer"}`.
    pub confirm_seconds: Histogram,
    /// `hookline_amqp_reconnects_total{service="deliverer"}`.
    pub reconnects: IntCounter,
    /// `hookline_deliveries_deferred_total`: tasks moved into their
    /// subscription's slow lane because it hit its in-flight cap.
    pub deferred: IntCounter,
    /// `hookline_deliverer_endpoint_queue_moves_total`: tasks with an
    /// endpoint policy found on a shared queue (retries, replays) and moved
    /// into their endpoint queue.
    pub to_endpoint_queues: IntCounter,
    /// `hookline_ready{service="deliverer"}`.
    pub ready: IntGauge,
    /// `hookline_control_messages_ignored_total{service="deliverer"}`.
    pub control_ignored: IntCounter,
    /// `hookline_deliverer_lanes_refused_total`: lanes not consumed because
    /// `delivery.max_lanes` were consumed already.
    pub lanes_refused: IntCounter,
    /// `hookline_deliverer_unopenable_tasks_total`: tasks whose sealed
    /// credentials no configured key opens, parked as dead letters.
    pub unopenable: IntCounter,
    /// `hookline_deliverer_superseded_tasks_total{outcome}`: tasks built
    /// before their subscription's newest change, re-shaped or dropped.
    pub superseded: IntCounterVec,
}

impl Metrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let latency = exponential_buckets(0.001, 2.0, 16)?;
        let metrics = Self {
            deliveries: IntCounterVec::new(
                Opts::new(
                    "hookline_deliveries_total",
                    "Delivery attempts by outcome and status class.",
                ),
                &["outcome", "status_class"],
            )?,
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "hookline_delivery_duration_seconds",
                    "Duration of one HTTP attempt.",
                )
                .buckets(latency.clone()),
                &["outcome"],
            )?,
            event_to_delivery: Histogram::with_opts(
                HistogramOpts::new(
                    "hookline_event_to_delivery_seconds",
                    "From the event's occurred_at to its successful delivery.",
                )
                .buckets(exponential_buckets(0.001, 2.5, 20)?),
            )?,
            retries: IntCounterVec::new(
                Opts::new(
                    "hookline_retries_scheduled_total",
                    "Retries put on the ladder, by delay.",
                ),
                &["delay"],
            )?,
            inflight: IntGauge::new("hookline_inflight_deliveries", "HTTP sends in flight.")?,
            confirm_seconds: hookline_runtime::metrics::confirm_histogram("deliverer")?,
            reconnects: hookline_runtime::metrics::reconnects_counter("deliverer")?,
            deferred: IntCounter::new(
                "hookline_deliveries_deferred_total",
                "Tasks moved into their subscription's slow lane because it was at its in-flight cap.",
            )?,
            to_endpoint_queues: IntCounter::new(
                "hookline_deliverer_endpoint_queue_moves_total",
                "Tasks with an endpoint policy (retries, replays) moved from a shared queue into their endpoint queue.",
            )?,
            ready: hookline_runtime::metrics::ready_gauge("deliverer")?,
            control_ignored: hookline_runtime::metrics::control_ignored_counter("deliverer")?,
            lanes_refused: IntCounter::new(
                "hookline_deliverer_lanes_refused_total",
                "Slow lanes not consumed because delivery.max_lanes were consumed already.",
            )?,
            superseded: IntCounterVec::new(
                Opts::new(
                    "hookline_deliverer_superseded_tasks_total",
                    "Tasks built before their subscription's newest change: re-shaped to it, or dropped because it was deleted or disabled.",
                ),
                &["outcome"],
            )?,
            unopenable: IntCounter::new(
                "hookline_deliverer_unopenable_tasks_total",
                "Tasks parked unsent because no configured key opens their sealed credentials.",
            )?,
        };
        registry.register(Box::new(metrics.deliveries.clone()))?;
        registry.register(Box::new(metrics.duration.clone()))?;
        registry.register(Box::new(metrics.event_to_delivery.clone()))?;
        registry.register(Box::new(metrics.retries.clone()))?;
        registry.register(Box::new(metrics.inflight.clone()))?;
        registry.register(Box::new(metrics.confirm_seconds.clone()))?;
        registry.register(Box::new(metrics.reconnects.clone()))?;
        registry.register(Box::new(metrics.deferred.clone()))?;
        registry.register(Box::new(metrics.to_endpoint_queues.clone()))?;
        registry.register(Box::new(metrics.ready.clone()))?;
        registry.register(Box::new(metrics.control_ignored.clone()))?;
        registry.register(Box::new(metrics.unopenable.clone()))?;
        registry.register(Box::new(metrics.lanes_refused.clone()))?;
        registry.register(Box::new(metrics.superseded.clone()))?;
        Ok(metrics)
    }
}
