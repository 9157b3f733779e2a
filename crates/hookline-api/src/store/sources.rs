//! `sources`: inbound webhook URLs, each turned by ingest into events of
//! one tenant and type. The URL token is stored as its SHA-256 only.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::cursor::{Cursor, Page};

/// One source as stored.
#[derive(Debug, Clone)]
pub(crate) struct SourceRow {
    /// `src_…`.
    pub id: String,
    /// Whose events it makes.
    pub tenant: String,
    /// For people reading the list.
    pub name: String,
    /// The type of every event it makes.
    pub event_type: String,
    /// Hex SHA-256 of the URL token: what ingest looks a request up by.
    pub token_hash: String,
    /// The token's first characters, to tell URLs apart in a list.
    pub token_prefix: String,
    /// The signature scheme senders must sign with; `None`: no check.
    pub verify: Option<Value>,
    /// The verification secret, sealed under `sealed::source_secret(id)`.
    pub secret_sealed: Option<Vec<u8>>,
    /// When it was created; also the list order.
    pub created_at: DateTime<Utc>,
    /// When ingest last answered a request to it.
    pub last_request_at: Option<DateTime<Utc>>,
    /// What ingest answered then.
    pub last_status: Option<i32>,
}

/// One request ingest answered at a source.
#[derive(Debug, Clone)]
pub(crate) struct RequestRow {
    /// `sreq_…`, made by ingest.
    pub id: String,
    /// The source it came to.
    pub source_id: String,
    /// The source's tenant.
    pub tenant: String,
    /// When ingest answered it.
    pub received_at: DateTime<Utc>,
    /// The HTTP status answered.
    pub status: i32,
    /// The error code of a refusal.
    pub reason: Option<String>,
    /// The event it made, for a `202`.
    pub event_id: Option<String>,
}

const COLUMNS: &str = "id, tenant, name, event_type, token_hash, token_prefix, verify, \
     secret_sealed, created_at, last_request_at, last_status";

fn read(row: &PgRow) -> Result<SourceRow, sqlx::Error> {
    Ok(SourceRow {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        name: row.try_get("name")?,
        event_type: row.try_get("event_type")?,
        token_hash: row.try_get("token_hash")?,
        token_prefix: row.try_get("token_prefix")?,
        verify: row.try_get("verify")?,
        secret_sealed: row.try_get("secret_sealed")?,
        created_at: row.try_get("created_at")?,
        last_request_at: row.try_get("last_request_at")?,
        last_status: row.try_get("last_status")?,
    })
}

/// Inserts `new` unless its tenant already has `max` sources (`None`
/// then).
pub(crate) async fn insert(
    pool: &PgPool,
    new: &SourceRow,
    max: u32,
) -> Result<Option<SourceRow>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !super::tenant_has_room(&mut tx, "sources", &new.tenant, max).await? {
        return Ok(None);
    }
    let sql = format!(
        "INSERT INTO sources (id, tenant, name, event_type, token_hash, token_prefix, verify, \
         secret_sealed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(&new.id)
        .bind(&new.tenant)
        .bind(&new.name)
        .bind(&new.event_type)
        .bind(&new.token_hash)
        .bind(&new.token_prefix)
        .bind(&new.verify)
        .bind(&new.secret_sealed)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    read(&row).map(Some)
}

/// One source of `tenant`.
pub(crate) async fn get(
    pool: &PgPool,
    tenant: &str,
    id: &str,
) -> Result<Option<SourceRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM sources WHERE tenant = $1 AND id = $2");
    let row = sqlx::query(&sql)
        .bind(tenant)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(read).transpose()
}

/// A page of `tenant`'s sources (every tenant's when `None`: what ingest
/// loads), oldest first.
pub(crate) async fn list(
    pool: &PgPool,
    tenant: Option<&str>,
    page: &Page,
) -> Result<Vec<SourceRow>, sqlx::Error> {
    let (after_at, after_id) = page.after_key();
    let sql = format!(
        "SELECT {COLUMNS} FROM sources WHERE ($1::text IS NULL OR tenant = $1) \
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

/// The cursor key of a source in [`list`]'s order.
pub(crate) fn cursor_of(row: &SourceRow) -> Cursor {
    Cursor {
        at: row.created_at,
        id: row.id.clone(),
    }
}

/// Deletes one source of `tenant`; `false` when it has none by that id.
pub(crate) async fn delete(pool: &PgPool, tenant: &str, id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM sources WHERE tenant = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// Stores ingest's notes of requests (a redelivered note is skipped by its
/// id) and moves each source's last request forward.
pub(crate) async fn insert_requests(
    tx: &mut PgConnection,
    rows: &[RequestRow],
) -> Result<u64, sqlx::Error> {
    let mut inserted = 0;
    for row in rows {
        let done = sqlx::query(
            "INSERT INTO source_requests (id, source_id, tenant, received_at, status, reason, event_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&row.id)
        .bind(&row.source_id)
        .bind(&row.tenant)
        .bind(row.received_at)
        .bind(row.status)
        .bind(&row.reason)
        .bind(&row.event_id)
        .execute(&mut *tx)
        .await?;
        inserted += done.rows_affected();
        sqlx::query(
            "UPDATE sources SET last_request_at = $2, last_status = $3 \
             WHERE id = $1 AND (last_request_at IS NULL OR last_request_at <= $2)",
        )
        .bind(&row.source_id)
        .bind(row.received_at)
        .bind(row.status)
        .execute(&mut *tx)
        .await?;
    }
    Ok(inserted)
}

/// A page of one source's requests, newest first.
pub(crate) async fn list_requests(
    pool: &PgPool,
    source_id: &str,
    page: &Page,
) -> Result<Vec<RequestRow>, sqlx::Error> {
    let (after_at, after_id) = page.after_key();
    let rows = sqlx::query(
        "SELECT id, source_id, tenant, received_at, status, reason, event_id FROM source_requests \
         WHERE source_id = $1 AND ($2::timestamptz IS NULL OR (received_at, id) < ($2, $3)) \
         ORDER BY received_at DESC, id DESC LIMIT $4",
    )
    .bind(source_id)
    .bind(after_at)
    .bind(after_id)
    .bind(page.fetch())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(RequestRow {
                id: row.try_get("id")?,
                source_id: row.try_get("source_id")?,
                tenant: row.try_get("tenant")?,
                received_at: row.try_get("received_at")?,
                status: row.try_get("status")?,
                reason: row.try_get("reason")?,
                event_id: row.try_get("event_id")?,
            })
        })
        .collect()
}

/// The cursor key of a request in [`list_requests`]'s order.
pub(crate) fn request_cursor_of(row: &RequestRow) -> Cursor {
    Cursor {
        at: row.received_at,
        id: row.id.clone(),
    }
}
