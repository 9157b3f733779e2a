//! The HTTP API: the route table, and the fallbacks that keep even unknown
//! paths in the contract's error shape.

mod actions;
mod api_keys;
mod draft;
mod event_types;
mod history;
pub(crate) mod openapi;
mod preview;
mod sources;
mod subscriptions;
pub(crate) mod task;
pub(crate) mod verification;
mod views;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::{Json, Router};

use crate::error::ApiError;
use crate::state::AppState;

/// Every api route, built from [`openapi::ROUTES`] so that nothing is served
/// that the document does not describe, with the request body limit of
/// `api.max_body_bytes`. `/healthz`, `/readyz` and `/metrics` come from
/// `ops::router`, merged by the caller.
pub(crate) fn router(state: AppState) -> Router {
    use openapi::{
        API_KEY, API_KEYS, ATTEMPTS, DEAD_LETTERS, EVENT_TYPE, EVENT_TYPES, HEALTHZ, METRICS,
        OPENAPI, PREVIEW, READYZ, REPLAY, ROTATE_SECRET, SOURCE, SOURCES, SOURCE_FEED,
        SOURCE_REQUESTS, SUBSCRIPTION, SUBSCRIPTIONS, TEST_SEND, VERIFICATION, VERIFY,
    };
    let max_body = state.config.api.max_body_bytes;
    let mut router = Router::new();
    for &(method, path) in openapi::ROUTES {
        // Routes on one path are merged by axum, one method at a time.
        let handler: MethodRouter<AppState> = match (method, path) {
            ("POST", API_KEYS) => post(api_keys::create),
            ("DELETE", API_KEY) => delete(api_keys::revoke),
            ("POST", SUBSCRIPTIONS) => post(subscriptions::create),
            ("GET", SUBSCRIPTIONS) => get(subscriptions::list),
            ("GET", SUBSCRIPTION) => get(subscriptions::get_one),
            ("PATCH", SUBSCRIPTION) => patch(subscriptions::update),
            ("DELETE", SUBSCRIPTION) => delete(subscriptions::remove),
            ("POST", TEST_SEND) => post(actions::test_send),
            ("POST", PREVIEW) => post(preview::preview),
            ("POST", ROTATE_SECRET) => post(actions::rotate_secret),
            ("POST", VERIFICATION) => post(verification::resend),
            ("POST", VERIFY) => post(verification::verify),
            ("GET", ATTEMPTS) => get(history::attempts),
            ("GET", DEAD_LETTERS) => get(history::dead_letters),
            ("POST", REPLAY) => post(history::replay),
            ("GET", EVENT_TYPES) => get(event_types::list),
            ("GET", EVENT_TYPE) => get(event_types::get_one),
            ("PUT", EVENT_TYPE) => put(event_types::put),
            ("DELETE", EVENT_TYPE) => delete(event_types::remove),
            ("POST", SOURCES) => post(sources::create),
            ("GET", SOURCES) => get(sources::list),
            ("GET", SOURCE) => get(sources::get_one),
            ("DELETE", SOURCE) => delete(sources::remove),
            ("GET", SOURCE_REQUESTS) => get(sources::requests),
            ("GET", SOURCE_FEED) => get(sources::feed),
            ("GET", OPENAPI) => get(openapi::document),
            // Served by `ops::router`.
            ("GET", HEALTHZ | READYZ | METRICS) => continue,
            _ => panic!("openapi::ROUTES lists {method} {path}, which has no handler"),
        };
        router = router.route(path, handler);
    }
    router
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
