//! `POST …/{id}/preview`: the request a subscription would receive for an
//! event, built by the same code the deliverer sends with
//! (`hookline_send::request::prepare`), so a customer can inspect a
//! template's output before going live. Nothing is sent or recorded.

use hookline_model::trace::TraceParent;
use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use hookline_model::envelope::Event;
use hookline_send::request::{prepare, PrepareError};
use serde::Serialize;
use serde_json::{Map, Value};

use super::openapi::PREVIEW;
use super::task;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::store::{event_types, subscriptions};
use crate::validate;

/// The request as it would go on the wire.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PreviewView {
    /// The HTTP method.
    #[schema(example = "POST")]
    method: String,
    /// The URL, with a `GET`'s fields in its query.
    #[schema(example = "https://crm.example.com/hooks/leads")]
    url: String,
    /// Every header Hookline sets, the signature included (computed now,
    /// for this body), and the static headers.
    #[schema(value_type = Object, example = json!({
        "User-Agent": "Hookline/0.1.0", "Content-Type": "application/json",
        "webhook-id": "dlv_…", "webhook-timestamp": "1764936000",
        "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="
    }))]
    headers: BTreeMap<String, String>,
    /// The exact text of the body (empty for `GET`).
    #[schema(example = r#"{"email":"ana@example.com","amount":120}"#)]
    body: String,
    /// Whether the subscription's filter rejects this event: then nothing
    /// would be sent at all.
    filtered_out: bool,
}

/// `POST …/{id}/preview`: the exact method, URL, headers and body the
/// subscription would receive for an event of `event_type` with `data`
/// (the catalogue's example when absent, else a sample). `id` and
/// `occurred_at` fix the event's id and `occurred_at`, so a preview can be
/// compared byte for byte with a real delivery.
#[utoipa::path(post, path = PREVIEW, operation_id = "previewDelivery", summary = "Show the exact request an event would produce, without sending it",
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "The request that would be sent", body = PreviewView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "Invalid field value, or the body template failed for this event (`template_failed`); `message` names the field", body = ErrorBody),
    ))]
pub(super) async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson,
) -> Result<Json<PreviewView>, ApiError> {
    caller.check_tenant(&tenant)?;
    let event_type = validate::event_type(body.get("event_type"))?;
    let pool = state.db.pool()?;
    let row = subscriptions::get(pool, &tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription", &id))?;
    let data = match body.get("data") {
        Some(Value::Object(data)) => data.clone(),
        Some(Value::Null) | None => match event_types::get(pool, &event_type).await? {
            Some(entry) => match entry.example {
                Some(Value::Object(example)) => example,
                _ => task::sample_data(),
            },
            None => task::sample_data(),
        },
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_data",
                "data must be a JSON object",
            ))
        }
    };
    let now = Utc::now();
    let mut envelope = Map::new();
    envelope.insert("tenant".into(), Value::String(tenant.clone()));
    envelope.insert("type".into(), Value::String(event_type));
    envelope.insert("data".into(), Value::Object(data));
    for field in ["id", "occurred_at"] {
        if let Some(value) = body.get(field).filter(|v| !v.is_null()) {
            envelope.insert(field.into(), value.clone());
        }
    }
    let event = Event::from_value(Value::Object(envelope), now, || {
        format!("evt_preview_{}", ulid::Ulid::new())
    })
    .map_err(|e| ApiError::invalid(e.code, e.message))?;
    let (task, admitted) = task::event_task(&row, event, false, state.keyring(), now)?;
    let prepared = prepare(
        state.keyring(),
        &task,
        now.timestamp_millis(),
        TraceParent::new_root(),
    )
    .map_err(|e| match e {
        PrepareError::Unrenderable(reason) => ApiError::invalid(
            "template_failed",
            format!("body.template: the template fails for this event: {reason}"),
        ),
        other => ApiError::Internal(format!("subscription {id}: {other}")),
    })?;
    Ok(Json(PreviewView {
        method: prepared.method.as_str().to_string(),
        url: prepared.url.to_string(),
        headers: prepared.headers.into_iter().collect(),
        body: String::from_utf8_lossy(&prepared.body).into_owned(),
        filtered_out: !admitted,
    }))
}

/// The body of a preview, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct PreviewRequest {
    /// The event's type.
    #[schema(example = "lead.created")]
    event_type: String,
    /// The event's `data`; the catalogue's `example` for the type when
    /// absent, else a sample.
    #[schema(value_type = Option<Object>, example = json!({"contact": {"email": "ana@example.com"}, "amount": 120}))]
    data: Option<Value>,
    /// The event's id; a fresh `evt_preview_…` when absent.
    #[schema(example = "evt_01JF3W7ZK3")]
    id: Option<String>,
    /// When the event happened (RFC 3339); now when absent.
    #[schema(example = "2026-12-05T10:00:00.123Z")]
    occurred_at: Option<String>,
}
