//! The in-memory subscription index and its loading from PostgreSQL.
//!
//! Fanout never opens a secret: it copies each subscription's sealed secrets
//! and headers into its tasks as the api stored them, and only the deliverer
//! opens them, just before signing.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hookline_model::matching::{Identified, Pattern, SubscriptionIndex};
use hookline_model::versioned::VersionedIndex;
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
    /// Signing secrets as sealed by the api, newest first.
    pub sealed_secrets: Vec<Bytes>,
    /// Signing scheme.
    pub signature: Signature,
    /// Static headers as sealed by the api; empty when there are none.
    pub sealed_headers: Bytes,
    /// Static headers of a row the api has not re-sealed yet (written by a
    /// version before header sealing); empty otherwise.
    pub legacy_headers: HashMap<String, String>,
    /// The row's revision: deliverers re-shape or drop a task built from
    /// an older one than the newest change they have read.
    pub revision: u64,
}

impl Identified for Target {
    fn id(&self) -> &str {
        &self.id
    }
}

/// The index shared by the event consumer and the loaders, versioned so a
/// slow full load cannot undo a newer tenant reload.
pub type SharedIndex = Arc<RwLock<VersionedIndex<Target>>>;

const SELECT: &str = "SELECT id, tenant, url, event_types, secret_sealed, previous_secret_sealed, \
     previous_secret_expires_at, signature, headers, headers_sealed, revision FROM subscriptions WHERE enabled";

/// Loads every enabled subscription.
pub async fn load_all(pool: &PgPool) -> Result<SubscriptionIndex<Target>, sqlx::Error> {
    let rows = sqlx::query(SELECT).fetch_all(pool).await?;
    Ok(build(rows))
}

/// Loads one tenant's enabled subscriptions.
pub async fn load_tenant(
    pool: &PgPool,
    tenant: &str,
) -> Result<SubscriptionIndex<Target>, sqlx::Error> {
    let rows = sqlx::query(&format!("{SELECT} AND tenant = $1"))
        .bind(tenant)
        .fetch_all(pool)
        .await?;
    Ok(build(rows))
}

fn build(rows: Vec<sqlx::postgres::PgRow>) -> SubscriptionIndex<Target> {
    let now = Utc::now();
    let mut index = SubscriptionIndex::default();
    for row in rows {
        match target(&row, now) {
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
    let mut sealed_secrets = vec![Bytes::from(current)];
    let previous: Option<Vec<u8>> = row.try_get("previous_secret_sealed").map_err(get_err)?;
    let expires: Option<DateTime<Utc>> =
        row.try_get("previous_secret_expires_at").map_err(get_err)?;
    if let (Some(previous), Some(expires)) = (previous, expires) {
        if expires > now {
            sealed_secrets.push(Bytes::from(previous));
        }
    }
    let signature: serde_json::Value = row.try_get("signature").map_err(get_err)?;
    let scheme: SignatureScheme = serde_json::from_value(signature).map_err(|e| e.to_string())?;
    let sealed_headers: Option<Vec<u8>> = row.try_get("headers_sealed").map_err(get_err)?;
    let legacy_headers: serde_json::Value = row.try_get("headers").map_err(get_err)?;
    let legacy_headers: HashMap<String, String> =
        serde_json::from_value(legacy_headers).map_err(|e| format!("headers: {e}"))?;
    let url: String = row.try_get("url").map_err(get_err)?;
    let revision: i64 = row.try_get("revision").map_err(get_err)?;
    Ok((
        tenant,
        patterns,
        Target {
            id,
            url,
            sealed_secrets,
            signature: hookline_proto::signature::to_proto(&scheme),
            sealed_headers: sealed_headers.map(Bytes::from).unwrap_or_default(),
            legacy_headers,
            revision: revision.max(0) as u64,
        },
    ))
}
