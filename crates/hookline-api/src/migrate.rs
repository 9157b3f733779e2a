//! Schema migrations: `migrations/*.sql`, embedded by `sqlx::migrate!` and
//! applied at start. sqlx records each version with its checksum in
//! `_sqlx_migrations` (an edited, already applied migration is refused) and
//! holds an advisory lock while it runs, so several api replicas may start
//! at once.
//!
//! Databases migrated by versions before sqlx's migrator recorded their
//! versions in `schema_migrations`. Those are carried over once, under an
//! advisory lock of our own, so sqlx does not run them again.

use anyhow::Context as _;
use sqlx::migrate::{Migrate as _, Migrator};
use sqlx::{Acquire as _, PgPool};

/// Every migration, in order; a version is never edited once released.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Arbitrary, fixed key of the advisory lock that serialises the carry-over
/// (the ASCII of "hookline" read as an integer).
const LOCK_KEY: i64 = 0x686f_6f6b_6c69_6e65;

/// Applies migrations (used by run at start; tests call it too).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    carry_over_old_records(pool).await?;
    MIGRATOR
        .run(pool)
        .await
        .context("cannot apply the schema migrations")?;
    Ok(())
}

/// Records in `_sqlx_migrations` the versions the previous runner applied
/// (named like `0002_retention_and_sealing` in `schema_migrations`), with
/// the checksums of the files as they are now (they were never edited).
async fn carry_over_old_records(pool: &PgPool) -> anyhow::Result<()> {
    let mut connection = pool.acquire().await.context("cannot connect to migrate")?;
    let mut tx = connection
        .begin()
        .await
        .context("cannot open a migration transaction")?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *tx)
        .await
        .context("cannot take the migration lock")?;
    let (old, new): (bool, bool) = sqlx::query_as(
        "SELECT to_regclass('schema_migrations') IS NOT NULL, \
                to_regclass('_sqlx_migrations') IS NOT NULL",
    )
    .fetch_one(&mut *tx)
    .await
    .context("cannot look for the migration tables")?;
    if !old || new {
        return Ok(());
    }
    let applied: Vec<String> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await
        .context("cannot read schema_migrations")?;
    tx.ensure_migrations_table()
        .await
        .context("cannot create _sqlx_migrations")?;
    for migration in MIGRATOR.iter() {
        let name = format!(
            "{:04}_{}",
            migration.version,
            migration.description.replace(' ', "_")
        );
        if !applied.contains(&name) {
            continue;
        }
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, true, $3, 0)",
        )
        .bind(migration.version)
        .bind(migration.description.as_ref())
        .bind(migration.checksum.as_ref())
        .execute(&mut *tx)
        .await
        .with_context(|| format!("cannot carry over migration {name}"))?;
        tracing::info!(version = %name, "carried over a migration applied by the previous runner");
    }
    tx.commit().await.context("cannot commit the carry-over")?;
    Ok(())
}
