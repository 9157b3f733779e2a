//! Tenant API keys: issued by the admin, shown once, stored hashed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hookline_model::ids;

use super::openapi::{API_KEY, API_KEYS};
use super::views::IssuedKey;

use crate::auth::{hash_token, Caller};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiPath;
use crate::state::AppState;
use crate::store::api_keys;

/// `POST /v1/tenants/{tenant}/api-keys` (admin only): `201 {"id", "key"}`;
/// the key is never shown again.
#[utoipa::path(post, path = API_KEYS, operation_id = "createApiKey", summary = "Issue a tenant API key (admin token only); the key is shown once",
    responses(
        (status = 201, description = "The key", body = IssuedKey),
        (status = 403, description = "Not the admin token", body = ErrorBody),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(tenant): ApiPath<String>,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    caller.require_admin("manage API keys")?;
    caller.check_tenant(&tenant)?;
    let id = ids::new_id("key");
    let key = api_keys::generate_key();
    api_keys::insert(state.db.pool()?, &id, &tenant, &hash_token(&key)).await?;
    Ok((StatusCode::CREATED, Json(IssuedKey { id, key })))
}

/// `DELETE /v1/tenants/{tenant}/api-keys/{id}`: `204`. The admin may revoke
/// any key, a tenant its own (a leaked key should not wait for the admin).
#[utoipa::path(delete, path = API_KEY, operation_id = "revokeApiKey", summary = "Revoke an API key",
    responses((status = 204, description = "Revoked")))]
pub(super) async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.check_tenant(&tenant)?;
    if api_keys::revoke(state.db.pool()?, &tenant, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("API key", &id))
    }
}
