//! `subscriptions`: the rows behind the CRUD routes. Secrets stay sealed
//! here; the routes seal and open them.

use sqlx::PgPool;

use crate::cursor::{Cursor, Page};

pub(crate) use hookline_store::subscriptions::SubscriptionRow;
use hookline_store::subscriptions::{read, COLUMNS};

/// One subscription of `tenant`.
pub(crate) async fn get(
    pool: &PgPool,
    tenant: &str,
    id: &str,
) -> Result<Option<SubscriptionRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM subscriptions WHERE tenant = $1 AND id = $2");
    let row = sqlx::query(&sql)
        .bind(tenant)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(read).transpose()
}

/// A page of `tenant`'s subscriptions, oldest first (the order they were
/// configured in), one row more than the page to detect a next page.
pub(crate) async fn list(
    pool: &PgPool,
    tenant: &str,
    page: &Page,
) -> Result<Vec<SubscriptionRow>, sqlx::Error> {
    let (after_at, after_id) = page.after_key();
    let sql = format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE tenant = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) \
         ORDER BY created_at, id LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant)
        .bind(after_at)
        .bind(after_id)
        .bind(page.fetch())
        .fetch_all(pool)
        .await?;
    rows.iter().map(read).collect()
}

/// The cursor key of a subscription in [`list`]'s order.
pub(crate) fn cursor_of(row: &SubscriptionRow) -> Cursor {
    Cursor {
        at: row.created_at,
        id: row.id.clone(),
    }
}

/// Inserts `new` unless `tenant` already has `max` subscriptions; `None`
/// when the limit is reached. A per-tenant advisory lock makes the count and
/// the insert one step even when two creates race.
pub(crate) async fn insert(
    pool: &PgPool,
    new: &SubscriptionRow,
    max: u32,
) -> Result<Option<SubscriptionRow>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !super::tenant_has_room(&mut tx, "subscriptions", &new.tenant, max).await? {
        return Ok(None);
    }
    let sql = format!(
        "INSERT INTO subscriptions (id, tenant, name, url, event_types, enabled, secret_sealed, signature, headers, \
         headers_sealed, options, verified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(&new.id)
        .bind(&new.tenant)
        .bind(&new.name)
        .bind(&new.url)
        .bind(&new.event_types)
        .bind(new.enabled)
        .bind(&new.secret_sealed)
        .bind(&new.signature)
        .bind(&new.headers)
        .bind(&new.headers_sealed)
        .bind(&new.options)
        .bind(new.verified)
        .fetch_one(&mut *tx)
        .await?;
    let created = read(&row)?;
    tx.commit().await?;
    Ok(Some(created))
}

/// Reads a subscription under a row lock, lets `change` edit it (refusing
/// with its own error leaves the row untouched), and writes it back with a
/// fresh `updated_at`. `None` when it does not exist. The lock keeps two
/// concurrent PATCHes from losing each other's fields.
pub(crate) async fn modify<E, F>(
    pool: &PgPool,
    tenant: &str,
    id: &str,
    change: F,
) -> Result<Option<SubscriptionRow>, E>
where
    E: From<sqlx::Error>,
    F: FnOnce(&mut SubscriptionRow) -> Result<(), E>,
{
    let mut tx = pool.begin().await?;
    let sql =
        format!("SELECT {COLUMNS} FROM subscriptions WHERE tenant = $1 AND id = $2 FOR UPDATE");
    let Some(row) = sqlx::query(&sql)
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    let mut row = read(&row)?;
    change(&mut row)?;
    let sql = format!(
        "UPDATE subscriptions SET name = $3, url = $4, event_types = $5, enabled = $6, secret_sealed = $7, \
         previous_secret_sealed = $8, previous_secret_expires_at = $9, signature = $10, headers = $11, \
         headers_sealed = $12, options = $13, verified = $14, updated_at = now() WHERE tenant = $1 AND id = $2 RETURNING {COLUMNS}"
    );
    let updated = sqlx::query(&sql)
        .bind(tenant)
        .bind(id)
        .bind(&row.name)
        .bind(&row.url)
        .bind(&row.event_types)
        .bind(row.enabled)
        .bind(&row.secret_sealed)
        .bind(&row.previous_secret_sealed)
        .bind(row.previous_secret_expires_at)
        .bind(&row.signature)
        .bind(&row.headers)
        .bind(&row.headers_sealed)
        .bind(&row.options)
        .bind(row.verified)
        .fetch_one(&mut *tx)
        .await?;
    let updated = read(&updated)?;
    tx.commit().await?;
    Ok(Some(updated))
}

/// Deletes a subscription; the revision of the deletion (newer than any
/// task of it), or `None` when it did not exist. Its history stays until
/// retention removes it.
pub(crate) async fn delete(
    pool: &PgPool,
    tenant: &str,
    id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "DELETE FROM subscriptions WHERE tenant = $1 AND id = $2 \
         RETURNING nextval('subscription_revisions')",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Every subscription with an endpoint policy (`ordering: "fifo"` or a
/// `rate_limit` or `batch`), for the daily roll call (`crate::policies`).
pub(crate) async fn with_endpoint_policy(
    pool: &PgPool,
) -> Result<Vec<SubscriptionRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM subscriptions \
         WHERE options ? 'rate_limit' OR options ? 'batch' OR options->>'ordering' = 'fifo'"
    );
    let rows = sqlx::query(&sql).fetch_all(pool).await?;
    rows.iter().map(read).collect()
}
