//! Bearer-token authentication: the admin token sees every tenant, an API
//! key only its own, and another tenant's objects look like they do not
//! exist (`404`, so ids cannot be probed).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use hookline_model::envelope::is_valid_tenant;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::api_keys;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// Holder of `api.admin_token`: every tenant, and key management.
    Admin,
    /// Holder of an API key of this tenant.
    Tenant(String),
}

impl Caller {
    /// Checks that `tenant` is well formed and visible to the caller; both
    /// failures are `404` so other tenants cannot be discovered.
    pub fn check_tenant(&self, tenant: &str) -> Result<(), ApiError> {
        let visible = match self {
            Caller::Admin => true,
            Caller::Tenant(own) => own == tenant,
        };
        if is_valid_tenant(tenant) && visible {
            Ok(())
        } else {
            Err(ApiError::not_found("tenant", tenant))
        }
    }

    /// Key management and the event type catalogue need the admin token;
    /// `what` names the action in the `403`.
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Tenant(_) => Err(ApiError::Forbidden(format!(
                "only the admin token may {what}"
            ))),
        }
    }
}

/// The hex SHA-256 of a token, as `api_keys.key_hash` stores it.
pub(crate) fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares through hashes, so the time taken does not reveal how much of
/// the admin token a guess got right.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        if same_secret(token, state.config.api.admin_token.expose()) {
            return Ok(Caller::Admin);
        }
        let hash = hash_token(token);
        if state.unknown_tokens.is_known_bad(&hash) {
            return Err(ApiError::Unauthorized);
        }
        let pool = state.db.pool()?;
        state.token_lookups.inc();
        match api_keys::tenant_of(pool, &hash).await? {
            Some(tenant) => Ok(Caller::Tenant(tenant)),
            None => {
                state.unknown_tokens.remember(hash);
                Err(ApiError::Unauthorized)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_key_sees_its_own_tenant_only() {
        let caller = Caller::Tenant("acme".into());
        assert!(caller.check_tenant("acme").is_ok());
        assert!(matches!(
            caller.check_tenant("globex"),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(
            caller.require_admin("manage API keys"),
            Err(ApiError::Forbidden(_))
        ));
    }

    #[test]
    fn a_malformed_tenant_is_not_found_even_for_the_admin() {
        assert!(Caller::Admin.check_tenant("acme").is_ok());
        assert!(matches!(
            Caller::Admin.check_tenant("a b"),
            Err(ApiError::NotFound(_))
        ));
    }

    #[test]
    fn token_hashes_are_hex_sha256() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(same_secret("token", "token"));
        assert!(!same_secret("token", "tokeN"));
    }
}
