//! What a tenant reads of its sources' traffic (last request, recent
//! requests): ingest notes each request to a known source here, and one
//! task publishes the notes in batches to `hookline.source-requests`, with
//! a confirm, for the api to store.
//!
//! This log is an account of requests, not the events themselves (those
//! are confirmed before the `202`), so it is allowed to be lossy at the
//! edges: a note that finds the buffer full (the broker away for long) is
//! dropped and counted in `hookline_ingest_source_log_dropped_total`, and
//! notes still buffered when a process is killed are lost. A clean
//! shutdown publishes what is buffered.

use std::time::Duration;

use chrono::Utc;
use hookline_amqp::names::SOURCE_REQUESTS_QUEUE;
use hookline_amqp::SharedPublisher;
use hookline_model::ids;
use hookline_proto::{Message as _, SourceRequest, SourceRequests, SCHEMA_VERSION};
use hookline_runtime::Shutdown;
use prometheus::IntCounter;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Notes buffered while the broker is slow or away.
const BUFFER: usize = 10_000;
/// Most notes in one message.
const BATCH: usize = 500;
/// Longest a note waits for companions before its batch is published.
const LINGER: Duration = Duration::from_millis(200);
/// Pause before publishing a batch again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// The sending half; cheap to clone.
#[derive(Clone)]
pub struct RequestLog {
    notes: mpsc::Sender<SourceRequest>,
    dropped: IntCounter,
}

impl RequestLog {
    /// Starts the publishing task on `shutdown`'s tracker.
    pub fn spawn(
        shutdown: &Shutdown,
        publisher: Arc<SharedPublisher>,
        dropped: IntCounter,
    ) -> Self {
        let (notes, rx) = mpsc::channel(BUFFER);
        shutdown
            .tracker
            .spawn(publish_batches(rx, publisher, shutdown.token.clone()));
        Self { notes, dropped }
    }

    /// Notes one answered request of `source_id`; never waits.
    pub fn note(&self, source_id: &str, tenant: &str, status: u16, reason: &str, event_id: &str) {
        let note = SourceRequest {
            id: ids::new_id("sreq"),
            source_id: source_id.to_string(),
            tenant: tenant.to_string(),
            received_at_us: Utc::now().timestamp_micros(),
            status: u32::from(status),
            reason: reason.to_string(),
            event_id: event_id.to_string(),
        };
        if self.notes.try_send(note).is_err() {
            self.dropped.inc();
        }
    }
}

/// Gathers notes for up to [`LINGER`] or [`BATCH`] notes, publishes them as
/// one message and retries it until it is confirmed; on shutdown, drains
/// what is left and tries once more.
async fn publish_batches(
    mut rx: mpsc::Receiver<SourceRequest>,
    publisher: Arc<SharedPublisher>,
    token: tokio_util::sync::CancellationToken,
) {
    loop {
        let mut batch = Vec::new();
        let first = tokio::select! {
            note = rx.recv() => note,
            _ = token.cancelled() => None,
        };
        let Some(first) = first else {
            break;
        };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(note)) => batch.push(note),
                Ok(None) | Err(_) => break,
            }
        }
        while let Err(error) = publish(&publisher, &batch).await {
            tracing::warn!(%error, notes = batch.len(), "cannot publish inbound request notes; retrying");
            tokio::select! {
                _ = tokio::time::sleep(RETRY) => {}
                _ = token.cancelled() => break,
            }
        }
    }
    // Shutdown: what was noted before the listener closed.
    let mut rest = Vec::new();
    while let Ok(note) = rx.try_recv() {
        rest.push(note);
    }
    for chunk in rest.chunks(BATCH) {
        if let Err(error) = publish(&publisher, chunk).await {
            tracing::warn!(%error, notes = chunk.len(), "inbound request notes lost at shutdown");
        }
    }
}

async fn publish(
    publisher: &SharedPublisher,
    notes: &[SourceRequest],
) -> Result<(), hookline_amqp::AmqpError> {
    let message = SourceRequests {
        schema_version: SCHEMA_VERSION,
        requests: notes.to_vec(),
    };
    let properties = hookline_amqp::protobuf_properties().with_delivery_mode(2);
    publisher
        .publish_confirmed(
            "",
            SOURCE_REQUESTS_QUEUE,
            &message.encode_to_vec(),
            properties,
        )
        .await
}
