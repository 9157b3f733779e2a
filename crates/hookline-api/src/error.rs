//! The one error type of the HTTP layer, rendered in the contract's shape
//! `{"error": {"code": "…", "message": "…"}}` with its status code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Why a request was refused. Each variant fixes the status code, so a
/// handler cannot answer a client mistake with a 500 by accident.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON (or not a JSON object): `400 invalid_json`.
    #[error("{0}")]
    InvalidJson(String),
    /// No bearer token, or one nobody issued: `401 unauthorized`.
    #[error("a valid `Authorization: Bearer <token>` header is required")]
    Unauthorized,
    /// Authenticated, but only the admin token may do this: `403 forbidden`.
    #[error("{0}")]
    Forbidden(String),
    /// Unknown id or tenant, or another tenant's object: `404 not_found`.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state: `409` with its code
    /// (`limit_reached`, `subscription_deleted`, …).
    #[error("{message}")]
    Conflict {
        /// Stable machine-readable code.
        code: &'static str,
        /// What conflicts and what to do about it.
        message: String,
    },
    /// The body is larger than `api.max_body_bytes`: `413 payload_too_large`.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// A field has a value the rules refuse: `422` with its code
    /// (`invalid_url`, `invalid_headers`, …) and a message naming the field.
    #[error("{message}")]
    Invalid {
        /// Stable machine-readable code.
        code: &'static str,
        /// What is wrong, naming the field.
        message: String,
    },
    /// PostgreSQL or the broker cannot be reached right now: `503
    /// unavailable`; the client may retry.
    #[error("{0}")]
    Unavailable(String),
    /// A fault on our side that retrying will not fix (e.g. a stored secret
    /// that no longer opens with `api.secret_key`): `500 internal`.
    #[error("{0}")]
    Internal(String),
    /// Over a per-tenant budget: `429` with `Retry-After`.
    #[error("{message}")]
    RateLimited {
        /// What was limited, and how to stay under it.
        message: String,
        /// When the next request would be accepted.
        retry_after: std::time::Duration,
    },
}

impl ApiError {
    /// A `422` naming the field.
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            code,
            message: message.into(),
        }
    }

    /// The `404` for an id the caller cannot see.
    pub(crate) fn not_found(what: &str, id: &str) -> Self {
        ApiError::NotFound(format!("{what} `{id}` does not exist"))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Invalid { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    /// Every database failure is the database's, not the client's: 503, and
    /// the details go to the log rather than to the caller.
    fn from(error: sqlx::Error) -> Self {
        tracing::warn!(%error, "database request failed");
        ApiError::Unavailable("the database is unavailable; try again later".into())
    }
}

pub use hookline_model::error_body::ErrorBody;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = ErrorBody::new(code, self.to_string());
        let mut response = (status, Json(body)).into_response();
        if let ApiError::RateLimited { retry_after, .. } = &self {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            if let Ok(value) = seconds.max(1).to_string().parse() {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
        }
        response
    }
}
