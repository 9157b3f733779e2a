//! Request extractors whose every failure is the contract's JSON error:
//! axum's own rejections answer plain text.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON object body. An empty body reads as `{}`, so routes whose body is
/// optional (`rotate-secret`) need no special case.
pub(crate) struct ApiJson(pub Map<String, Value>);

impl FromRequest<AppState> for ApiJson {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        // The `DefaultBodyLimit` layer makes buffering fail with 413.
        let limit = state.config.api.max_body_bytes;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge(limit)
                } else {
                    ApiError::InvalidJson(format!("cannot read the request body: {rejection}"))
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(ApiJson(Map::new()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(ApiJson(map)),
            Ok(_) => Err(ApiError::InvalidJson(
                "the body must be a JSON object".into(),
            )),
            Err(e) => Err(ApiError::InvalidJson(format!(
                "the body is not valid JSON: {e}"
            ))),
        }
    }
}

/// Path parameters; a segment that does not fit is an unknown resource.
pub(crate) struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|_| ApiError::NotFound("no such resource".into()))
    }
}

/// Query parameters as strings; each route parses the ones it knows so the
/// error can name the parameter.
pub(crate) struct ApiQuery(pub HashMap<String, String>);

impl ApiQuery {
    /// One parameter's value, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A boolean flag such as `include_secret=true`.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") | Some("") => Ok(true),
            Some(_) => Err(ApiError::invalid(
                "invalid_query",
                format!("{name} must be true or false"),
            )),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Query(map)| ApiQuery(map))
            .map_err(|e| {
                ApiError::invalid(
                    "invalid_query",
                    format!("the query string is malformed: {e}"),
                )
            })
    }
}
