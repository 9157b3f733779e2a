//! One broker session: consume events, publish one task per match, and ack
//! each event only after all of its tasks are confirmed.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures_util::future::join_all;
use futures_util::StreamExt;
use hookline_amqp::names::{
    DELIVERIES_QUEUE, ERROR_HEADER, EVENTS_QUEUE, INVALID_QUEUE, LANES_EXCHANGE,
};
use hookline_amqp::{
    declare, redelivered_too_often, AmqpError, ConfirmedPublisher, PendingConfirm, DELIVERY_LIMIT,
};
use hookline_catalogue::{SchemaViolation, SharedCatalogue};
use hookline_model::trace::{TraceParent, TRACEPARENT};
use hookline_model::{ids, Event};
use hookline_proto::{DeliveryTask, Message, SCHEMA_VERSION};
use hookline_render::FilterInput;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::Acker;
use lapin::Connection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::FanoutConfig;
use crate::endpoints::EndpointQueues;
use crate::index::{SharedIndex, Target};
use crate::lanes::SlowLanes;
use crate::metrics::Metrics;

/// What one event produced: its outcome label and the confirms to wait on.
struct FanoutOutcome {
    outcome: &'static str,
    confirms: Vec<PendingConfirm>,
    /// How many of the tasks went into slow lanes.
    to_lanes: u64,
}

/// Where a task goes besides the shared queue.
struct Routes {
    /// Subscriptions deliverers reported slow.
    lanes: SlowLanes,
    /// Queues of subscriptions with an endpoint policy.
    endpoints: EndpointQueues,
}

/// An event's acker and what it produced.
type Pending = (Acker, FanoutOutcome);

/// Consumes `hookline.events.fanout` until the connection fails or `token`
/// is cancelled.
pub async fn session(
    connection: Arc<Connection>,
    config: FanoutConfig,
    index: SharedIndex,
    catalogue: SharedCatalogue,
    lanes: SlowLanes,
    metrics: Metrics,
    token: CancellationToken,
) -> Result<(), AmqpError> {
    let publisher = ConfirmedPublisher::open(
        &connection,
        config.confirm_window,
        Some(metrics.confirm_seconds.clone()),
    )
    .await?;
    declare(publisher.channel(), &config.topology).await?;
    let routes = Routes {
        lanes,
        endpoints: EndpointQueues::new(connection.clone(), config.topology.queue_type),
    };
    let channel = connection.create_channel().await?;
    // Prefetch bounds the events whose tasks are awaiting confirms: the
    // pipeline's depth, and the memory one fanout can hold.
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    let tag = ids::new_id("fanout");
    let mut consumer = channel
        .basic_consume(
            EVENTS_QUEUE.into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;

    // Confirms are awaited in order by a second task, so the consumer keeps
    // publishing while earlier events wait for theirs.
    let (tx, rx) = mpsc::channel::<Pending>(config.prefetch as usize);
    let acks = tokio::spawn(ack_in_order(rx, metrics.clone()));
    let result = loop {
        let next = tokio::select! {
            next = consumer.next() => next,
            _ = token.cancelled() => break Ok(()),
        };
        let delivery = match next {
            Some(Ok(delivery)) => delivery,
            Some(Err(e)) => break Err(AmqpError::from(e)),
            None => break Err(AmqpError::Unavailable("event consumer ended".into())),
        };
        let acker = delivery.acker.clone();
        let checked = Checked {
            index: &index,
            catalogue: &catalogue,
        };
        match fan_out(&delivery, &publisher, checked, &routes, &metrics).await {
            Ok(pending) => {
                if tx.send((acker, pending)).await.is_err() {
                    break Err(AmqpError::Unavailable("ack task stopped".into()));
                }
            }
            Err(e) => break Err(e),
        }
    };
    drop(tx);
    let _ = acks.await;
    let _ = channel
        .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
        .await;
    result
}

/// Acks each event once every task it produced is confirmed; this is where
/// at-least-once is decided for fanout. Events are settled in delivery
/// order, so a run of confirmed events is acked with one `multiple` ack
/// (one frame instead of one per event). A failed confirm requeues that
/// event alone: its tasks are published again with the same `webhook-id`s.
async fn ack_in_order(mut rx: mpsc::Receiver<Pending>, metrics: Metrics) {
    let mut ready = Vec::new();
    while rx.recv_many(&mut ready, 256).await > 0 {
        let mut last_ok: Option<Acker> = None;
        for (acker, fanned) in ready.drain(..) {
            let tasks = fanned.confirms.len() as u64;
            let results =
                join_all(fanned.confirms.into_iter().map(PendingConfirm::confirmed)).await;
            if results.iter().all(Result::is_ok) {
                // Counted once confirmed, so a requeued event is not counted twice.
                metrics.events.with_label_values(&[fanned.outcome]).inc();
                if fanned.outcome == "matched" {
                    metrics.tasks.inc_by(tasks);
                    metrics.lane_tasks.inc_by(fanned.to_lanes);
                }
                last_ok = Some(acker);
                continue;
            }
            if let Some(previous) = last_ok.take() {
                let _ = previous.ack(BasicAckOptions { multiple: true }).await;
            }
            tracing::warn!("a delivery task was not confirmed; requeueing its event");
            let _ = acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await;
        }
        if let Some(acker) = last_ok {
            let _ = acker.ack(BasicAckOptions { multiple: true }).await;
        }
    }
}

/// The `traceparent` header of an event message, when it has a valid one.
fn event_parent(headers: Option<&FieldTable>) -> Option<TraceParent> {
    let incoming = headers
        .and_then(|h| h.inner().get(TRACEPARENT))
        .and_then(|value| match value {
            AMQPValue::LongString(text) => Some(text.to_string()),
            AMQPValue::ShortString(text) => Some(text.as_str().to_string()),
            _ => None,
        });
    incoming.as_deref().and_then(TraceParent::parse)
}

/// What an event is checked and matched against.
#[derive(Clone, Copy)]
struct Checked<'a> {
    index: &'a SharedIndex,
    catalogue: &'a SharedCatalogue,
}

