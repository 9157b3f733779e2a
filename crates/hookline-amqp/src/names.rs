//! Exchange and queue names. The contract fixes `hookline.events`,
//! `hookline.events.invalid`, `hookline.deliveries.dead` and
//! `hookline.outcomes`; the rest are Hookline's own.

use std::time::Duration;

/// Topic exchange producers publish events to (routing key = event type).
pub const EVENTS_EXCHANGE: &str = "hookline.events";
/// Queue fanout consumes; bound to `hookline.events` with `#`.
pub const EVENTS_QUEUE: &str = "hookline.events.fanout";
/// Events that failed validation, with `x-hookline-error`.
pub const INVALID_QUEUE: &str = "hookline.events.invalid";
/// First attempts of delivery tasks.
pub const DELIVERIES_QUEUE: &str = "hookline.deliveries";
/// Tasks coming back from the wait queues; consumed separately so a retry
/// storm cannot starve first attempts.
pub const RETRY_QUEUE: &str = "hookline.deliveries.retry";
/// Direct exchange the wait queues dead-letter into, routing to `RETRY_QUEUE`.
pub const RETRY_EXCHANGE: &str = "hookline.retry";
/// Routing key from the retry exchange to the retry queue.
pub const RETRY_ROUTING_KEY: &str = "retry";
/// Parked deliveries (exhausted, or undecodable tasks) with a reason.
pub const DEAD_QUEUE: &str = "hookline.deliveries.dead";
/// Batches of attempt records for the api to store.
pub const ATTEMPTS_QUEUE: &str = "hookline.attempts";
/// Batches of inbound source requests, for the api to store.
pub const SOURCE_REQUESTS_QUEUE: &str = "hookline.source-requests";
/// Topic exchange of failed/dead (and optionally succeeded) attempts,
/// routing key `<status>.<event type>`.
pub const OUTCOMES_EXCHANGE: &str = "hookline.outcomes";
/// Fanout exchange of subscription changes.
pub const CONTROL_EXCHANGE: &str = "hookline.control";
/// Stream bound to `hookline.control` that keeps every change for
/// [`CONTROL_LOG_MAX_AGE`]: a deliverer reads it from the start when it
/// starts, so a delete or a PATCH made while it was down (or a notice it
/// missed) still applies to the tasks waiting on the ladder.
pub const CONTROL_LOG_QUEUE: &str = "hookline.control.log";
/// How long the control log keeps a change (RabbitMQ's `x-max-age`). Fixed,
/// so every service declares the stream alike; the retry ladder must fit in
/// it with room to spare (checked at start, key `delivery.retry_delays`).
pub const CONTROL_LOG_MAX_AGE: &str = "7D";
/// Direct exchange fanout publishes a slow subscription's tasks to (routing
/// key = subscription id), so they wait in that subscription's lane instead
/// of being taken and put back by the deliverers. Its alternate exchange
/// sends a task whose lane is gone to `hookline.deliveries`.
pub const LANES_EXCHANGE: &str = "hookline.lanes";
/// Fanout exchange bound to `hookline.deliveries`: the alternate exchange of
/// `hookline.lanes`.
pub const LANES_FALLBACK_EXCHANGE: &str = "hookline.lanes.fallback";
/// Header carrying why a message was parked.
pub const ERROR_HEADER: &str = "x-hookline-error";

/// The wait queue for one rung, named by its delay (`hookline.wait.30s`) so
/// that changing the ladder declares new queues and old ones simply drain.
pub fn wait_queue(delay: Duration) -> String {
    format!("hookline.wait.{}", hookline_config::format_duration(delay))
}

/// The slow lane of one subscription: its tasks wait here, in order, and
/// are taken only as fast as the endpoint answers.
pub fn lane_queue(subscription_id: &str) -> String {
    format!("hookline.lane.{subscription_id}")
}

/// The queue of one subscription with an endpoint policy (`ordering`,
/// `rate_limit`): fanout publishes its tasks here from the first event, and
/// deliverers take them out under the policy, one active consumer at a time.
pub fn endpoint_queue(subscription_id: &str) -> String {
    format!("hookline.endpoint.{subscription_id}")
}
