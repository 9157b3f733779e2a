//! Rows of `subscriptions`, read alike by the api and by fanout.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

/// One stored subscription.
#[derive(Debug, Clone)]
pub struct SubscriptionRow {
    /// `sub_…`.
    pub id: String,
    /// Owner.
    pub tenant: String,
    /// Free text for people.
    pub name: String,
    /// Where deliveries go.
    pub url: String,
    /// Patterns as given.
    pub event_types: Vec<String>,
    /// A disabled subscription receives nothing.
    pub enabled: bool,
    /// False while a `verification: "challenge"` subscription waits for
    /// its endpoint to echo the token: it then receives nothing, as if
    /// disabled (migration 0007).
    pub verified: bool,
    /// The current secret, sealed.
    pub secret_sealed: Vec<u8>,
    /// The rotated-out secret, sealed, while it still signs.
    pub previous_secret_sealed: Option<Vec<u8>>,
    /// When the previous secret stops signing.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// The contract's `signature` object.
    pub signature: Value,
    /// Static headers in clear, as versions before header sealing wrote
    /// them; `{}` once the row is written or re-sealed by this version.
    pub headers: Value,
    /// Static headers as a sealed JSON object (`hookline_model::sealed`);
    /// `None` when there are none or the row predates sealing.
    pub headers_sealed: Option<Vec<u8>>,
    /// Time of the newest recorded attempt.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Its status.
    pub last_status: Option<String>,
    /// Its HTTP status, if an answer came.
    pub last_response_status: Option<i32>,
    /// Its error excerpt.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change by a client (or a 410 disable).
    pub updated_at: DateTime<Utc>,
    /// Number of the last change to where or how it delivers (migration
    /// 0003); tasks and control messages carry it.
    pub revision: i64,
    /// The contract's delivery options (`method`, `body`, `filter`) as one
    /// JSON object (migration 0005); `{}` delivers the standard body.
    pub options: Value,
}

/// Every column of [`SubscriptionRow`], for `SELECT` and `RETURNING`.
pub const COLUMNS: &str = "id, tenant, name, url, event_types, enabled, verified, secret_sealed, previous_secret_sealed, \
     previous_secret_expires_at, signature, headers, headers_sealed, last_attempt_at, last_status, last_response_status, \
     last_error, created_at, updated_at, revision, options";

/// Reads a row selected with [`COLUMNS`].
pub fn read(row: &PgRow) -> Result<SubscriptionRow, sqlx::Error> {
    Ok(SubscriptionRow {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        event_types: row.try_get("event_types")?,
        enabled: row.try_get("enabled")?,
        verified: row.try_get("verified")?,
        secret_sealed: row.try_get("secret_sealed")?,
        previous_secret_sealed: row.try_get("previous_secret_sealed")?,
        previous_secret_expires_at: row.try_get("previous_secret_expires_at")?,
        signature: row.try_get("signature")?,
        headers: row.try_get("headers")?,
        headers_sealed: row.try_get("headers_sealed")?,
        last_attempt_at: row.try_get("last_attempt_at")?,
        last_status: row.try_get("last_status")?,
        last_response_status: row.try_get("last_response_status")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        revision: row.try_get("revision")?,
        options: row.try_get("options")?,
    })
}

/// Every enabled and verified subscription, or one tenant's: what fanout
/// matches against.
pub async fn load_enabled(
    pool: &PgPool,
    tenant: Option<&str>,
) -> Result<Vec<SubscriptionRow>, sqlx::Error> {
    let rows = match tenant {
        Some(tenant) => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM subscriptions WHERE enabled AND verified AND tenant = $1"
            ))
            .bind(tenant)
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM subscriptions WHERE enabled AND verified"
            ))
            .fetch_all(pool)
            .await?
        }
    };
    rows.iter().map(read).collect()
}
