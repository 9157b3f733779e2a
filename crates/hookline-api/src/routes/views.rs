//! The JSON shapes the contract fixes, rendered from stored rows.

use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::BTreeMap;

use hookline_model::sealed::{self, Keyring, OpenError, SealError};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::store::dead_letters::DeadLetterRow;
use crate::store::subscriptions::SubscriptionRow;

/// RFC 3339 in UTC with milliseconds, as every timestamp of the API.
pub(super) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A subscription; `secret` is shown only where the contract shows it.
/// Static headers are opened for the reply: the tenant wrote them and may
/// read them back.
pub(super) fn subscription(
    keyring: &Keyring,
    row: &SubscriptionRow,
    secret: Option<&str>,
) -> Result<Value, ApiError> {
    let mut value = json!({
        "id": row.id,
        "name": row.name,
        "url": row.url,
        "event_types": row.event_types,
        "enabled": row.enabled,
        "signature": row.signature,
        "headers": open_headers(keyring, row)?,
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
    Ok(value)
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

/// A stored value that no configured key opens: `api.secret_key` changed
/// without its predecessor in `api.previous_secret_keys`, or the row is
/// corrupt. An operator's problem, hence a 500 that says so.
fn unopenable(error: OpenError) -> ApiError {
    tracing::error!(%error, "a stored subscription secret or header does not open");
    ApiError::Internal(format!("a stored secret cannot be opened: {error}"))
}

fn unsealable(error: SealError) -> ApiError {
    ApiError::Internal(error.to_string())
}

/// Opens the current sealed secret of `row`.
pub(super) fn open_secret(keyring: &Keyring, row: &SubscriptionRow) -> Result<String, ApiError> {
    keyring
        .open_string(&sealed::subscription_secret(&row.id), &row.secret_sealed)
        .map_err(unopenable)
}

/// Seals a signing secret for the subscription `id`.
pub(super) fn seal_secret(keyring: &Keyring, id: &str, secret: &str) -> Result<Vec<u8>, ApiError> {
    keyring
        .seal(&sealed::subscription_secret(id), secret.as_bytes())
        .map_err(unsealable)
}

/// The static headers of `row` as an object, opened (or as a row written
/// before sealing holds them).
pub(super) fn open_headers(keyring: &Keyring, row: &SubscriptionRow) -> Result<Value, ApiError> {
    let Some(sealed_headers) = &row.headers_sealed else {
        return Ok(row.headers.clone());
    };
    let json = keyring
        .open(&sealed::subscription_headers(&row.id), sealed_headers)
        .map_err(unopenable)?;
    serde_json::from_slice(&json).map_err(|_| unopenable(OpenError::Corrupt))
}

/// Seals static headers for the subscription `id`; `None` when there are
/// none.
pub(super) fn seal_headers(
    keyring: &Keyring,
    id: &str,
    headers: &BTreeMap<String, String>,
) -> Result<Option<Vec<u8>>, ApiError> {
    if headers.is_empty() {
        return Ok(None);
    }
    let json = serde_json::to_vec(headers).map_err(|e| ApiError::Internal(e.to_string()))?;
    keyring
        .seal(&sealed::subscription_headers(id), &json)
        .map(Some)
        .map_err(unsealable)
}
