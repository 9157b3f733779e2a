//! Keeping ingest's copy of the event type catalogue current without a
//! database: read whole from the api (`GET /v1/event-types`) at start,
//! again on every catalogue change announced on `hookline.control`, and
//! every `ingest.catalogue_refresh` as a safety net.
//!
//! Until the first read succeeds, ingest accepts events unchecked: fanout
//! checks every event against its own copy (loaded from PostgreSQL), so an
//! event ingest let through still ends in `hookline.events.invalid` with
//! its reason rather than at a receiver.

use std::sync::Arc;
use std::time::Duration;

use hookline_amqp::{next_control, supervise, AmqpError, SessionContext};
use hookline_catalogue::SharedCatalogue;
use hookline_proto::ChangeKind;
use hookline_runtime::{Readiness, Shutdown};
use prometheus::IntCounter;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::IngestConfig;

/// Pause before retrying a read that failed (the api is down or starting).
const RETRY: Duration = Duration::from_secs(1);

/// Why the catalogue could not be read; the last one keeps checking.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The api did not answer, or not with JSON.
    #[error("cannot read {url}: {source}")]
    Http {
        /// The page asked for.
        url: String,
        /// What reqwest saw.
        source: reqwest::Error,
    },
}

/// One page of `GET /v1/event-types`, as far as ingest reads it.
#[derive(Deserialize)]
struct Page {
    data: Vec<Entry>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    name: String,
    schema: Option<Value>,
}

/// Reads the catalogue through the api.
#[derive(Clone)]
pub struct CatalogueClient {
    http: reqwest::Client,
    api_url: String,
    token: hookline_config::Secret,
}

impl CatalogueClient {
    /// A client for `config.api_url`, authenticated with `api.admin_token`.
    pub fn new(config: &IngestConfig) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            api_url: config.api_url.clone(),
            token: config.api_token.clone(),
        }
    }

    /// Every `(type, schema)` of the catalogue that has a schema, all pages.
    pub async fn fetch(&self) -> Result<Vec<(String, Value)>, FetchError> {
        let mut schemas = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/v1/event-types?limit=200", self.api_url);
            if let Some(cursor) = &cursor {
                url.push_str("&cursor=");
                url.extend(form_urlencoded::byte_serialize(cursor.as_bytes()));
            }
            let http = |source| FetchError::Http {
                url: url.clone(),
                source,
            };
            let page: Page = self
                .http
                .get(&url)
                .bearer_auth(self.token.expose())
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(http)?
                .json()
                .await
                .map_err(http)?;
            schemas.extend(
                page.data
                    .into_iter()
                    .filter_map(|entry| Some((entry.name, entry.schema?))),
            );
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(schemas),
            }
        }
    }
}

/// Starts the reader and the control listener that wakes it.
pub fn spawn(
    shutdown: &Shutdown,
    config: &IngestConfig,
    catalogue: SharedCatalogue,
    control_ignored: IntCounter,
) {
    let wake = Arc::new(Notify::new());
    let client = CatalogueClient::new(config);
    shutdown.tracker.spawn(keep_current(
        client,
        catalogue,
        wake.clone(),
        config.catalogue_refresh,
        shutdown.token.clone(),
    ));
    let ctx = SessionContext {
        broker: config.broker.clone(),
        name: "hookline-ingest-control".into(),
        reconnect_delay: Duration::from_secs(1),
        // Ingest's readiness follows its publisher, not this listener: a
        // missed catalogue change is caught by the periodic read.
        readiness: Readiness::new(),
        reconnects: IntCounter::new("unregistered", "control reconnects")
            .unwrap_or_else(|_| unreachable!("a literal, valid metric name")),
        token: shutdown.token.clone(),
    };
    let token = shutdown.token.clone();
    shutdown.tracker.spawn(async move {
        supervise(ctx, |connection| {
            let (wake, token, ignored) = (wake.clone(), token.clone(), control_ignored.clone());
            async move { listen(&connection, &wake, &token, &ignored).await }
        })
        .await;
    });
}

/// Wakes the reader for every catalogue change, and once per (re)connect
/// for the changes made while this ingest was not listening.
async fn listen(
    connection: &lapin::Connection,
    wake: &Notify,
    token: &CancellationToken,
    ignored: &IntCounter,
) -> Result<(), AmqpError> {
    let (_channel, mut consumer) =
        hookline_amqp::subscribe_control(connection, "ingest-control").await?;
    wake.notify_one();
    loop {
        // `next_control` waits forever once cancelled (a consumer session
        // decides when it ends); ingest has no such session, so this
        // listener ends itself and lets shutdown finish.
        let message = tokio::select! {
            message = next_control(&mut consumer, token, ignored) => message?,
            _ = token.cancelled() => return Ok(()),
        };
        if matches!(message.change, Some((_, ChangeKind::Catalogue))) {
            wake.notify_one();
        }
    }
}

/// Reads the catalogue when woken, after `interval`, or after [`RETRY`]
/// while reads fail. A wake-up during a read is kept by `Notify`, so the
/// newest change is always read after it was announced.
async fn keep_current(
    client: CatalogueClient,
    catalogue: SharedCatalogue,
    wake: Arc<Notify>,
    interval: Duration,
    token: CancellationToken,
) {
    let mut failing = false;
    let mut first = true;
    loop {
        if !first {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(if failing { RETRY } else { interval }) => {}
                _ = token.cancelled() => return,
            }
        }
        first = false;
        match client.fetch().await {
            Ok(schemas) => {
                let types = catalogue.replace(schemas);
                if failing {
                    tracing::info!(types, "event type catalogue read from the api");
                }
                failing = false;
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "cannot read the event type catalogue; checking against the last one (fanout checks every event too)");
                }
                failing = true;
            }
        }
    }
}
