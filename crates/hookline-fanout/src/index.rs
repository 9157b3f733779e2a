//! The in-memory subscription index and its loading from PostgreSQL.
//!
//! Fanout never opens a secret: it copies each subscription's sealed secrets
//! and headers into its tasks as the api stored them, and only the deliverer
//! opens them, just before signing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use chrono::Utc;
use hookline_catalogue::SharedCatalogue;
use hookline_model::matching::{Identified, Pattern, SubscriptionIndex};
use hookline_model::versioned::VersionedIndex;
use hookline_proto::SubscriptionShape;
use hookline_render::{DeliveryPlan, Limits};
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
    /// Its compiled delivery options (method, body, filter); `None` for a
    /// plain `POST` of the standard body.
    pub plan: Option<Arc<DeliveryPlan>>,
}

impl Identified for Target {
    fn id(&self) -> &str {
        &self.id
    }
}

/// The index shared by the event consumer and the loaders, versioned so a
/// slow full load cannot undo a newer tenant reload.
pub type SharedIndex = Arc<RwLock<VersionedIndex<Target>>>;

/// Compiled plans by subscription id, each with the revision it was
/// compiled from.
type PlanCache = Arc<Mutex<HashMap<String, (u64, Arc<DeliveryPlan>)>>>;

/// Loads subscriptions from PostgreSQL and compiles their delivery
/// options, reusing a compiled plan while its subscription's revision is
/// unchanged: templates and filters are compiled once per revision, not on
/// every reload of a tenant.
/// It also keeps the event type catalogue that events are checked against,
/// loaded from the same database.
#[derive(Clone)]
pub struct Loader {
    pool: PgPool,
    plans: PlanCache,
    catalogue: SharedCatalogue,
}

impl Loader {
    /// A loader over `pool` with nothing compiled yet.
    pub fn new(pool: PgPool) -> Self {
        Loader {
            pool,
            plans: Arc::default(),
            catalogue: SharedCatalogue::default(),
        }
    }

    /// The catalogue this loader keeps current, for the event consumer.
    pub fn catalogue(&self) -> SharedCatalogue {
        self.catalogue.clone()
    }

    /// Reloads the catalogue's schemas, each compiled once; on failure the
    /// last catalogue keeps checking.
    pub async fn reload_catalogue(&self) -> Result<usize, sqlx::Error> {
        let schemas = hookline_store::event_types::load_schemas(&self.pool).await?;
        Ok(self.catalogue.replace(schemas))
    }

    /// Loads every enabled subscription; plans of subscriptions no longer
    /// loaded are forgotten.
    pub async fn load_all(&self) -> Result<SubscriptionIndex<Target>, sqlx::Error> {
        let rows = hookline_store::subscriptions::load_enabled(&self.pool, None).await?;
        let live: HashSet<&str> = rows.iter().map(|row| row.id.as_str()).collect();
        self.plans.lock().retain(|id, _| live.contains(id.as_str()));
        Ok(self.build(rows))
    }

    /// Loads one tenant's enabled subscriptions.
    pub async fn load_tenant(
        &self,
        tenant: &str,
    ) -> Result<SubscriptionIndex<Target>, sqlx::Error> {
        let rows = hookline_store::subscriptions::load_enabled(&self.pool, Some(tenant)).await?;
        Ok(self.build(rows))
    }

    /// The compiled options of `row` at its revision; `None` for the
    /// standard delivery, which needs no plan.
    fn plan(
        &self,
        row: &SubscriptionRow,
        revision: u64,
    ) -> Result<Option<Arc<DeliveryPlan>>, String> {
        if row.options.as_object().is_some_and(|o| o.is_empty()) {
            return Ok(None);
        }
        let mut plans = self.plans.lock();
        if let Some((at, plan)) = plans.get(&row.id) {
            if *at == revision {
                return Ok(Some(plan.clone()));
            }
        }
        let plan = Arc::new(
            DeliveryPlan::from_stored(&row.options, Limits::default())
                .map_err(|e| e.to_string())?,
        );
        plans.insert(row.id.clone(), (revision, plan.clone()));
        Ok(Some(plan))
    }

    fn build(&self, rows: Vec<SubscriptionRow>) -> SubscriptionIndex<Target> {
        let now = Utc::now();
        let mut index = SubscriptionIndex::default();
        for row in rows {
            let revision = row.revision.max(0) as u64;
            let built = hookline_store::shape(&row, now).map_err(|e| e.to_string());
            match built.and_then(|built| Ok((built, self.plan(&row, revision)?))) {
                Ok((built, plan)) => {
                    let patterns: Vec<Pattern> = row
                        .event_types
                        .iter()
                        .filter_map(|p| Pattern::parse(p))
                        .collect();
                    let target = Target {
                        id: row.id,
                        shape: built.shape,
                        legacy_headers: built.legacy_headers.into_iter().collect(),
                        revision,
                        plan,
                    };
                    index.insert(&row.tenant, &patterns, Arc::new(target));
                }
                Err(error) => {
                    tracing::error!(subscription_id = %row.id, %error, "skipping a subscription that cannot be loaded");
                }
            }
        }
        index
    }
}
