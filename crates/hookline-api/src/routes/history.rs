//! What happened to deliveries: a subscription's attempts, the tenant's dead
//! letters, and replaying a dead letter as a new first attempt.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use hookline_amqp::names::DELIVERIES_QUEUE;
use hookline_proto::{DeliveryTask, Message as _, SCHEMA_VERSION};
use hookline_send::record::{attempt_view, AttemptView};

use super::openapi::{ATTEMPTS, DEAD_LETTERS, REPLAY};
use super::task;
use super::views::{self, DeadLetterView, List, Replayed};
use crate::auth::Caller;
use crate::cursor::Page;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use crate::store::{attempts, dead_letters, subscriptions};

/// `GET …/{id}/attempts`: newest first, `?status=succeeded|failed|dead`.
#[utoipa::path(get, path = ATTEMPTS, operation_id = "listAttempts", summary = "List a subscription's delivery attempts, newest first",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Items per page; 50 unless given"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("status" = Option<String>, Query, pattern = "^(succeeded|failed|dead)$", description = "Only attempts with this status"),
    ),
    responses(
        (status = 200, description = "A page of attempts", body = List<AttemptView>),
        (status = 422, description = "Invalid field value; `code` and `message` name the field", body = ErrorBody),
    ))]
pub(super) async fn attempts(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    query: ApiQuery,
) -> Result<Json<List<AttemptView>>, ApiError> {
    caller.check_tenant(&tenant)?;
    let status = match query.get("status") {
        None | Some("") => None,
        Some(s @ ("succeeded" | "failed" | "dead")) => Some(s),
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_status",
                "status must be succeeded, failed or dead",
            ))
        }
    };
    let page = Page::parse(query.get("limit"), query.get("cursor"))?;
    let pool = state.db.pool()?;
    if subscriptions::get(pool, &tenant, &id).await?.is_none() {
        return Err(ApiError::not_found("subscription", &id));
    }
    let mut rows = attempts::list(pool, &tenant, &id, status, &page).await?;
    let next = page.finish(&mut rows, attempts::cursor_of);
    Ok(Json(views::list(
        rows.iter().map(attempt_view).collect(),
        next,
    )))
}

/// `GET /v1/tenants/{tenant}/dead-letters`: newest first; `?subscription_id=`
/// narrows it to one subscription.
#[utoipa::path(get, path = DEAD_LETTERS, operation_id = "listDeadLetters", summary = "List a tenant's dead letters, newest first",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Items per page; 50 unless given"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("subscription_id" = Option<String>, Query, description = "Only this subscription's"),
    ),
    responses(
        (status = 200, description = "A page of dead letters", body = List<DeadLetterView>),
        (status = 422, description = "Invalid field value; `code` and `message` name the field", body = ErrorBody),
    ))]
pub(super) async fn dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(tenant): ApiPath<String>,
    query: ApiQuery,
) -> Result<Json<List<DeadLetterView>>, ApiError> {
    caller.check_tenant(&tenant)?;
    let page = Page::parse(query.get("limit"), query.get("cursor"))?;
    let subscription_id = query.get("subscription_id").filter(|s| !s.is_empty());
    let pool = state.db.pool()?;
    let mut rows = dead_letters::list(pool, &tenant, subscription_id, &page).await?;
    let next = page.finish(&mut rows, dead_letters::cursor_of);
    Ok(Json(views::list(
        rows.iter().map(views::dead_letter).collect(),
        next,
    )))
}

/// `POST …/dead-letters/{id}/replay`: the stored task, pointed at the
/// subscription's current URL and secrets, goes back to the deliverers as
/// attempt 1 with the same `webhook-id`. `202` only after the broker
/// confirmed it; replaying twice simply sends twice, and receivers
/// deduplicate on the id.
#[utoipa::path(post, path = REPLAY, operation_id = "replayDeadLetter", summary = "Send a dead letter again as a new first attempt",
    responses(
        (status = 202, description = "Replayed: the broker confirmed the task", body = Replayed),
        (status = 409, description = "subscription_deleted, subscription_disabled or subscription_unverified", body = ErrorBody),
        (status = 429, description = "rate_limited: the tenant's test sends and replays exceeded api.manual_sends_per_minute; Retry-After says when to try again", body = ErrorBody),
    ))]
pub(super) async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    caller.check_tenant(&tenant)?;
    let pool = state.db.pool()?;
    let dead = dead_letters::get(pool, &tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("dead letter", &id))?;
    state.take_manual_send(&tenant)?;
    let mut task = DeliveryTask::decode(dead.task.as_slice()).map_err(|e| {
        tracing::error!(dead_letter = %id, error = %e, "a stored dead-letter task does not decode");
        ApiError::Internal("the stored task of this dead letter cannot be decoded".into())
    })?;
    let conflict = |code, message: &str| ApiError::Conflict {
        code,
        message: message.to_string(),
    };
    let subscription = subscriptions::get(pool, &tenant, &dead.subscription_id)
        .await?
        .ok_or_else(|| {
            conflict(
                "subscription_deleted",
                "the subscription of this dead letter was deleted",
            )
        })?;
    if !subscription.enabled {
        return Err(conflict(
            "subscription_disabled",
            "the subscription of this dead letter is disabled; enable it to replay",
        ));
    }
    if !subscription.verified {
        return Err(conflict(
            "subscription_unverified",
            "the subscription of this dead letter waits for verification; verify it to replay",
        ));
    }
    task::refresh(&mut task, &subscription, state.keyring(), Utc::now())?;
    task.schema_version = SCHEMA_VERSION;
    task.attempt = 1;
    let properties = hookline_amqp::protobuf_properties();
    state
        .publisher
        .publish_confirmed("", DELIVERIES_QUEUE, &task.encode_to_vec(), properties)
        .await
        .map_err(|error| {
            tracing::warn!(%error, dead_letter = %id, "cannot publish a replay");
            ApiError::Unavailable(
                "the broker is unavailable; nothing was replayed, try again later".into(),
            )
        })?;
    // The task is on its way; a failure to count it must not invite a
    // second replay, so it is only logged.
    if let Err(error) = dead_letters::mark_replayed(pool, &tenant, &id).await {
        tracing::warn!(%error, dead_letter = %id, "cannot count a replay");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Replayed {
            id: dead.id,
            status: "replayed",
        }),
    ))
}
