//! The in-memory subscription index and its loading from PostgreSQL.
//!
//! Fanout never opens a secret: it copies each subscription's sealed secrets
//! and headers into its tasks as the api stored them, and only the deliverer
//! opens them, just before signing.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use chrono::Utc;
use hookline_model::matching::{Identified, Pattern, SubscriptionIndex};
use hookline_model::versioned::VersionedIndex;
use hookline_proto::SubscriptionShape;
use hookline_store::SubscriptionRow;
use sqlx::PgPool;

/// What fanout copies into each task of one subscription.
#[derive(Debug)]
pub struct Target {
    /// Subscription id.
    pub id: String,
    /// Where and how its deliveries go, credentials sealed
    /// (`hookline_store::shape`, the rule test sends and replays follow).
    pub shape: SubscriptionShape,
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

/// Loads every enabled subscription.
pub async fn load_all(pool: &PgPool) -> Result<SubscriptionIndex<Target>, sqlx::Error> {
    Ok(build(
        hookline_store::subscriptions::load_enabled(pool, None).await?,
    ))
}

/// Loads one tenant's enabled subscriptions.
pub async fn load_tenant(
    pool: &PgPool,
    tenant: &str,
) -> Result<SubscriptionIndex<Target>, sqlx::Error> {
    Ok(build(
        hookline_store::subscriptions::load_enabled(pool, Some(tenant)).await?,
    ))
}

fn build(rows: Vec<SubscriptionRow>) -> SubscriptionIndex<Target> {
    let now = Utc::now();
    let mut index = SubscriptionIndex::default();
    for row in rows {
        match hookline_store::shape(&row, now) {
            Ok(built) => {
                let patterns: Vec<Pattern> = row
                    .event_types
                    .iter()
                    .filter_map(|p| Pattern::parse(p))
                    .collect();
                let target = Target {
                    id: row.id,
                    shape: built.shape,
                    legacy_headers: built.legacy_headers.into_iter().collect(),
                    revision: row.revision.max(0) as u64,
                };
                index.insert(&row.tenant, &patterns, Arc::new(target));
            }
            Err(error) => {
                tracing::error!(%error, "skipping a subscription that cannot be loaded");
            }
        }
    }
    index
}
