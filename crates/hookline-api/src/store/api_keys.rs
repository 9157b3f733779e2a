//! `api_keys`: tenant-scoped bearer tokens, stored as SHA-256 only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore;
use sqlx::PgPool;

/// The tenant a (non-revoked) key hash belongs to.
pub(crate) async fn tenant_of(
    pool: &PgPool,
    key_hash: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT tenant FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
        .bind(key_hash)
        .fetch_optional(pool)
        .await
}

/// A fresh key: `hk_` and 32 random bytes, URL-safe base64.
pub(crate) fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("hk_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Stores a key's hash for `tenant` under `id`.
pub(crate) async fn insert(
    pool: &PgPool,
    id: &str,
    tenant: &str,
    key_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO api_keys (id, tenant, key_hash) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(tenant)
        .bind(key_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// Revokes a key; `false` when the tenant has no key with that id. Revoking
/// twice is harmless.
pub(crate) async fn revoke(pool: &PgPool, tenant: &str, id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE tenant = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(result.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_prefixed_and_unique() {
        let a = generate_key();
        assert!(a.starts_with("hk_"));
        assert_eq!(a.len(), 3 + 43);
        assert_ne!(a, generate_key());
    }
}
