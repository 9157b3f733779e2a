//! `POST /v1/events` and `POST /v1/events/batch`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use hookline_amqp::names::EVENTS_EXCHANGE;
use hookline_amqp::AmqpError;
use hookline_amqp::Outgoing;
use hookline_catalogue::SchemaViolation;
use hookline_model::error_body::ErrorBody;
use hookline_model::trace::{TraceParent, TRACEPARENT};
use hookline_model::{ids, Event, EventError};
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use serde::Serialize;
use tracing::Instrument;
use utoipa::ToSchema;

use crate::openapi::{EVENTS, EVENTS_BATCH};
use crate::AppState;

/// The contract's error body.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(ErrorBody::new(code, message))).into_response()
}

fn unavailable(e: &AmqpError) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("the event was not accepted: {e}; nothing was published, retry later"),
    )
}

fn body_rejection(state: &AppState, rejection: BytesRejection) -> Response {
    state.metrics.events.with_label_values(&["rejected"]).inc();
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the request body is over the limit of {} bytes",
                state.config.max_event_bytes
            ),
        )
    } else {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            rejection.body_text(),
        )
    }
}

fn draining(state: &AppState) -> Option<Response> {
    state.draining.is_cancelled().then(|| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "this ingest is shutting down; retry on another",
        )
    })
}

/// Publishes one event with its trace context in the `traceparent` header:
/// the `ingest.publish` span, a child of the producer's context when it
/// sent one, the root of the event's trace otherwise.
pub(crate) async fn publish(
    state: &AppState,
    event: &Event,
    parent: Option<TraceParent>,
) -> Result<(), AmqpError> {
    let span = publish_span(event);
    let trace = hookline_runtime::telemetry::continue_trace(&span, parent);
    let result = publish_with(state, event, trace)
        .instrument(span.clone())
        .await;
    record_outcome(&span, &result);
    result
}

/// The `ingest.publish` span of one event; its outcome is recorded later.
fn publish_span(event: &Event) -> tracing::Span {
    tracing::info_span!(
        "ingest.publish",
        otel.kind = "producer",
        hookline.tenant = %event.tenant,
        hookline.event_id = %event.id,
        hookline.event_type = %event.event_type,
        hookline.outcome = tracing::field::Empty,
    )
}

/// Records whether the publish of a span's event was confirmed.
fn record_outcome(span: &tracing::Span, result: &Result<(), AmqpError>) {
    let outcome = if result.is_ok() {
        "accepted"
    } else {
        "rejected"
    };
    span.record("hookline.outcome", outcome);
}

async fn publish_with(
    state: &AppState,
    event: &Event,
    trace: TraceParent,
) -> Result<(), AmqpError> {
    state
        .publisher
        .publish_confirmed(
            EVENTS_EXCHANGE,
            &event.event_type,
            &event.to_envelope_json(),
            event_properties(event, trace),
        )
        .await
}

/// An event's message properties: its id, and the trace it continues.
fn event_properties(event: &Event, trace: TraceParent) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        TRACEPARENT.into(),
        AMQPValue::LongString(trace.to_string().into()),
    );
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_message_id(event.id.clone().into())
        .with_headers(headers)
}

/// Publishes a batch's valid events in the batch's order (so a FIFO
/// subscription receives them in that order), one span each under the
/// producer's trace; one outcome per event, `None` for the invalid ones.
async fn publish_batch_in_order(
    state: &AppState,
    parsed: &[Result<Event, EventError>],
    parent: Option<TraceParent>,
) -> Vec<Option<Result<(), AmqpError>>> {
    let mut spans = Vec::new();
    let mut messages = Vec::new();
    for event in parsed.iter().flatten() {
        let span = publish_span(event);
        let trace = hookline_runtime::telemetry::continue_trace(&span, parent);
        messages.push(Outgoing {
            exchange: EVENTS_EXCHANGE,
            routing_key: &event.event_type,
            payload: event.to_envelope_json(),
            properties: event_properties(event, trace),
        });
        spans.push(span);
    }
    let mut results = state.publisher.publish_in_order(messages).await.into_iter();
    let mut spans = spans.into_iter();
    parsed
        .iter()
        .map(|event| {
            event.as_ref().ok()?;
            let result = results.next()?;
            if let Some(span) = spans.next() {
                record_outcome(&span, &result);
            }
            Some(result)
        })
        .collect()
}

/// Parses an envelope and checks its `data` against the catalogue: a
/// schema violation is an invalid event like any other, its message naming
/// the JSON path at fault.
fn parse(state: &AppState, body: &[u8], now: chrono::DateTime<Utc>) -> Result<Event, EventError> {
    let mut event = Event::parse(body, now, || ids::new_id("evt"))?;
    state
        .catalogue
        .current()
        .check(&event.event_type, &mut event.data)
        .map_err(|violation| EventError {
            code: SchemaViolation::CODE,
            message: violation.to_string(),
        })?;
    Ok(event)
}

fn parse_error(state: &AppState, e: EventError) -> Response {
    state.metrics.events.with_label_values(&["invalid"]).inc();
    error(StatusCode::BAD_REQUEST, e.code, e.message)
}

/// The answer for an accepted event: its id, given or generated.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The event's `id`; producers that let ingest generate it learn it here.
    pub id: String,
}

