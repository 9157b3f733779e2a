//! Subscription CRUD: create, list, get, PATCH, delete. Each change is
//! announced on `hookline.control` after it is committed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use hookline_model::ids;
use hookline_signature::generate_secret;
use serde_json::json;

use super::draft::{Draft, SubscriptionFields};
use super::openapi::{SUBSCRIPTION, SUBSCRIPTIONS};
use super::verification;
use super::views::{self, List, SubscriptionView};
use crate::auth::Caller;
use crate::control::Announcement;
use crate::cursor::Page;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::store::subscriptions::{self, SubscriptionRow};

/// `POST /v1/tenants/{tenant}/subscriptions`: `201` with the secret.
#[utoipa::path(post, path = SUBSCRIPTIONS, operation_id = "createSubscription", summary = "Create a subscription; the answer includes its secret",
    request_body = SubscriptionFields,
    responses(
        (status = 201, description = "The subscription, with its secret", body = SubscriptionView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "limit_reached: api.max_subscriptions_per_tenant", body = ErrorBody),
        (status = 413, description = "Body over api.max_body_bytes", body = ErrorBody),
        (status = 422, description = "Invalid field value; `code` and `message` name the field", body = ErrorBody),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(body): ApiJson,
) -> Result<(StatusCode, Json<SubscriptionView>), ApiError> {
    caller.check_tenant(&tenant)?;
    let pool = state.db.pool()?;
    let mut draft = Draft::new();
    draft.apply(&body, &state.rules, true)?;
    let secret = draft.secret.clone().unwrap_or_else(generate_secret);
    let now = Utc::now();
    let id = ids::new_id("sub");
    let keyring = state.keyring();
    let row = SubscriptionRow {
        secret_sealed: views::seal_secret(keyring, &id, &secret)?,
        headers: json!({}),
        headers_sealed: views::seal_headers(keyring, &id, &draft.headers)?,
        id,
        tenant: tenant.clone(),
        name: draft.name.clone(),
        url: draft.url.clone(),
        event_types: draft.event_types.clone(),
        enabled: draft.enabled,
        verified: !draft.options.wants_challenge(),
        previous_secret_sealed: None,
        previous_secret_expires_at: None,
        signature: draft.signature_json(),
        last_attempt_at: None,
        last_status: None,
        last_response_status: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        revision: 0,
        options: draft.options.to_stored(),
    };
    let max = state.config.api.max_subscriptions_per_tenant;
    let created = subscriptions::insert(pool, &row, max)
        .await?
        .ok_or_else(|| ApiError::Conflict {
            code: "limit_reached",
            message: format!("tenant `{tenant}` already has the maximum of {max} subscriptions"),
        })?;
    state
        .notifier
        .announce(Announcement::of_row(&created, keyring)?)
        .await;
    verification::challenge_if_waiting(&state, &created).await;
    Ok((
        StatusCode::CREATED,
        Json(views::subscription(keyring, &created, Some(&secret))?),
    ))
}

/// `GET /v1/tenants/{tenant}/subscriptions`: secrets only with
/// `?include_secret=true`.
#[utoipa::path(get, path = SUBSCRIPTIONS, operation_id = "listSubscriptions", summary = "List a tenant's subscriptions",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Items per page; 50 unless given"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("include_secret" = Option<bool>, Query, description = "Include each secret; false unless given"),
    ),
    responses(
        (status = 200, description = "A page of subscriptions (secrets only with include_secret=true)", body = List<SubscriptionView>),
        (status = 422, description = "Invalid field value; `code` and `message` name the field", body = ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(tenant): ApiPath<String>,
    query: ApiQuery,
) -> Result<Json<List<SubscriptionView>>, ApiError> {
    caller.check_tenant(&tenant)?;
    let page = Page::parse(query.get("limit"), query.get("cursor"))?;
    let include_secret = query.flag("include_secret")?;
    let pool = state.db.pool()?;
    let mut rows = subscriptions::list(pool, &tenant, &page).await?;
    let next = page.finish(&mut rows, subscriptions::cursor_of);
    let data = rows
        .iter()
        .map(|row| {
            let secret = include_secret
                .then(|| views::open_secret(state.keyring(), row))
                .transpose()?;
            views::subscription(state.keyring(), row, secret.as_deref())
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(views::list(data, next)))
}

/// `GET /v1/tenants/{tenant}/subscriptions/{id}`: secret included.
#[utoipa::path(get, path = SUBSCRIPTION, operation_id = "getSubscription", summary = "Get one subscription, secret included",
    responses((status = 200, description = "The subscription", body = SubscriptionView)))]
