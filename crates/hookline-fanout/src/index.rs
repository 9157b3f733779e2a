//! The in-memory subscription index and its loading from PostgreSQL.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use hookline_model::matching::{Identified, Pattern, SubscriptionIndex};
use hookline_model::sealed;
use hookline_proto::Signature;
use hookline_signature::SignatureScheme;
use sqlx::{PgPool, Row};

/// What fanout copies into each task of one subscription.
#[derive(Debug)]
pub struct Target {
    /// Subscription id.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// Signing secrets, newest first.
    pub secrets: Vec<String>,
    /// Signing scheme.
    pub signature: Signature,
    /// Static headers.
    pub headers: HashMap<String, String>,
}

impl Identified for Target {
    fn id(&self) -> &str {
        &self.id
    }
}

/// The index shared by the event consumer and the loaders.
pub type SharedIndex = Arc<RwLock<SubscriptionIndex<Target>>>;

const SELECT: &str = "SELECT id, tenant, url, event_types, secret_sealed, previous_secret_sealed, \
     previous_secret_expires_at, signature, headers FROM subscriptions WHERE enabled";

/// Loads every enabled subscription.
pub async fn load_all(
    pool: &PgPool,
    secret_key: &str,
) -> Result<SubscriptionIndex<Target>, sqlx::Error> {
    let rows = sqlx::query(SELECT).fetch_all(pool).await?;
    Ok(build(rows, secret_key))
}

/// Loads one tenant's enabled subscriptions.
pub async fn load_tenant(
    pool: &PgPool,
    secret_key: &str,
    tenant: &str,
) -> Result<SubscriptionIndex<Target>, sqlx::Error> {
    let rows = sqlx::query(&format!("{SELECT} AND tenant = $1"))
        .bind(tenant)
        .fetch_all(pool)
        .await?;
    Ok(build(rows, secret_key))
}

fn build(rows: Vec<sqlx::postgres::PgRow>, secret_key: &str) -> SubscriptionIndex<Target> {
    let now = Utc::now();
    let mut index = SubscriptionIndex::default();
    for row in rows {
        match target(&row, secret_key, now) {
            Ok((tenant, patterns, target)) => index.insert(&tenant, &patterns, Arc::new(target)),
            Err(reason) => {
                let id: String = row.try_get("id").unwrap_or_default();
                tracing::error!(subscription_id = %id, %reason, "skipping a subscription that cannot be loaded");
            }
        }
    }
    index
}

fn target(
    row: &sqlx::postgres::PgRow,
    secret_key: &str,
    now: DateTime<Utc>,
) -> Result<(String, Vec<Pattern>, Target), String> {
    let get_err = |e: sqlx::Error| e.to_string();
    let id: String = row.try_get("id").map_err(get_err)?;
    let tenant: String = row.try_get("tenant").map_err(get_err)?;
    let event_types: Vec<String> = row.try_get("event_types").map_err(get_err)?;
    let patterns = event_types
        .iter()
        .filter_map(|p| Pattern::parse(p))
        .collect();
    let current: Vec<u8> = row.try_get("secret_sealed").map_err(get_err)?;
    let mut secrets = vec![sealed::open(secret_key, &current).map_err(|e| e.to_string())?];
    let previous: Option<Vec<u8>> = row.try_get("previous_secret_sealed").map_err(get_err)?;
    let expires: Option<DateTime<Utc>> =
        row.try_get("previous_secret_expires_at").map_err(get_err)?;
    if let (Some(previous), Some(expires)) = (previous, expires) {
        if expires > now {
            secrets.push(sealed::open(secret_key, &previous).map_err(|e| e.to_string())?);
        }
    }
    let signature: serde_json::Value = row.try_get("signature").map_err(get_err)?;
    let scheme: SignatureScheme = serde_json::from_value(signature).map_err(|e| e.to_string())?;
    let headers: serde_json::Value = row.try_get("headers").map_err(get_err)?;
    let headers: HashMap<String, String> = serde_json::from_value(headers).unwrap_or_default();
    let url: String = row.try_get("url").map_err(get_err)?;
    Ok((
        tenant,
        patterns,
        Target {
            id,
            url,
            secrets,
            signature: hookline_deliverer::signature::to_proto(&scheme),
            headers,
        },
    ))
}
