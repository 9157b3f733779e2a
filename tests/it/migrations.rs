//! A database migrated by the runner before `sqlx::migrate!` is carried
//! over: its versions are recorded for sqlx, nothing runs twice, and the
//! next start is a no-op.

use hookline_tests::TestEnv;
use sqlx::Executor as _;

const OLD: [(&str, &str); 3] = [
    (
        "0001_initial",
        include_str!("../../crates/hookline-api/migrations/0001_initial.sql"),
    ),
    (
        "0002_retention_and_sealing",
        include_str!("../../crates/hookline-api/migrations/0002_retention_and_sealing.sql"),
    ),
    (
        "0003_subscription_revisions",
        include_str!("../../crates/hookline-api/migrations/0003_subscription_revisions.sql"),
    ),
];

/// Every migration there is now: the carried-over ones, and those written
/// after `sqlx::migrate!` took over, which a carried-over database still
/// runs.
const ALL: i64 = 8;

/// A test's own database with nothing in it yet: no service is started, so
/// nothing migrates behind the test's back. The env keeps the database alive.
async fn empty_database() -> (TestEnv, sqlx::PgPool) {
    let env = TestEnv::bare().await;
    let pool = sqlx::PgPool::connect(env.settings.database.url.expose())
        .await
        .expect("database");
    (env, pool)
}

#[tokio::test]
async fn a_database_migrated_by_the_previous_runner_is_carried_over_and_nothing_runs_twice() {
    let (_env, pool) = empty_database().await;
    // What the previous runner left: the schema and its own version table.
    pool.execute("CREATE TABLE schema_migrations (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        .await
        .expect("schema_migrations");
    for (version, sql) in OLD {
        pool.execute(sql).await.expect("old migration");
        sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
            .bind(version)
            .execute(&pool)
            .await
            .expect("record");
    }

    // Running them again would fail ("relation already exists").
    hookline_api::migrate(&pool).await.expect("carried over");
    hookline_api::migrate(&pool)
        .await
        .expect("and a no-op the next time");
    let recorded: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .expect("_sqlx_migrations");
    assert_eq!(
        recorded,
        (1..=ALL).map(|version| (version, true)).collect::<Vec<_>>(),
        "the old ones carried over, the newer ones run"
    );
}

#[tokio::test]
async fn a_fresh_database_gets_every_migration_once_even_from_concurrent_starts() {
    let (_env, pool) = empty_database().await;
    let (a, b) = tokio::join!(hookline_api::migrate(&pool), hookline_api::migrate(&pool));
    a.expect("first replica");
    b.expect("second replica");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(count, ALL);
    let revision: Option<String> =
        sqlx::query_scalar("SELECT column_name::text FROM information_schema.columns WHERE table_name = 'subscriptions' AND column_name = 'revision'")
            .fetch_optional(&pool)
            .await
            .expect("columns");
    assert_eq!(revision.as_deref(), Some("revision"));
}