pub(super) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<Json<SubscriptionView>, ApiError> {
    caller.check_tenant(&tenant)?;
    let row = subscriptions::get(state.db.pool()?, &tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription", &id))?;
    let secret = views::open_secret(state.keyring(), &row)?;
    Ok(Json(views::subscription(
        state.keyring(),
        &row,
        Some(&secret),
    )?))
}

/// `PATCH /v1/tenants/{tenant}/subscriptions/{id}`: any writable field,
/// same rules as create.
#[utoipa::path(patch, path = SUBSCRIPTION, operation_id = "updateSubscription", summary = "Change any writable field",
    request_body = SubscriptionFields,
    responses(
        (status = 200, description = "The subscription", body = SubscriptionView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over api.max_body_bytes", body = ErrorBody),
        (status = 422, description = "Invalid field value; `code` and `message` name the field", body = ErrorBody),
    ))]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson,
) -> Result<Json<SubscriptionView>, ApiError> {
    caller.check_tenant(&tenant)?;
    let pool = state.db.pool()?;
    let keyring = state.keyring();
    let mut secret = String::new();
    let mut ask_again = false;
    let mut switched_off = false;
    let updated = subscriptions::modify(pool, &tenant, &id, |row| {
        let headers = views::open_headers(keyring, row)?;
        let mut draft = Draft::from_row(row, views::open_secret(keyring, row)?, &headers);
        let asked_before = draft.options.wants_challenge();
        draft.apply(&body, &state.rules, false)?;
        // A new URL must prove itself again; switching the challenge on
        // asks for the first time; switching it off trusts the endpoint.
        let wants = draft.options.wants_challenge();
        ask_again = wants && (draft.url != row.url || !asked_before);
        switched_off = asked_before && !wants;
        if ask_again {
            row.verified = false;
        } else if !wants {
            row.verified = true;
        }
        draft.write_to(row, keyring)?;
        secret = draft.secret.unwrap_or_default();
        Ok::<_, ApiError>(())
    })
    .await?
    .ok_or_else(|| ApiError::not_found("subscription", &id))?;
    if switched_off {
        crate::store::verification::close(pool, &id).await?;
    }
    // Deliverers re-shape queued tasks to the new URL and credentials, or
    // drop them once it is disabled; fanout reloads the tenant either way.
    state
        .notifier
        .announce(Announcement::of_row(&updated, keyring)?)
        .await;
    if ask_again {
        verification::challenge_if_waiting(&state, &updated).await;
    }
    Ok(Json(views::subscription(keyring, &updated, Some(&secret))?))
}

/// `DELETE /v1/tenants/{tenant}/subscriptions/{id}`: `204`; fanouts and
/// deliverers hear of it at once.
#[utoipa::path(delete, path = SUBSCRIPTION, operation_id = "deleteSubscription", summary = "Delete a subscription; no delivery starts for it afterwards",
    responses((status = 204, description = "Deleted")))]
pub(super) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.check_tenant(&tenant)?;
    let Some(revision) = subscriptions::delete(state.db.pool()?, &tenant, &id).await? else {
        return Err(ApiError::not_found("subscription", &id));
    };
    state
        .notifier
        .announce(Announcement::deleted(&tenant, &id, revision))
        .await;
    Ok(StatusCode::NO_CONTENT)
}
