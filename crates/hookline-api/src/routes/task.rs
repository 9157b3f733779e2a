//! Delivery tasks the api builds itself: the sample of a test send, and the
//! refresh of a replayed task from its subscription's current settings.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use hookline_model::ids;
use hookline_model::sealed::Keyring;
use hookline_proto::signature::to_proto;
use hookline_proto::{DeliveryTask, SubscriptionShape, SCHEMA_VERSION};
use hookline_signature::SignatureScheme;
use serde_json::json;

use super::views;
use crate::error::ApiError;
use crate::store::subscriptions::SubscriptionRow;

/// The subscription as it is now, for tasks and for the control message
/// that announces the change: URL, scheme, sealed secrets (current, and the
/// previous one during its overlap) and sealed static headers.
pub(crate) fn shape(
    row: &SubscriptionRow,
    keyring: &Keyring,
    now: DateTime<Utc>,
) -> Result<SubscriptionShape, ApiError> {
    let scheme: SignatureScheme = serde_json::from_value(row.signature.clone()).unwrap_or_default();
    let sealed_headers = match &row.headers_sealed {
        Some(sealed) => sealed.clone().into(),
        // A row not yet re-sealed: seal its clear headers for the trip.
        None => {
            let headers: BTreeMap<String, String> =
                serde_json::from_value(row.headers.clone()).unwrap_or_default();
            views::seal_headers(keyring, &row.id, &headers)?
                .unwrap_or_default()
                .into()
        }
    };
    Ok(SubscriptionShape {
        url: row.url.clone(),
        signature: Some(to_proto(&scheme)),
        sealed_secrets: views::sealed_signing_secrets(row, now),
        sealed_headers,
    })
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
    Ok(())
}

/// The sample delivery of `POST …/test`: a fresh `evt_test_…` event of
/// `event_type`, marked `"test": true`, as attempt 1.
pub(super) fn test_task(
    row: &SubscriptionRow,
    event_type: &str,
    keyring: &Keyring,
    now: DateTime<Utc>,
) -> Result<DeliveryTask, ApiError> {
    let event_id = format!("evt_test_{}", ulid::Ulid::new());
    let body = json!({
        "type": event_type,
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "tenant": row.tenant,
        "id": event_id,
        "data": { "sample": true, "message": "This is a test delivery from Hookline" },
        "test": true,
    });
    let mut task = DeliveryTask {
        schema_version: SCHEMA_VERSION,
        delivery_id: ids::delivery_id(&row.tenant, &event_id, &row.id),
        tenant: row.tenant.clone(),
        event_id,
        event_type: event_type.to_string(),
        occurred_at_ms: now.timestamp_millis(),
        body: serde_json::to_vec(&body).unwrap_or_default().into(),
        subscription_id: row.id.clone(),
        attempt: 1,
        test: true,
        ..DeliveryTask::default()
    };
    refresh(&mut task, row, keyring, now)?;
    Ok(task)
}
