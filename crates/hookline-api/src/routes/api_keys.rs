//! Tenant API keys: issued by the admin, shown once, stored hashed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hookline_model::ids;
use serde_json::{json, Value};

use crate::auth::{hash_token, Caller};
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::state::AppState;
use crate::store::api_keys;

/// `POST /v1/tenants/{tenant}/api-keys` (admin only): `201 {"id", "key"}`;
/// the key is never shown again.
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(tenant): ApiPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    caller.check_tenant(&tenant)?;
    let id = ids::new_id("key");
    let key = api_keys::generate_key();
    api_keys::insert(state.db.pool()?, &id, &tenant, &hash_token(&key)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "key": key }))))
}

/// `DELETE /v1/tenants/{tenant}/api-keys/{id}`: `204`. The admin may revoke
/// any key, a tenant its own (a leaked key should not wait for the admin).
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
