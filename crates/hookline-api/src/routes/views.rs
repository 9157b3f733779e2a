//! The JSON shapes the contract fixes, rendered from stored rows.

use chrono::{DateTime, SecondsFormat, Utc};
use hookline_model::sealed;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::store::dead_letters::DeadLetterRow;
use crate::store::subscriptions::SubscriptionRow;

/// RFC 3339 in UTC with milliseconds, as every timestamp of the API.
pub(super) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A subscription; `secret` is shown only where the contract shows it.
pub(super) fn subscription(row: &SubscriptionRow, secret: Option<&str>) -> Value {
    let mut value = json!({
        "id": row.id,
        "name": row.name,
        "url": row.url,
        "event_types": row.event_types,
        "enabled": row.enabled,
        "signature": row.signature,
        "headers": row.headers,
        "created_at": timestamp(row.created_at),
        "updated_at": timestamp(row.updated_at),
        "last_attempt_at": row.last_attempt_at.map(timestamp),
        "last_status": row.last_status,
        "last_response_status": row.last_response_status,
        "last_error": row.last_error,
    });
    if let Some(secret) = secret {
        value["secret"] = Value::String(secret.to_string());
    }
    value
}

/// A dead letter.
pub(super) fn dead_letter(row: &DeadLetterRow) -> Value {
    json!({
        "id": row.id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "subscription_id": row.subscription_id,
        "attempts": row.attempts,
        "last_response_status": row.last_response_status,
        "last_error": row.last_error,
        "dead_at": timestamp(row.dead_at),
    })
}

/// Every list: `{"data": […], "next_cursor": "…" | null}`.
pub(super) fn list(data: Vec<Value>, next_cursor: Option<String>) -> Value {
    json!({ "data": data, "next_cursor": next_cursor })
}

/// Opens a sealed secret. Failing means `api.secret_key` changed or the row
/// is corrupt: an operator's problem, hence a 500 that says so.
pub(super) fn open_secret(secret_key: &str, sealed_secret: &[u8]) -> Result<String, ApiError> {
    sealed::open(secret_key, sealed_secret).map_err(|e| {
        tracing::error!(error = %e, "a stored subscription secret does not open");
        ApiError::Internal(
            "a stored secret cannot be opened with the configured api.secret_key".into(),
        )
    })
}

/// The secrets a delivery is signed with now: the current one, and the
/// rotated-out one while its overlap lasts (newest first).
pub(super) fn signing_secrets(
    secret_key: &str,
    row: &SubscriptionRow,
    now: DateTime<Utc>,
) -> Result<Vec<String>, ApiError> {
    let mut secrets = vec![open_secret(secret_key, &row.secret_sealed)?];
    if let (Some(previous), Some(expires)) =
        (&row.previous_secret_sealed, row.previous_secret_expires_at)
    {
        if expires > now {
            secrets.push(open_secret(secret_key, previous)?);
        }
    }
    Ok(secrets)
}
