//! The event type catalogue: the admin defines the product's events (with a
//! JSON Schema for their `data` and an example), and any valid token lists
//! them, so a settings page can offer them as checkboxes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use hookline_model::envelope::is_valid_event_type;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::openapi::{EVENT_TYPE, EVENT_TYPES};
use super::views::{self, List};
use crate::auth::Caller;
use crate::control::Announcement;
use crate::cursor::Page;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::store::event_types::{self, EventTypeRow};

/// Longest description kept, in characters.
const MAX_DESCRIPTION_CHARS: usize = 2_000;

/// A catalogue entry as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EventType)]
pub(crate) struct EventTypeView {
    /// The event type, such as `lead.created`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    name: String,
    /// For people choosing events.
    #[schema(example = "A lead was added")]
    description: String,
    /// JSON Schema of the events' `data`; null when any object is accepted.
    #[schema(value_type = Option<Object>)]
    schema: Option<Value>,
    /// A typical `data`, sent by test sends and previews.
    #[schema(value_type = Option<Object>)]
    example: Option<Value>,
    /// RFC 3339 UTC with milliseconds.
    updated_at: String,
}

fn view(row: EventTypeRow) -> EventTypeView {
    EventTypeView {
        updated_at: views::timestamp(row.updated_at),
        name: row.name,
        description: row.description,
        schema: row.schema,
        example: row.example,
    }
}

/// The body of a `PUT`, for the OpenAPI document.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct EventTypeFields {
    /// Up to 2,000 characters.
    description: Option<String>,
    /// A JSON Schema object; it must compile.
    #[schema(value_type = Option<Object>, example = json!({
        "type": "object",
        "required": ["contact"],
        "properties": {"contact": {"type": "object", "required": ["email"],
            "properties": {"email": {"type": "string"}}}}
    }))]
    schema: Option<()>,
    /// An object; with a schema, it must satisfy it.
    #[schema(value_type = Option<Object>, example = json!({
        "contact": {"email": "ana@example.com", "first_name": "Ana"}
    }))]
    example: Option<()>,
}

fn invalid_name(name: &str) -> Result<(), ApiError> {
    if is_valid_event_type(name) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "invalid_event_type",
            "the event type must be dot-separated segments of [a-z0-9_], e.g. lead.created",
        ))
    }
}

/// Validates a `PUT` body into a row: the schema must compile and the
/// example must satisfy it, so a catalogue entry never refuses its own
/// sample.
fn entry(name: String, body: &serde_json::Map<String, Value>) -> Result<EventTypeRow, ApiError> {
    let description = match body.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) if text.chars().count() <= MAX_DESCRIPTION_CHARS => text.clone(),
        Some(Value::String(_)) => {
            return Err(ApiError::invalid(
                "invalid_description",
                format!("description is longer than {MAX_DESCRIPTION_CHARS} characters"),
            ))
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_description",
                "description must be a string",
            ))
        }
    };
    let schema = match body.get("schema") {
        None | Some(Value::Null) => None,
        Some(schema @ (Value::Object(_) | Value::Bool(_))) => {
            jsonschema::validator_for(schema).map_err(|e| {
                ApiError::invalid(
                    "invalid_schema",
                    format!("schema is not a valid JSON Schema: {e}"),
                )
            })?;
            Some(schema.clone())
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_schema",
                "schema must be a JSON Schema object",
            ))
        }
    };
    let example = match body.get("example") {
        None | Some(Value::Null) => None,
        Some(example @ Value::Object(_)) => Some(example.clone()),
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_example",
                "example must be an object, like an event's data",
            ))
        }
    };
    if let (Some(schema), Some(example)) = (&schema, &example) {
        let validator = jsonschema::validator_for(schema)
            .map_err(|e| ApiError::invalid("invalid_schema", e.to_string()))?;
        if let Err(error) = validator.validate(example) {
            return Err(ApiError::invalid(
                "invalid_example",
                format!(
                    "example does not satisfy the schema at {}: {error}",
                    path_or_root(&error.instance_path.to_string())
                ),
            ));
        }
    }
    Ok(EventTypeRow {
        name,
        description,
        schema,
        example,
        updated_at: Utc::now(),
    })
}

/// A JSON pointer, with the empty root spelled out.
fn path_or_root(pointer: &str) -> &str {
    if pointer.is_empty() {
        "/"
    } else {
        pointer
    }
}

/// `PUT /v1/event-types/{type}` (admin): creates or replaces the entry.
#[utoipa::path(put, path = EVENT_TYPE, operation_id = "putEventType",
    summary = "Create or replace an event type (admin token only)",
    request_body = EventTypeFields,
    responses(
        (status = 200, description = "The entry as stored", body = EventTypeView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "Not the admin token", body = ErrorBody),
        (status = 413, description = "Body over api.max_body_bytes", body = ErrorBody),
        (status = 422, description = "Invalid name, schema or example; `message` says where", body = ErrorBody),
    ))]
pub(super) async fn put(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson,
) -> Result<Json<EventTypeView>, ApiError> {
    caller.require_admin("change the event type catalogue")?;
    invalid_name(&name)?;
    let row = entry(name, &body)?;
    let stored = event_types::put(state.db.pool()?, &row).await?;
    state.notifier.announce(Announcement::catalogue()).await;
    Ok(Json(view(stored)))
}

/// `GET /v1/event-types`: any valid token.
#[utoipa::path(get, path = EVENT_TYPES, operation_id = "listEventTypes",
    summary = "List the event type catalogue, by name (any valid token)",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Items per page; 50 unless given"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of event types", body = List<EventTypeView>),
        (status = 422, description = "Invalid limit or cursor", body = ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    query: ApiQuery,
) -> Result<Json<List<EventTypeView>>, ApiError> {
    let page = Page::parse(query.get("limit"), query.get("cursor"))?;
    let mut rows = event_types::list(state.db.pool()?, &page).await?;
    let next = page.finish(&mut rows, event_types::cursor_of);
    Ok(Json(views::list(
        rows.into_iter().map(view).collect(),
        next,
    )))
}

/// `GET /v1/event-types/{type}`: any valid token.
#[utoipa::path(get, path = EVENT_TYPE, operation_id = "getEventType",
    summary = "Get one event type (any valid token)",
    responses((status = 200, description = "The entry", body = EventTypeView)))]
pub(super) async fn get_one(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<EventTypeView>, ApiError> {
    let row = event_types::get(state.db.pool()?, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("event type", &name))?;
    Ok(Json(view(row)))
}

/// `DELETE /v1/event-types/{type}` (admin): `204`.
#[utoipa::path(delete, path = EVENT_TYPE, operation_id = "deleteEventType",
    summary = "Remove an event type from the catalogue (admin token only)",
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not the admin token", body = ErrorBody),
    ))]
pub(super) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin("change the event type catalogue")?;
    if event_types::delete(state.db.pool()?, &name).await? {
        state.notifier.announce(Announcement::catalogue()).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("event type", &name))
    }
}
