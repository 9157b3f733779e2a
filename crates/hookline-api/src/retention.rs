//! Pruning delivery history older than `api.attempt_retention`.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::db::Database;
use crate::store::attempts;

/// Pause between prunes.
const INTERVAL: Duration = Duration::from_secs(600);
/// Rows deleted per statement, so no single delete holds locks for long.
const CHUNK: i64 = 5000;

/// Prunes once the database is ready, then every ten minutes.
pub(crate) async fn run(db: Database, retention: Duration, token: CancellationToken) {
    let Some(pool) = db.ready(&token).await else {
        return;
    };
    loop {
        prune(pool, retention, &token).await;
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}

async fn prune(pool: &PgPool, retention: Duration, token: &CancellationToken) {
    let Ok(retention) = chrono::Duration::from_std(retention) else {
        return;
    };
    let cutoff = Utc::now() - retention;
    let mut total = 0;
    while !token.is_cancelled() {
        match attempts::delete_older_than(pool, cutoff, CHUNK).await {
            Ok(deleted) => {
                total += deleted;
                if deleted < CHUNK as u64 {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot prune old attempts; trying again later");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(deleted = total, %cutoff, "pruned old attempts");
    }
}
