//! PostgreSQL access, one module per table, with runtime-checked queries
//! (no compile-time database needed).

pub(crate) mod api_keys;
pub(crate) mod attempts;
pub(crate) mod dead_letters;
pub(crate) mod event_types;
pub(crate) mod parked;
pub(crate) mod sources;
pub(crate) mod subscriptions;
pub(crate) mod verification;

/// Whether `tenant` has fewer than `max` rows in `table`, holding a
/// per-tenant, per-table advisory lock for the rest of `tx`, so the count
/// and the insert that follows are one step even when two creates race.
/// `table` is one of this crate's table names, never input.
pub(crate) async fn tenant_has_room(
    tx: &mut sqlx::PgConnection,
    table: &'static str,
    tenant: &str,
    max: u32,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('hookline.' || $1 || '/' || $2, 0))",
    )
    .bind(table)
    .bind(tenant)
    .execute(&mut *tx)
    .await?;
    let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE tenant = $1"))
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await?;
    Ok(count < i64::from(max))
}

/// Whether an error will recur however often the same data is written
/// (SQLSTATE class 22, data exception, or 23, integrity violation), as
/// opposed to an outage worth waiting out.
pub(crate) fn is_permanent(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
        sqlx::Error::Encode(_) | sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => true,
        _ => false,
    }
}

/// Text PostgreSQL will store: no NUL bytes (a `TEXT` column refuses them),
/// at most `max_chars` characters.
pub(crate) fn clean(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| *c != '\0')
        .take(max_chars)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaned_text_has_no_nul_and_is_bounded() {
        assert_eq!(clean("a\0b", 10), "ab");
        assert_eq!(clean("abcdef", 3), "abc");
    }
}
