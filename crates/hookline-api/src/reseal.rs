//! Re-sealing at start: every subscription row whose secrets or headers are
//! (and every source whose verification secret is)
//! sealed under a key other than the current `api.secret_key` (after a
//! rotation), or in the format before key ids, or whose headers are still in
//! clear (written before header sealing), is sealed again under the current
//! key. Once it has run, a rotated-out key is needed only for tasks still on
//! the retry ladder (see the README's key rotation steps).

use std::collections::BTreeMap;
use std::sync::Arc;

use hookline_model::sealed::{self, Keyring, OpenError};
use serde_json::Value;
use sqlx::{PgPool, Row};
use tokio_util::sync::CancellationToken;

use crate::control::{Announcement, Notifier};
use crate::db::Database;

/// Rows locked (`FOR UPDATE`) and re-sealed per transaction; kept small so
/// edits to those subscriptions wait only briefly.
const CHUNK: i64 = 200;

/// Re-seals every stale row once the database is ready, then stops.
pub(crate) async fn run(
    db: Database,
    keyring: Arc<Keyring>,
    notifier: Notifier,
    token: CancellationToken,
) {
    let Some(pool) = db.ready(&token).await else {
        return;
    };
    match reseal_sources(pool, &keyring, &notifier).await {
        Ok(0) => {}
        Ok(count) => tracing::info!(
            rows = count,
            "re-sealed inbound sources' verification secrets under the current api.secret_key"
        ),
        Err(error) => tracing::error!(%error, "cannot re-seal sources; old keys stay needed"),
    }
    match reseal_all(pool, &keyring, &notifier, &token).await {
        Ok(0) => {}
        Ok(count) => tracing::info!(
            rows = count,
            key_id = %keyring.current_key_id(),
            "re-sealed subscription secrets and headers under the current api.secret_key"
        ),
        Err(error) => tracing::error!(%error, "cannot re-seal subscriptions; old keys stay needed"),
    }
}

/// Why one pass stopped.
#[derive(Debug, thiserror::Error)]
enum ResealError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("subscription {0}: {1}")]
    Open(String, OpenError),
    #[error("subscription {0}: {1}")]
    Seal(String, String),
}

async fn reseal_all(
    pool: &PgPool,
    keyring: &Keyring,
    notifier: &Notifier,
    token: &CancellationToken,
) -> Result<u64, ResealError> {
    let mut after = String::new();
    let mut count = 0;
    while !token.is_cancelled() {
        let mut tx = pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, tenant, secret_sealed, previous_secret_sealed, headers, headers_sealed \
             FROM subscriptions WHERE id > $1 ORDER BY id LIMIT $2 FOR UPDATE",
        )
        .bind(&after)
        .bind(CHUNK)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.try_get("id")?;
        let mut changed = Vec::new();
        for row in &rows {
            let id: String = row.try_get("id")?;
            let secret: Vec<u8> = row.try_get("secret_sealed")?;
            let previous: Option<Vec<u8>> = row.try_get("previous_secret_sealed")?;
            let headers: Value = row.try_get("headers")?;
            let headers_sealed: Option<Vec<u8>> = row.try_get("headers_sealed")?;
            let clear_headers = headers.as_object().is_some_and(|m| !m.is_empty());
            let stale = keyring.needs_reseal(&secret)
                || previous.as_deref().is_some_and(|p| keyring.needs_reseal(p))
                || headers_sealed
                    .as_deref()
                    .is_some_and(|h| keyring.needs_reseal(h))
                || clear_headers;
            if !stale {
                continue;
            }
            let secret_place = sealed::subscription_secret(&id);
            let headers_place = sealed::subscription_headers(&id);
            let reseal = |place: &str, value: &[u8]| -> Result<Vec<u8>, ResealError> {
                let clear = keyring
                    .open(place, value)
                    .map_err(|e| ResealError::Open(id.clone(), e))?;
                keyring
                    .seal(place, &clear)
                    .map_err(|e| ResealError::Seal(id.clone(), e.to_string()))
            };
            let secret = reseal(&secret_place, &secret)?;
            let previous = previous.map(|p| reseal(&secret_place, &p)).transpose()?;
            let headers_sealed = match headers_sealed {
                Some(sealed_headers) => Some(reseal(&headers_place, &sealed_headers)?),
                None if clear_headers => {
                    let map: BTreeMap<String, String> =
                        serde_json::from_value(headers).unwrap_or_default();
                    let json = serde_json::to_vec(&map).unwrap_or_default();
                    Some(
                        keyring
                            .seal(&headers_place, &json)
                            .map_err(|e| ResealError::Seal(id.clone(), e.to_string()))?,
                    )
                }
                None => None,
            };
            // `updated_at` stays: nothing a customer set has changed.
            sqlx::query(
                "UPDATE subscriptions SET secret_sealed = $2, previous_secret_sealed = $3, \
                 headers = '{}'::jsonb, headers_sealed = $4 WHERE id = $1",
            )
            .bind(&id)
            .bind(&secret)
            .bind(&previous)
            .bind(&headers_sealed)
            .execute(&mut *tx)
            .await?;
            let tenant: String = row.try_get("tenant")?;
            changed.push((tenant, id));
        }
        tx.commit().await?;
        count += changed.len() as u64;
        // Fanouts copy sealed values into tasks: have them reload the rows,
        // with one notice per tenant (a notice reloads the whole tenant).
        let tenants: BTreeMap<String, String> = changed.into_iter().collect();
        for (tenant, id) in tenants {
            notifier
                .announce(Announcement::tenant_reload(&tenant, &id))
                .await;
        }
    }
    Ok(count)
}

/// The sources' verification secrets, in one transaction (a tenant has at
/// most `api.max_sources_per_tenant`); ingests reload them once after.
async fn reseal_sources(
    pool: &PgPool,
    keyring: &Keyring,
    notifier: &Notifier,
) -> Result<u64, ResealError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT id, tenant, secret_sealed FROM sources WHERE secret_sealed IS NOT NULL FOR UPDATE",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut last = None;
    let mut count = 0;
    for row in &rows {
        let id: String = row.try_get("id")?;
        let secret: Vec<u8> = row.try_get("secret_sealed")?;
        if !keyring.needs_reseal(&secret) {
            continue;
        }
        let place = sealed::source_secret(&id);
        let clear = keyring
            .open(&place, &secret)
            .map_err(|e| ResealError::Open(id.clone(), e))?;
        let resealed = keyring
            .seal(&place, &clear)
            .map_err(|e| ResealError::Seal(id.clone(), e.to_string()))?;
        sqlx::query("UPDATE sources SET secret_sealed = $2 WHERE id = $1")
            .bind(&id)
            .bind(&resealed)
            .execute(&mut *tx)
            .await?;
        count += 1;
        last = Some((row.try_get::<String, _>("tenant")?, id));
    }
    tx.commit().await?;
    if let Some((tenant, id)) = last {
        notifier.announce(Announcement::sources(&tenant, &id)).await;
    }
    Ok(count)
}
