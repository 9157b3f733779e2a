//! `parked_messages`: what a recorder could not decode, kept for an operator
//! instead of being redelivered forever.

use sqlx::PgConnection;

use super::clean;

/// Stores one message with the reason it was parked.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    queue: &str,
    reason: &str,
    payload: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO parked_messages (id, queue, reason, payload) VALUES ($1, $2, $3, $4)")
        .bind(hookline_model::ids::new_id("pm"))
        .bind(queue)
        .bind(clean(reason, 2000))
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}