/// One event's result in a batch: its id, or why it was not published.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchResult {
    /// Published and confirmed.
    Accepted(Accepted),
    /// Invalid, or not published: retry only these.
    Refused(ErrorBody),
}

/// The answer to a batch: one result per event, in the order sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResults {
    /// As many as the batch held.
    pub results: Vec<BatchResult>,
}

/// Validates one event and publishes it; `202` only after the confirm.
#[utoipa::path(post, path = EVENTS, operation_id = "publishEvent",
    summary = "Publish one event; 202 only after the broker confirmed it",
    request_body = crate::openapi::EventFields,
    responses(
        (status = 202, description = "Accepted: the broker confirmed it", body = Accepted),
        (status = 400, description = "Invalid envelope (`code` names the field), or `data` against its type's schema (`schema_mismatch`, the message naming the JSON path)", body = ErrorBody),
        (status = 401, description = "Missing or wrong ingest token", body = ErrorBody),
        (status = 413, description = "Body over ingest.max_event_bytes", body = ErrorBody),
        (status = 503, description = "Broker unreachable or shutting down; nothing was published", body = ErrorBody),
    ))]
pub async fn publish_one(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let trace = request_trace(&headers);
    let started = Instant::now();
    let response = match (draining(&state), body) {
        (Some(response), _) => response,
        (None, Err(rejection)) => body_rejection(&state, rejection),
        (None, Ok(body)) => match parse(&state, &body, Utc::now()) {
            Err(e) => parse_error(&state, e),
            Ok(event) => match publish(&state, &event, trace).await {
                Ok(()) => {
                    state.metrics.events.with_label_values(&["accepted"]).inc();
                    (StatusCode::ACCEPTED, Json(Accepted { id: event.id })).into_response()
                }
                Err(e) => {
                    state.metrics.events.with_label_values(&["rejected"]).inc();
                    tracing::warn!(error = %e, "publish failed; answered 503");
                    unavailable(&e)
                }
            },
        },
    };
    state
        .metrics
        .request_seconds
        .with_label_values(&["/v1/events"])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Validates and publishes up to `max_batch_events`; one result per event,
/// in order.
#[utoipa::path(post, path = EVENTS_BATCH, operation_id = "publishEvents",
    summary = "Publish up to ingest.max_batch_events events; one result per event, in order",
    request_body = crate::openapi::BatchFields,
    responses(
        (status = 200, description = "One result per event; retry only the refused", body = BatchResults),
        (status = 400, description = "Not a batch, or not JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong ingest token", body = ErrorBody),
        (status = 413, description = "Body too large, or too many events", body = ErrorBody),
        (status = 503, description = "Shutting down; nothing was published", body = ErrorBody),
    ))]
pub async fn publish_batch(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let response = batch(&state, request_trace(&headers), body).await;
    state
        .metrics
        .request_seconds
        .with_label_values(&["/v1/events/batch"])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `{"events": [ … ]}`, each event left unparsed.
#[derive(serde::Deserialize)]
struct Batch<'a> {
    #[serde(borrow)]
    events: Vec<&'a serde_json::value::RawValue>,
}

/// The producer's trace context, when it sent a valid one: a producer's
/// own trace thus reaches the receiver's.
fn request_trace(headers: &HeaderMap) -> Option<TraceParent> {
    headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse)
}

/// `trace` is the producer's context: each event of the batch is a span
/// under it.
async fn batch(
    state: &AppState,
    trace: Option<TraceParent>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(response) = draining(state) {
        return response;
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return body_rejection(state, rejection),
    };
    // Borrowed: each event stays a slice of the body until it is parsed on
    // its own, so a batch never exists twice in memory as a JSON tree.
    let events = match serde_json::from_slice::<Batch<'_>>(&body) {
        Ok(batch) => batch.events,
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_batch",
                "the body must be {\"events\": [ … ]}",
            )
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body is not valid JSON: {e}"),
            )
        }
    };
    if events.len() > state.config.max_batch_events {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            format!(
                "a batch holds at most {} events; this one has {}",
                state.config.max_batch_events,
                events.len()
            ),
        );
    }
    let now = Utc::now();
    let parsed: Vec<Result<Event, EventError>> = events
        .into_iter()
        .map(|raw| parse(state, raw.get().as_bytes(), now))
        .collect();
    // All publishes go out together, in order; their confirms are awaited
    // together.
    let outcomes = publish_batch_in_order(state, &parsed, trace).await;
    let results: Vec<BatchResult> = parsed
        .iter()
        .zip(outcomes)
        .map(|(parsed, outcome)| match (parsed, outcome) {
            (Ok(event), Some(Ok(()))) => {
                state.metrics.events.with_label_values(&["accepted"]).inc();
                BatchResult::Accepted(Accepted {
                    id: event.id.clone(),
                })
            }
            (Ok(_), Some(Err(e))) => {
                state.metrics.events.with_label_values(&["rejected"]).inc();
                BatchResult::Refused(ErrorBody::new(
                    "unavailable",
                    format!("not published: {e}; retry this event"),
                ))
            }
            (Err(e), _) => {
                state.metrics.events.with_label_values(&["invalid"]).inc();
                BatchResult::Refused(ErrorBody::new(e.code, e.message.clone()))
            }
            (Ok(_), None) => BatchResult::Refused(ErrorBody::new("internal", "not attempted")),
        })
        .collect();
    (StatusCode::OK, Json(BatchResults { results })).into_response()
}
