//! `event_types`: the catalogue, global to every tenant (the product
//! defines its events; tenants subscribe to them).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::cursor::{Cursor, Page};

/// One catalogue entry.
#[derive(Debug, Clone)]
pub(crate) struct EventTypeRow {
    /// The event type itself, such as `lead.created`.
    pub name: String,
    /// For people choosing events on a settings page.
    pub description: String,
    /// JSON Schema that each event's `data` must satisfy, when set.
    pub schema: Option<Value>,
    /// A typical `data`, the sample of test sends and previews.
    pub example: Option<Value>,
    /// When it was last created or replaced.
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "name, description, schema, example, updated_at";

fn read(row: &PgRow) -> Result<EventTypeRow, sqlx::Error> {
    Ok(EventTypeRow {
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        schema: row.try_get("schema")?,
        example: row.try_get("example")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Creates or replaces `row.name`; answers the stored row.
pub(crate) async fn put(pool: &PgPool, row: &EventTypeRow) -> Result<EventTypeRow, sqlx::Error> {
    let sql = format!(
        "INSERT INTO event_types (name, description, schema, example) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description, \
             schema = EXCLUDED.schema, example = EXCLUDED.example, updated_at = now() \
         RETURNING {COLUMNS}"
    );
    let stored = sqlx::query(&sql)
        .bind(&row.name)
        .bind(&row.description)
        .bind(&row.schema)
        .bind(&row.example)
        .fetch_one(pool)
        .await?;
    read(&stored)
}

/// One entry, if it exists.
pub(crate) async fn get(pool: &PgPool, name: &str) -> Result<Option<EventTypeRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM event_types WHERE name = $1");
    let row = sqlx::query(&sql).bind(name).fetch_optional(pool).await?;
    row.as_ref().map(read).transpose()
}

/// Removes an entry; `false` when there was none.
pub(crate) async fn delete(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM event_types WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// A page in name order, after the cursor's name.
pub(crate) async fn list(pool: &PgPool, page: &Page) -> Result<Vec<EventTypeRow>, sqlx::Error> {
    let after = page.after.as_ref().map(|c| c.id.as_str());
    let sql = format!(
        "SELECT {COLUMNS} FROM event_types WHERE ($1::text IS NULL OR name > $1) \
         ORDER BY name LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(after)
        .bind(page.fetch())
        .fetch_all(pool)
        .await?;
    rows.iter().map(read).collect()
}

/// The cursor of an entry in [`list`]'s order (by name; the time is not
/// used).
pub(crate) fn cursor_of(row: &EventTypeRow) -> Cursor {
    Cursor {
        at: row.updated_at,
        id: row.name.clone(),
    }
}
