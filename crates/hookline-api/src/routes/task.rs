//! Delivery tasks the api builds itself: the sample of a test send, a
//! verification challenge, and the refresh of a replayed task from its
//! subscription's current settings.

use chrono::{DateTime, Utc};
use hookline_model::envelope::Event;
use hookline_model::ids;
use hookline_model::sealed::Keyring;
use hookline_proto::{DeliveryTask, SubscriptionShape, SCHEMA_VERSION};
use hookline_render::{DeliveryPlan, FilterInput, Limits};
use serde_json::{Map, Value};

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

/// The delivery `event` would make to `row` as attempt 1, built by the
/// rules fanout follows (the standard body, then the subscription's plan),
/// and whether the subscription's filter admits it. `test` marks the body
/// `"test": true`. A batching subscription gets it as a batch of one.
pub(super) fn event_task(
    row: &SubscriptionRow,
    event: Event,
    test: bool,
    keyring: &Keyring,
    now: DateTime<Utc>,
) -> Result<(DeliveryTask, bool), ApiError> {
    let body = event.delivery_value(test);
    let plan = DeliveryPlan::from_stored(&row.options, Limits::default())
        .map_err(|e| ApiError::Internal(format!("subscription {}: {e}", row.id)))?;
    let admitted = plan.admits(&FilterInput::new(&body)).unwrap_or(false);
    let standard = bytes::Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    let mut task = DeliveryTask {
        schema_version: SCHEMA_VERSION,
        delivery_id: ids::delivery_id(&row.tenant, &event.id, &row.id),
        tenant: row.tenant.clone(),
        event_id: event.id,
        event_type: event.event_type,
        occurred_at_ms: event.occurred_at.timestamp_millis(),
        subscription_id: row.id.clone(),
        attempt: 1,
        test,
        ..DeliveryTask::default()
    };
    hookline_store::apply_plan(&mut task, Some(&plan), &body, &standard);
    if row
        .options
        .get("batch")
        .is_some_and(|batch| !batch.is_null())
        && task.render_error.is_empty()
    {
        hookline_send::batch::alone(&mut task);
    }
    refresh(&mut task, row, keyring, now)?;
    Ok((task, admitted))
}

/// The sample delivery of `POST …/test`: a fresh `evt_test_…` event of
/// `event_type`, marked `"test": true`. Its `data` is the catalogue's
/// `example` for the type when there is one, so the receiver sees the
/// shape real events will have. A sample the subscription's filter rejects
/// is a `422 filtered_out`, not a silent success.
pub(super) fn test_task(
    row: &SubscriptionRow,
    event_type: &str,
    example: Option<Value>,
    keyring: &Keyring,
    now: DateTime<Utc>,
) -> Result<DeliveryTask, ApiError> {
    let data = match example {
        Some(Value::Object(data)) => data,
        _ => sample_data(),
    };
    let event = Event {
        id: format!("evt_test_{}", ulid::Ulid::new()),
        tenant: row.tenant.clone(),
        event_type: event_type.to_string(),
        occurred_at: now,
        data,
    };
    let (task, admitted) = event_task(row, event, true, keyring, now)?;
    if !admitted {
        return Err(ApiError::invalid(
            "filtered_out",
            "filter: the subscription's filter is not true for this sample, so nothing was sent",
        ));
    }
    Ok(task)
}

/// A verification challenge for `row`: the standard body of a
/// `webhook.verification` event whose `data` is `{"token"}`, sent as a
/// plain JSON `POST` whatever the subscription's method, template or
/// filter (the endpoint must be able to read it), and signed like every
/// delivery.
pub(super) fn challenge_task(
    row: &SubscriptionRow,
    event_id: &str,
    token: &str,
    keyring: &Keyring,
    now: DateTime<Utc>,
) -> Result<DeliveryTask, ApiError> {
    let mut data = Map::new();
    data.insert("token".into(), Value::String(token.to_string()));
    let event = Event {
        id: event_id.to_string(),
        tenant: row.tenant.clone(),
        event_type: hookline_model::verification::EVENT_TYPE.to_string(),
        occurred_at: now,
        data,
    };
    let body = serde_json::to_vec(&event.delivery_value(false)).unwrap_or_default();
    let mut task = DeliveryTask {
        schema_version: SCHEMA_VERSION,
        delivery_id: ids::delivery_id(&row.tenant, event_id, &row.id),
        tenant: row.tenant.clone(),
        event_id: event.id,
        event_type: event.event_type,
        occurred_at_ms: now.timestamp_millis(),
        body: body.into(),
        subscription_id: row.id.clone(),
        attempt: 1,
        challenge_token: token.to_string(),
        ..DeliveryTask::default()
    };
    refresh(&mut task, row, keyring, now)?;
    Ok(task)
}

/// The `data` of a sample when the catalogue has no example for its type.
pub(super) fn sample_data() -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("sample".into(), Value::Bool(true));
    data.insert(
        "message".into(),
        Value::String("This is a test delivery from Hookline".into()),
    );
    data
}
