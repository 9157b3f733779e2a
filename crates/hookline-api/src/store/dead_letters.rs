//! `dead_letters`: deliveries whose last attempt failed, with the encoded
//! task kept for replay.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::cursor::{Cursor, Page};

/// One stored dead letter.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetterRow {
    /// `dl_…`.
    pub id: String,
    /// Every query filters on it, so one tenant never sees another's.
    pub tenant: String,
    /// The subscription it was for (it may have been deleted since).
    pub subscription_id: String,
    /// The `webhook-id`, kept by a replay.
    pub delivery_id: String,
    /// The event that was not delivered; receivers deduplicate on it.
    pub event_id: String,
    /// Kept so the list can be read without decoding the task.
    pub event_type: String,
    /// Attempts made before parking.
    pub attempts: i32,
    /// HTTP status of the last attempt, if an answer came.
    pub last_response_status: Option<i32>,
    /// Error excerpt of the last attempt.
    pub last_error: Option<String>,
    /// When it was parked; `api.dead_letter_retention` counts from here.
    pub dead_at: DateTime<Utc>,
    /// The encoded `DeliveryTask`; empty in list results, which never need it.
    pub task: Vec<u8>,
}

const LIST_COLUMNS: &str =
    "id, tenant, subscription_id, delivery_id, event_id, event_type, attempts, \
     last_response_status, last_error, dead_at";

fn read(row: &PgRow, with_task: bool) -> Result<DeadLetterRow, sqlx::Error> {
    Ok(DeadLetterRow {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        subscription_id: row.try_get("subscription_id")?,
        delivery_id: row.try_get("delivery_id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        attempts: row.try_get("attempts")?,
        last_response_status: row.try_get("last_response_status")?,
        last_error: row.try_get("last_error")?,
        dead_at: row.try_get("dead_at")?,
        task: if with_task {
            row.try_get("task")?
        } else {
            Vec::new()
        },
    })
}

/// Stores a dead letter; `false` when this parking was already recorded
/// (same delivery and time: the message was redelivered).
pub(crate) async fn insert(
    conn: &mut PgConnection,
    dl: &DeadLetterRow,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO dead_letters (id, tenant, subscription_id, delivery_id, event_id, event_type, attempts, \
             last_response_status, last_error, dead_at, task) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (delivery_id, dead_at) DO NOTHING",
    )
    .bind(&dl.id)
    .bind(&dl.tenant)
    .bind(&dl.subscription_id)
    .bind(&dl.delivery_id)
    .bind(&dl.event_id)
    .bind(&dl.event_type)
    .bind(dl.attempts)
    .bind(dl.last_response_status)
    .bind(&dl.last_error)
    .bind(dl.dead_at)
    .bind(&dl.task)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// A page of `tenant`'s dead letters, newest first, optionally of one
/// subscription; one row more than the page to detect a next page.
pub(crate) async fn list(
    pool: &PgPool,
    tenant: &str,
    subscription_id: Option<&str>,
    page: &Page,
) -> Result<Vec<DeadLetterRow>, sqlx::Error> {
    let (before_at, before_id) = page.after_key();
    let sql = format!(
        "SELECT {LIST_COLUMNS} FROM dead_letters WHERE tenant = $1 \
             AND ($2::text IS NULL OR subscription_id = $2) \
             AND ($3::timestamptz IS NULL OR (dead_at, id) < ($3, $4)) \
         ORDER BY dead_at DESC, id DESC LIMIT $5"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant)
        .bind(subscription_id)
        .bind(before_at)
        .bind(before_id)
        .bind(page.fetch())
        .fetch_all(pool)
        .await?;
    rows.iter().map(|r| read(r, false)).collect()
}

/// The cursor key of a dead letter in [`list`]'s order.
pub(crate) fn cursor_of(row: &DeadLetterRow) -> Cursor {
    Cursor {
        at: row.dead_at,
        id: row.id.clone(),
    }
}

/// One dead letter of `tenant`, task included.
pub(crate) async fn get(
    pool: &PgPool,
    tenant: &str,
    id: &str,
) -> Result<Option<DeadLetterRow>, sqlx::Error> {
    let sql =
        format!("SELECT {LIST_COLUMNS}, task FROM dead_letters WHERE tenant = $1 AND id = $2");
    let row = sqlx::query(&sql)
        .bind(tenant)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(|r| read(r, true)).transpose()
}

/// Counts a replay once its task is confirmed by the broker.
pub(crate) async fn mark_replayed(
    pool: &PgPool,
    tenant: &str,
    id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE dead_letters SET replay_count = replay_count + 1, last_replayed_at = now() \
         WHERE tenant = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}
