//! The HTTP API: the route table, and the fallbacks that keep even unknown
//! paths in the contract's error shape.

mod actions;
mod api_keys;
mod draft;
mod history;
mod openapi;
mod subscriptions;
mod task;
mod views;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use crate::error::ApiError;
use crate::state::AppState;

/// Every api route, with the request body limit of `api.max_body_bytes`.
pub(crate) fn router(state: AppState) -> Router {
    let max_body = state.config.api.max_body_bytes;
    let subscription = "/v1/tenants/{tenant}/subscriptions/{id}";
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/v1/tenants/{tenant}/api-keys", post(api_keys::create))
        .route(
            "/v1/tenants/{tenant}/api-keys/{id}",
            delete(api_keys::revoke),
        )
        .route(
            "/v1/tenants/{tenant}/subscriptions",
            post(subscriptions::create).get(subscriptions::list),
        )
        .route(
            subscription,
            get(subscriptions::get_one)
                .patch(subscriptions::update)
                .delete(subscriptions::remove),
        )
        .route(&format!("{subscription}/test"), post(actions::test_send))
        .route(
            &format!("{subscription}/rotate-secret"),
            post(actions::rotate_secret),
        )
        .route(&format!("{subscription}/attempts"), get(history::attempts))
        .route(
            "/v1/tenants/{tenant}/dead-letters",
            get(history::dead_letters),
        )
        .route(
            "/v1/tenants/{tenant}/dead-letters/{id}/replay",
            post(history::replay),
        )
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Unknown paths: `404` in the contract's shape rather than an empty body.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see GET /openapi.json".into())
}

/// A known path with the wrong method.
pub(crate) async fn method_not_allowed() -> Response {
    let body = serde_json::json!({"error": {
        "code": "method_not_allowed",
        "message": "this route does not accept that method; see GET /openapi.json",
    }});
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}
