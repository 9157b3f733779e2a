//! Attempt records: the protobuf that feeds history, and the contract's
//! JSON shape used on `hookline.outcomes` and by the api.

use chrono::{DateTime, SecondsFormat, Utc};
use hookline_model::retry::Classification;
use hookline_proto::{AttemptRecord, AttemptStatus, DeliveryTask, SCHEMA_VERSION};

use crate::sender::SendResult;

/// The record of one attempt of `task`, with its final status.
pub fn attempt_record(
    task: &DeliveryTask,
    result: &SendResult,
    status: AttemptStatus,
    at: DateTime<Utc>,
) -> AttemptRecord {
    AttemptRecord {
        schema_version: SCHEMA_VERSION,
        id: hookline_model::ids::new_id("att"),
        delivery_id: task.delivery_id.clone(),
        tenant: task.tenant.clone(),
        event_id: task.event_id.clone(),
        event_type: task.event_type.clone(),
        subscription_id: task.subscription_id.clone(),
        attempt: task.attempt.max(1),
        at_ms: at.timestamp_millis(),
        status: status as i32,
        response_status: result.response_status.map(u32::from).unwrap_or(0),
        duration_ms: result.duration.as_millis().min(u32::MAX as u128) as u32,
        error: result.error.clone().unwrap_or_default(),
        gone: result.classification == Classification::Gone,
        test: task.test,
        traceparent: String::new(),
        challenge: !task.challenge_token.is_empty(),
        challenge_echoed: false,
        batch_id: String::new(),
    }
}

/// `succeeded`, `failed` or `dead`.
pub fn status_name(status: AttemptStatus) -> &'static str {
    match status {
        AttemptStatus::Succeeded => "succeeded",
        AttemptStatus::Dead => "dead",
        AttemptStatus::Failed | AttemptStatus::Unspecified => "failed",
    }
}

/// The contract's attempt JSON, typed so that the api's OpenAPI document is
/// generated from the very struct that is serialised.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Attempt))]
pub struct AttemptView {
    /// `att_…`.
    pub id: String,
    /// The event this attempt delivered.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The subscription it was sent to.
    pub subscription_id: String,
    /// 1 for the first try; retries count up, a replay starts again at 1.
    pub attempt: u32,
    /// When the attempt ended: RFC 3339 UTC with milliseconds.
    pub at: String,
    /// `succeeded`, `failed` or `dead`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^(succeeded|failed|dead)$"))]
    pub status: &'static str,
    /// The receiver's HTTP status; null when no answer came.
    pub response_status: Option<u32>,
    /// From the start of the request to the end of the answer.
    pub duration_ms: u32,
    /// What went wrong, in a line; null on success.
    pub error: Option<String>,
    /// The `webhook-id` of the batch that carried this event (`batch`
    /// option); absent when the event was sent alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
}

/// The contract's attempt JSON of `record`.
pub fn attempt_view(record: &AttemptRecord) -> AttemptView {
    let at = DateTime::<Utc>::from_timestamp_millis(record.at_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    AttemptView {
        id: record.id.clone(),
        event_id: record.event_id.clone(),
        event_type: record.event_type.clone(),
        subscription_id: record.subscription_id.clone(),
        attempt: record.attempt,
        at,
        status: status_name(record.status()),
        response_status: (record.response_status != 0).then_some(record.response_status),
        duration_ms: record.duration_ms,
        error: (!record.error.is_empty()).then(|| record.error.clone()),
        batch_id: (!record.batch_id.is_empty()).then(|| record.batch_id.clone()),
    }
}
