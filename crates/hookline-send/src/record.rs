//! Attempt records: the protobuf that feeds history, and the contract's
//! JSON shape used on `hookline.outcomes` and by the api.

use chrono::{DateTime, SecondsFormat, Utc};
use hookline_model::retry::Classification;
use hookline_proto::{AttemptRecord, AttemptStatus, DeliveryTask, SCHEMA_VERSION};
use serde_json::{json, Value};

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

/// The contract's attempt JSON.
pub fn attempt_json(record: &AttemptRecord) -> Value {
    let at = DateTime::<Utc>::from_timestamp_millis(record.at_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    json!({
        "id": record.id,
        "event_id": record.event_id,
        "event_type": record.event_type,
        "subscription_id": record.subscription_id,
        "attempt": record.attempt,
        "at": at,
        "status": status_name(record.status()),
        "response_status": (record.response_status != 0).then_some(record.response_status),
        "duration_ms": record.duration_ms,
        "error": (!record.error.is_empty()).then_some(record.error.as_str()),
    })
}
