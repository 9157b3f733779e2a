//! Delivery tasks the api builds itself: the sample of a test send, and the
//! refresh of a replayed task from its subscription's current settings.

use chrono::{DateTime, SecondsFormat, Utc};
use hookline_model::ids;
use hookline_model::sealed::Keyring;
use hookline_proto::{DeliveryTask, SubscriptionShape, SCHEMA_VERSION};
use hookline_render::{DeliveryPlan, FilterInput, Limits};
use serde_json::{json, Value};

use super::views;
use crate::error::ApiError;
use crate::store::subscriptions::SubscriptionRow;

/// The subscription as it is now, for tasks and for the control message
/// that announces the change (`hookline_store::shape`, the one rule fanout
/// follows too). A row not yet re-sealed has its clear headers sealed for
/// the trip here: the api holds the key, fanout does not.
pub(crate) fn shape(
    row: &SubscriptionRow,
    keyring: &Keyring,
    now: DateTime<Utc>,
) -> Result<SubscriptionShape, ApiError> {
    let mut built =
        hookline_store::shape(row, now).map_err(|e| ApiError::Internal(e.to_string()))?;
    if !built.legacy_headers.is_empty() {
        built.shape.sealed_headers = views::seal_headers(keyring, &row.id, &built.legacy_headers)?
            .unwrap_or_default()
            .into();
    }
    Ok(built.shape)
}

/// Points `task` at the subscription as it is now: a replay goes where the
/// customer has since moved it, signed with the secret they hold now.
pub(super) fn refresh(
    task: &mut DeliveryTask,
    row: &SubscriptionRow,
    keyring: &Keyring,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    task.reshape(&shape(row, keyring, now)?, row.revision.max(0) as u64);
    // A task parked because its template failed carries the standard body:
    // the replay renders it with the template as it is now.
    if !task.render_error.is_empty() {
        task.render_error.clear();
        let plan = DeliveryPlan::from_stored(&row.options, Limits::default())
            .map_err(|e| ApiError::Internal(format!("subscription {}: {e}", row.id)))?;
        let envelope: Value = serde_json::from_slice(&task.body).unwrap_or(Value::Null);
        let standard = task.body.clone();
        hookline_store::apply_plan(task, Some(&plan), &envelope, &standard);
    }
    Ok(())
}

/// The sample delivery of `POST …/test`: a fresh `evt_test_…` event of
/// `event_type`, marked `"test": true`, as attempt 1. Its `data` is the
/// catalogue's `example` for the type when there is one, so the receiver
/// sees the shape real events will have. The subscription's method, body
/// and filter apply as to any event: a sample its filter rejects is a
/// `422 filtered_out`, not a silent success.
pub(super) fn test_task(
    row: &SubscriptionRow,
    event_type: &str,
    example: Option<Value>,
    keyring: &Keyring,
    now: DateTime<Utc>,
) -> Result<DeliveryTask, ApiError> {
    let data = example.unwrap_or_else(
        || json!({ "sample": true, "message": "This is a test delivery from Hookline" }),
    );
    let event_id = format!("evt_test_{}", ulid::Ulid::new());
    let body = json!({
        "type": event_type,
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "tenant": row.tenant,
        "id": event_id,
        "data": data,
        "test": true,
    });
    let plan = DeliveryPlan::from_stored(&row.options, Limits::default())
        .map_err(|e| ApiError::Internal(format!("subscription {}: {e}", row.id)))?;
    if !plan.admits(&FilterInput::new(&body)).unwrap_or(false) {
        return Err(ApiError::invalid(
            "filtered_out",
            "filter: the subscription's filter is not true for this sample, so nothing was sent",
        ));
    }
    let standard = bytes::Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    let mut task = DeliveryTask {
        schema_version: SCHEMA_VERSION,
        delivery_id: ids::delivery_id(&row.tenant, &event_id, &row.id),
        tenant: row.tenant.clone(),
        event_id,
        event_type: event_type.to_string(),
        occurred_at_ms: now.timestamp_millis(),
        subscription_id: row.id.clone(),
        attempt: 1,
        test: true,
        ..DeliveryTask::default()
    };
    hookline_store::apply_plan(&mut task, Some(&plan), &body, &standard);
    refresh(&mut task, row, keyring, now)?;
    Ok(task)
}
