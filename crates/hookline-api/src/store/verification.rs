//! `verification_challenges`: each subscription's one open challenge, and
//! the steps that use it up and mark the subscription verified.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};

use hookline_store::subscriptions::{read, SubscriptionRow, COLUMNS};

/// How a verification attempt ended.
#[derive(Debug)]
pub(crate) enum Taken {
    /// The challenge was open and matched: the subscription, now verified.
    Verified(Box<SubscriptionRow>),
    /// The challenge matched but its time was up; it is gone now.
    Expired,
    /// No open challenge matches (a wrong token, or one used already).
    NoMatch,
}

/// Opens a challenge for `subscription_id`, replacing any open one, so only
/// the newest token verifies.
pub(crate) async fn open(
    pool: &PgPool,
    subscription_id: &str,
    event_id: &str,
    token_sha256: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO verification_challenges (subscription_id, event_id, token_sha256, expires_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (subscription_id) DO UPDATE SET event_id = EXCLUDED.event_id, \
         token_sha256 = EXCLUDED.token_sha256, expires_at = EXCLUDED.expires_at, created_at = now()",
    )
    .bind(subscription_id)
    .bind(event_id)
    .bind(token_sha256)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Closes the open challenge, if any (verification switched off).
pub(crate) async fn close(pool: &PgPool, subscription_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM verification_challenges WHERE subscription_id = $1")
        .bind(subscription_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Which column identifies the challenge being answered.
#[derive(Debug, Clone, Copy)]
pub(crate) enum By<'a> {
    /// A token typed in by the tenant, as its SHA-256.
    TokenSha256(&'a str),
    /// An echo recorded by a deliverer, by the challenge delivery's event id.
    EventId(&'a str),
}

/// Uses up the open challenge of `tenant`'s `subscription_id` if `by`
/// matches it, and marks the subscription verified if it is still in time.
/// The challenge row goes in both cases: a token verifies at most once.
pub(crate) async fn take(
    conn: &mut PgConnection,
    tenant: &str,
    subscription_id: &str,
    by: By<'_>,
) -> Result<Taken, sqlx::Error> {
    let (column, value) = match by {
        By::TokenSha256(digest) => ("token_sha256", digest),
        By::EventId(event_id) => ("event_id", event_id),
    };
    let sql = format!(
        "DELETE FROM verification_challenges c USING subscriptions s \
         WHERE c.subscription_id = $1 AND s.id = c.subscription_id AND s.tenant = $2 AND c.{column} = $3 \
         RETURNING c.expires_at > now() AS in_time"
    );
    let in_time: Option<bool> = sqlx::query(&sql)
        .bind(subscription_id)
        .bind(tenant)
        .bind(value)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| row.try_get("in_time"))
        .transpose()?;
    match in_time {
        None => Ok(Taken::NoMatch),
        Some(false) => Ok(Taken::Expired),
        Some(true) => {
            let sql = format!(
                "UPDATE subscriptions SET verified = TRUE, updated_at = now() \
                 WHERE id = $1 AND tenant = $2 RETURNING {COLUMNS}"
            );
            let row = sqlx::query(&sql)
                .bind(subscription_id)
                .bind(tenant)
                .fetch_one(&mut *conn)
                .await?;
            Ok(Taken::Verified(Box::new(read(&row)?)))
        }
    }
}
