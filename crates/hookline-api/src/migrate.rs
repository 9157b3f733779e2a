//! Schema migrations, embedded in the binary and applied at start.
//!
//! Several api replicas may start at once, so everything happens in one
//! transaction holding a transaction-scoped advisory lock: the second
//! replica waits, then finds every version already recorded in
//! `schema_migrations` and does nothing.

use anyhow::Context as _;
use sqlx::{Executor as _, PgPool};

/// Every migration, in order; a version is never edited once released.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial",
        include_str!("../migrations/0001_initial.sql"),
    ),
    (
        "0002_retention_and_sealing",
        include_str!("../migrations/0002_retention_and_sealing.sql"),
    ),
    (
        "0003_subscription_revisions",
        include_str!("../migrations/0003_subscription_revisions.sql"),
    ),
];

/// Arbitrary, fixed key of the advisory lock that serialises migrations
/// (the ASCII of "hookline" read as an integer).
const LOCK_KEY: i64 = 0x686f_6f6b_6c69_6e65;

/// Applies migrations (used by run at start; tests call it too).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let mut tx = pool
        .begin()
        .await
        .context("cannot open a migration transaction")?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *tx)
        .await
        .context("cannot take the migration lock")?;
    // Created under the lock, so concurrent replicas cannot race on it; the
    // existence check keeps PostgreSQL from logging an "already exists"
    // notice at every start.
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('schema_migrations') IS NOT NULL")
        .fetch_one(&mut *tx)
        .await
        .context("cannot look for schema_migrations")?;
    if !exists {
        // A plain `&str` runs as a simple query, which may hold several
        // statements (a migration file does).
        (&mut *tx)
            .execute(
                "CREATE TABLE schema_migrations (
                     version     TEXT PRIMARY KEY,
                     applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
                 )",
            )
            .await
            .context("cannot create schema_migrations")?;
    }
    for (version, sql) in MIGRATIONS {
        let applied: Option<String> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .with_context(|| format!("cannot read schema_migrations for {version}"))?;
        if applied.is_some() {
            continue;
        }
        (&mut *tx)
            .execute(*sql)
            .await
            .with_context(|| format!("migration {version} failed"))?;
        sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("cannot record migration {version}"))?;
        tracing::info!(version, "applied migration");
    }
    tx.commit().await.context("cannot commit the migrations")?;
    Ok(())
}
