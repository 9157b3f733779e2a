//! Pruning what the store keeps by age: attempts and inbound source
//! requests (`api.attempt_retention`),
//! dead letters (`api.dead_letter_retention`) and parked messages
//! (`api.parked_retention`). Dead letters and parked messages hold event
//! bodies, so they must not outlive the retention an operator promised.

use std::time::Duration;

use chrono::Utc;
use hookline_config::ApiSettings;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::db::Database;

/// Pause between prunes: a row may outlive its retention by up to this long.
const INTERVAL: Duration = Duration::from_secs(600);
/// Rows deleted per statement, so no single delete holds locks for long.
const CHUNK: i64 = 5000;

/// One table pruned by the age of one indexed timestamp column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    table: &'static str,
    column: &'static str,
    retention: Duration,
}

impl Rule {
    /// Every table with a retention key.
    pub(crate) fn all(api: &ApiSettings) -> Vec<Rule> {
        vec![
            Rule {
                table: "attempts",
                column: "at",
                retention: api.attempt_retention,
            },
            Rule {
                table: "source_requests",
                column: "received_at",
                retention: api.attempt_retention,
            },
            Rule {
                table: "dead_letters",
                column: "dead_at",
                retention: api.dead_letter_retention,
            },
            Rule {
                table: "parked_messages",
                column: "parked_at",
                retention: api.parked_retention,
            },
        ]
    }
}

/// Prunes once the database is ready, then every ten minutes.
pub(crate) async fn run(db: Database, rules: Vec<Rule>, token: CancellationToken) {
    let Some(pool) = db.ready(&token).await else {
        return;
    };
    loop {
        for rule in &rules {
            prune(pool, *rule, &token).await;
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}

/// Deletes rows older than the rule's retention, a chunk at a time.
pub(crate) async fn prune(pool: &PgPool, rule: Rule, token: &CancellationToken) -> u64 {
    let Ok(retention) = chrono::Duration::from_std(rule.retention) else {
        return 0;
    };
    let cutoff = Utc::now() - retention;
    // Table and column come from the fixed list above, never from input.
    let sql = format!(
        "DELETE FROM {table} WHERE ctid IN \
         (SELECT ctid FROM {table} WHERE {column} < $1 ORDER BY {column} LIMIT $2)",
        table = rule.table,
        column = rule.column,
    );
    let mut total = 0;
    while !token.is_cancelled() {
        match sqlx::query(&sql)
            .bind(cutoff)
            .bind(CHUNK)
            .execute(pool)
            .await
        {
            Ok(done) => {
                total += done.rows_affected();
                if done.rows_affected() < CHUNK as u64 {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(%error, table = rule.table, "cannot prune; trying again later");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(deleted = total, table = rule.table, %cutoff, "pruned rows past their retention");
    }
    total
}
