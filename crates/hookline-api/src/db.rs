//! The PostgreSQL pool, and the task that migrates and then watches it.
//!
//! The pool connects lazily, so the api starts (and answers `503` on its
//! database routes) while PostgreSQL is down; the watcher keeps trying to
//! migrate and only then opens the routes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookline_config::DatabaseSettings;
use hookline_runtime::Readiness;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// How long a request waits for a pooled connection before answering 503;
/// short, because a client would rather retry than hang.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Interval of the `SELECT 1` behind the `database` readiness check.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The pool plus whether the schema is known to be in place.
#[derive(Clone, Debug)]
pub(crate) struct Database {
    pool: PgPool,
    migrated: Arc<AtomicBool>,
}

impl Database {
    /// Builds the pool without connecting; fails only on a malformed URL.
    pub fn connect_lazy(settings: &DatabaseSettings) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy(settings.url.expose())?;
        Ok(Self {
            pool,
            migrated: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The pool for a request, or `503` until migrations have run.
    pub fn pool(&self) -> Result<&PgPool, ApiError> {
        if self.migrated.load(Ordering::Acquire) {
            Ok(&self.pool)
        } else {
            Err(ApiError::Unavailable(
                "the database is not available yet; try again later".into(),
            ))
        }
    }

    /// Waits until the schema is in place; `None` when shutdown came first.
    /// Background tasks call this before their first query.
    pub async fn ready(&self, token: &CancellationToken) -> Option<&PgPool> {
        while !self.migrated.load(Ordering::Acquire) {
            tokio::select! {
                _ = token.cancelled() => return None,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        Some(&self.pool)
    }

    /// Closes the pool's connections at the end of `run`.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Migrates (retrying until PostgreSQL answers), then checks the connection
/// every second and reports it as the `database` readiness.
pub(crate) async fn watch(db: Database, readiness: Readiness, token: CancellationToken) {
    readiness.set("database", false);
    let mut delay = Duration::from_millis(500);
    loop {
        match crate::migrate::migrate(&db.pool).await {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot migrate the database; retrying"
                );
            }
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    db.migrated.store(true, Ordering::Release);
    let mut up = false;
    loop {
        let check = sqlx::query("SELECT 1").execute(&db.pool);
        let ok = matches!(tokio::time::timeout(CHECK_INTERVAL, check).await, Ok(Ok(_)));
        if ok != up {
            if ok {
                tracing::info!("database reachable");
            } else {
                tracing::warn!("database unreachable");
            }
            up = ok;
        }
        readiness.set("database", ok);
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(CHECK_INTERVAL) => {}
        }
    }
}