/// Publishes what one event produces and returns the confirms to wait for.
async fn fan_out(
    delivery: &Delivery,
    publisher: &ConfirmedPublisher,
    Checked { index, catalogue }: Checked<'_>,
    routes: &Routes,
    metrics: &Metrics,
) -> Result<FanoutOutcome, AmqpError> {
    let raw = &delivery.data;
    let parsed = match redelivered_too_often(delivery.properties.headers().as_ref()) {
        // Parked before the broker's delivery limit would drop it into the
        // invalid queue without a reason.
        Some(count) => Err(format!(
            "delivered {count} times without being acked (fanout crashed or gave it back each \
             time); parked before the broker's delivery limit of {DELIVERY_LIMIT}"
        )),
        None => Event::parse(raw, Utc::now(), || ids::event_id_for_message(raw))
            .map_err(|e| e.to_string())
            .and_then(|mut event| {
                // The catalogue's schema, for AMQP producers that bypass
                // ingest (and events ingest took before it knew the type).
                catalogue
                    .current()
                    .check(&event.event_type, &mut event.data)
                    .map_err(|violation| format!("{}: {violation}", SchemaViolation::CODE))?;
                Ok(event)
            }),
    };
    let event = match parsed {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(reason = %e, "invalid event moved to {INVALID_QUEUE}");
            let mut headers = FieldTable::default();
            headers.insert(ERROR_HEADER.into(), AMQPValue::LongString(e.into()));
            let properties = delivery.properties.clone().with_headers(headers);
            let confirms = vec![
                publisher
                    .publish("", INVALID_QUEUE, raw, properties)
                    .await?,
            ];
            return Ok(FanoutOutcome {
                outcome: "invalid",
                confirms,
                to_lanes: 0,
            });
        }
    };
    // The `fanout.match` span, under the context ingest or an AMQP producer
    // passed; every task of the event carries this span's context, so each
    // attempt is a child of it.
    let span = tracing::info_span!(
        "fanout.match",
        otel.kind = "consumer",
        hookline.tenant = %event.tenant,
        hookline.event_id = %event.id,
        hookline.event_type = %event.event_type,
        hookline.matched = tracing::field::Empty,
    );
    let trace = hookline_runtime::telemetry::continue_trace(
        &span,
        event_parent(delivery.properties.headers().as_ref()),
    );
    let started = Instant::now();
    let matched = index
        .read()
        .index()
        .matching(&event.tenant, &event.event_type);
    metrics
        .match_seconds
        .observe(started.elapsed().as_secs_f64());
    // The envelope as a value (templates, filters) and in CEL's values
    // (filters) are made once per event, and only if a target needs them.
    let envelope = matched
        .iter()
        .any(|t| t.plan.is_some())
        .then(|| event.delivery_value(false));
    let filter_input = match &envelope {
        Some(envelope)
            if matched
                .iter()
                .any(|t| t.plan.as_ref().is_some_and(|p| p.has_filter())) =>
        {
            Some(FilterInput::new(envelope))
        }
        _ => None,
    };
    let targets: Vec<_> = matched
        .into_iter()
        .filter(|target| admitted(target, filter_input.as_ref(), metrics))
        .collect();
    span.record("hookline.matched", targets.len());
    if targets.is_empty() {
        return Ok(FanoutOutcome {
            outcome: "unmatched",
            confirms: Vec::new(),
            to_lanes: 0,
        });
    }
    // Rendered once; every task of this event that sends the standard body
    // carries the same bytes.
    let body = bytes::Bytes::from(event.delivery_body(false));
    let trace = trace.to_string();
    let no_envelope = serde_json::Value::Null;
    let envelope = envelope.as_ref().unwrap_or(&no_envelope);
    let properties = hookline_amqp::protobuf_properties();
    let mut pending = Vec::with_capacity(targets.len());
    let to_lane = routes.lanes.routed(targets.iter().map(|t| t.id.as_str()));
    let to_lanes = to_lane.iter().filter(|routed| **routed).count() as u64;
    // A batch's max_wait counts from here, whichever deliverer collects it.
    let matched_at_ms = chrono::Utc::now().timestamp_millis();
    for (target, to_lane) in targets.into_iter().zip(to_lane) {
        let mut task = DeliveryTask {
            schema_version: SCHEMA_VERSION,
            delivery_id: ids::delivery_id(&event.tenant, &event.id, &target.id),
            tenant: event.tenant.clone(),
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            occurred_at_ms: event.occurred_at.timestamp_millis(),
            subscription_id: target.id.clone(),
            attempt: 1,
            matched_at_ms,
            ..DeliveryTask::default()
        };
        // The one way a task takes its subscription's shape (test sends,
        // replays and deliverers re-shaping old tasks use it too).
        task.reshape(&target.shape, target.revision);
        task.headers.clone_from(&target.legacy_headers);
        task.traceparent.clone_from(&trace);
        hookline_store::apply_plan(&mut task, target.plan.as_deref(), envelope, &body);
        // A policy's queue first: its tasks must all wait there, in order,
        // fast endpoint or slow.
        let (exchange, routing_key) = if task.active_policy().is_some() {
            ("", routes.endpoints.ensure(&target.id).await?)
        } else if to_lane {
            (LANES_EXCHANGE, target.id.clone())
        } else {
            ("", DELIVERIES_QUEUE.to_string())
        };
        pending.push(
            publisher
                .publish(
                    exchange,
                    &routing_key,
                    &task.encode_to_vec(),
                    properties.clone(),
                )
                .await?,
        );
    }
    Ok(FanoutOutcome {
        outcome: "matched",
        confirms: pending,
        to_lanes,
    })
}

/// Whether the target's filter lets the event through. An evaluation error
/// (a missing field, a wrong type) is counted and taken as `false`; it never
/// stops the consumer.
fn admitted(target: &Target, input: Option<&FilterInput>, metrics: &Metrics) -> bool {
    let (Some(plan), Some(input)) = (target.plan.as_deref(), input) else {
        return true;
    };
    match plan.admits(input) {
        Ok(admitted) => admitted,
        Err(error) => {
            metrics.filter_errors.inc();
            tracing::debug!(subscription_id = %target.id, %error, "filter failed to evaluate; counted as false");
            false
        }
    }
}
