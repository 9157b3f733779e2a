//! The event type catalogue as fanout reads it: only the types that have a
//! schema, since only those are checked.

use serde_json::Value;
use sqlx::{PgPool, Row};

/// Every `(event type, schema)` of the catalogue that has a schema.
pub async fn load_schemas(pool: &PgPool) -> Result<Vec<(String, Value)>, sqlx::Error> {
    let rows = sqlx::query("SELECT name, schema FROM event_types WHERE schema IS NOT NULL")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("name")?, row.try_get("schema")?)))
        .collect()
}
