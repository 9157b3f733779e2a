//! The JSON shapes the contract fixes, rendered from stored rows.

use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::BTreeMap;

use hookline_model::sealed::{self, Keyring, OpenError, SealError};
use hookline_render::DeliveryOptions;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::store::dead_letters::DeadLetterRow;
use crate::store::subscriptions::SubscriptionRow;

/// RFC 3339 in UTC with milliseconds, as every timestamp of the API.
pub(super) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A subscription as the API shows it; the OpenAPI schema is derived from
/// this struct, so the document cannot drift from what is sent.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Subscription)]
pub(crate) struct SubscriptionView {
    /// `sub_…`.
    id: String,
    /// A label for people.
    name: String,
    /// Where deliveries go.
    url: String,
    /// Exact types or patterns such as `lead.*`.
    event_types: Vec<String>,
    /// A disabled subscription receives nothing.
    enabled: bool,
    /// How deliveries are signed (`{"scheme": …}` and its options).
    #[schema(value_type = Object)]
    signature: Value,
    /// Static headers added to every delivery.
    #[schema(value_type = BTreeMap<String, String>)]
    headers: Value,
    /// The HTTP method of its deliveries.
    #[schema(example = "POST")]
    method: String,
    /// The body's format and template (`{"format": "json"}` is the
    /// standard body).
    #[schema(value_type = Object, example = json!({"format": "json"}))]
    body: Value,
    /// The CEL filter, if any.
    #[schema(example = "data.amount > 100")]
    filter: Option<String>,
    /// `none`, or `challenge`: nothing is delivered until the endpoint
    /// echoes a challenge's token.
    #[schema(example = "challenge")]
    verification: &'static str,
    /// False while a challenge waits for its answer; always true with
    /// `verification: "none"`.
    verified: bool,
    /// `none`, or `fifo`: one delivery at a time, in match order.
    #[schema(example = "none")]
    ordering: &'static str,
    /// `{"per_second": n}`, or null for no limit.
    #[schema(value_type = Option<Object>, example = json!({"per_second": 20}))]
    rate_limit: Option<Value>,
    /// `{"max_events": n, "max_wait": "2s"}`, or null: one request per
    /// event.
    #[schema(value_type = Option<Object>, example = json!({"max_events": 50, "max_wait": "2s"}))]
    batch: Option<Value>,
    /// RFC 3339 UTC with milliseconds.
    created_at: String,
    /// RFC 3339 UTC with milliseconds.
    updated_at: String,
    /// The last attempt's end, if any.
    last_attempt_at: Option<String>,
    /// The last attempt's status.
    last_status: Option<String>,
    /// The last attempt's HTTP status.
    last_response_status: Option<i32>,
    /// The last attempt's error.
    last_error: Option<String>,
    /// The signing secret, only where the contract shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

/// A subscription; `secret` is shown only where the contract shows it.
/// Static headers are opened for the reply: the tenant wrote them and may
/// read them back.
pub(super) fn subscription(
    keyring: &Keyring,
    row: &SubscriptionRow,
    secret: Option<&str>,
) -> Result<SubscriptionView, ApiError> {
    let options = DeliveryOptions::from_stored(&row.options)
        .map_err(|e| ApiError::Internal(format!("subscription {}: stored options: {e}", row.id)))?;
    let verification = if options.wants_challenge() {
        "challenge"
    } else {
        "none"
    };
    Ok(SubscriptionView {
        id: row.id.clone(),
        name: row.name.clone(),
        url: row.url.clone(),
        event_types: row.event_types.clone(),
        enabled: row.enabled,
        signature: row.signature.clone(),
        headers: open_headers(keyring, row)?,
        method: options.method.unwrap_or_default().as_str().to_string(),
        body: serde_json::to_value(options.body.unwrap_or_default()).unwrap_or(Value::Null),
        verification,
        verified: row.verified,
        ordering: options.ordering.unwrap_or_default().as_str(),
        rate_limit: options
            .rate_limit
            .map(|limit| serde_json::json!({"per_second": limit.per_second})),
        batch: options
            .batch
            .map(|b| serde_json::json!({"max_events": b.max_events, "max_wait": b.max_wait})),
        filter: options.filter,
        created_at: timestamp(row.created_at),
        updated_at: timestamp(row.updated_at),
        last_attempt_at: row.last_attempt_at.map(timestamp),
        last_status: row.last_status.clone(),
        last_response_status: row.last_response_status,
        last_error: row.last_error.clone(),
        secret: secret.map(str::to_string),
    })
}

/// A parked delivery, as the dead-letter list shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeadLetter)]
pub(crate) struct DeadLetterView {
    /// `dl_…`, the id to replay.
    id: String,
    /// The event that was not delivered.
    event_id: String,
    /// The event's type.
    event_type: String,
    /// The subscription it was for; it may have been deleted since.
    subscription_id: String,
    /// Attempts made before it was parked.
    attempts: i32,
    /// The last attempt's HTTP status, if an answer came.
    last_response_status: Option<i32>,
    /// The last attempt's error.
    last_error: Option<String>,
    /// When it was parked, RFC 3339 UTC with milliseconds.
    dead_at: String,
}

/// A dead letter.
pub(super) fn dead_letter(row: &DeadLetterRow) -> DeadLetterView {
    DeadLetterView {
        id: row.id.clone(),
        event_id: row.event_id.clone(),
        event_type: row.event_type.clone(),
        subscription_id: row.subscription_id.clone(),
        attempts: row.attempts,
        last_response_status: row.last_response_status,
        last_error: row.last_error.clone(),
        dead_at: timestamp(row.dead_at),
    }
}

/// Every list of the API: one page and the cursor of the next, `null` on
/// the last page.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct List<T: ToSchema> {
    /// The items of this page, newest first where the route says so.
    data: Vec<T>,
    /// Pass as `?cursor=` for the next page.
    next_cursor: Option<String>,
}

/// Every list: `{"data": […], "next_cursor": "…" | null}`.
pub(super) fn list<T: ToSchema>(data: Vec<T>, next_cursor: Option<String>) -> List<T> {
    List { data, next_cursor }
}

/// A new API key, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IssuedKey {
    /// `key_…`, to revoke it.
    pub(super) id: String,
    /// The bearer token; only its hash is stored.
    pub(super) key: String,
}

/// The answer to a replay: the task is confirmed by the broker.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Replayed {
    /// The dead letter's id.
    pub(super) id: String,
    /// Always `replayed`.
    pub(super) status: &'static str,
}

/// A stored value that no configured key opens: `api.secret_key` changed
/// without its predecessor in `api.previous_secret_keys`, or the row is
/// corrupt. An operator's problem, hence a 500 that says so.
pub(super) fn unopenable(error: OpenError) -> ApiError {
    tracing::error!(%error, "a stored subscription secret or header does not open");
    ApiError::Internal(format!("a stored secret cannot be opened: {error}"))
}

pub(super) fn unsealable(error: SealError) -> ApiError {
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
