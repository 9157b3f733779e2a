//! Keeping ingest's copies of what the api owns (the event type catalogue,
//! the inbound sources) current without a database: each is read whole
//! from the api at start, again whenever `hookline.control` announces a
//! change of its kind, and every `ingest.catalogue_refresh` as a safety
//! net for a missed message.

use std::sync::Arc;
use std::time::Duration;

use hookline_amqp::{next_control, supervise, AmqpError, SessionContext};
use hookline_proto::ChangeKind;
use hookline_runtime::{Readiness, Shutdown};
use prometheus::IntCounter;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::IngestConfig;

/// Pause before retrying a read that failed (the api is down or starting).
const RETRY: Duration = Duration::from_secs(1);

/// Why a copy could not be read; the last good one keeps serving.
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

/// One page of an api list.
#[derive(Deserialize)]
struct Page<T> {
    data: Vec<T>,
    next_cursor: Option<String>,
}

/// Reads lists through the api with `api.admin_token`.
#[derive(Clone)]
pub struct ApiReader {
    http: reqwest::Client,
    api_url: String,
    token: hookline_config::Secret,
}

impl ApiReader {
    /// A reader of `config.api_url`.
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

    /// Every item of the list at `path`, all pages.
    pub async fn fetch_all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, FetchError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}{path}?limit=200", self.api_url);
            if let Some(cursor) = &cursor {
                url.push_str("&cursor=");
                url.extend(form_urlencoded::byte_serialize(cursor.as_bytes()));
            }
            let http = |source| FetchError::Http {
                url: url.clone(),
                source,
            };
            let page: Page<T> = self
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
            items.extend(page.data);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(items),
            }
        }
    }
}

/// A copy to keep current: the change kind that announces it, and what
/// reloads it (answering how many entries it now holds).
pub struct Mirror {
    /// For logs.
    pub what: &'static str,
    /// The control message that means "read me again".
    pub kind: ChangeKind,
    /// Reads it whole and swaps it in.
    pub reload: Box<
        dyn Fn() -> futures_util::future::BoxFuture<'static, Result<usize, FetchError>>
            + Send
            + Sync,
    >,
}

/// Starts one reader per mirror, and the control listener that wakes them.
pub fn spawn(
    shutdown: &Shutdown,
    config: &IngestConfig,
    mirrors: Vec<Mirror>,
    control_ignored: IntCounter,
) {
    let mut wakes = Vec::new();
    for mirror in mirrors {
        let wake = Arc::new(Notify::new());
        wakes.push((mirror.kind, wake.clone()));
        shutdown.tracker.spawn(keep_current(
            mirror,
            wake,
            config.catalogue_refresh,
            shutdown.token.clone(),
        ));
    }
    let wakes = Arc::new(wakes);
    let ctx = SessionContext {
        broker: config.broker.clone(),
        name: "hookline-ingest-control".into(),
        reconnect_delay: Duration::from_secs(1),
        // Ingest's readiness follows its publisher, not this listener: a
        // missed change is caught by the periodic read.
        readiness: Readiness::new(),
        reconnects: IntCounter::new("unregistered", "control reconnects")
            .unwrap_or_else(|_| unreachable!("a literal, valid metric name")),
        token: shutdown.token.clone(),
    };
    let token = shutdown.token.clone();
    shutdown.tracker.spawn(async move {
        supervise(ctx, |connection| {
            let (wakes, token, ignored) = (wakes.clone(), token.clone(), control_ignored.clone());
            async move { listen(&connection, &wakes, &token, &ignored).await }
        })
        .await;
    });
}

/// Wakes the reader of each announced kind, and every reader once per
/// (re)connect for the changes made while this ingest was not listening.
async fn listen(
    connection: &lapin::Connection,
    wakes: &[(ChangeKind, Arc<Notify>)],
    token: &CancellationToken,
    ignored: &IntCounter,
) -> Result<(), AmqpError> {
    let (_channel, mut consumer) =
        hookline_amqp::subscribe_control(connection, "ingest-control").await?;
    for (_, wake) in wakes {
        wake.notify_one();
    }
    loop {
        // `next_control` waits forever once cancelled (a consumer session
        // decides when it ends); ingest has no such session, so this
        // listener ends itself and lets shutdown finish.
        let message = tokio::select! {
            message = next_control(&mut consumer, token, ignored) => message?,
            _ = token.cancelled() => return Ok(()),
        };
        if let Some((_, kind)) = message.change {
            for (_, wake) in wakes.iter().filter(|(k, _)| *k == kind) {
                wake.notify_one();
            }
        }
    }
}

/// Reloads when woken, after `interval`, or after [`RETRY`] while reads
/// fail. A wake-up during a read is kept by `Notify`, so the newest change
/// is always read after it was announced.
async fn keep_current(
    mirror: Mirror,
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
        match (mirror.reload)().await {
            Ok(entries) => {
                if failing {
                    tracing::info!(entries, what = mirror.what, "read from the api again");
                }
                failing = false;
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, what = mirror.what, "cannot read from the api; serving the last copy");
                }
                failing = true;
            }
        }
    }
}
