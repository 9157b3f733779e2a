//! The inbound request recorder: ingest's `SourceRequests` batches from
//! `hookline.source-requests` become rows of `source_requests`, and move
//! each source's last request forward.

use chrono::{DateTime, Utc};
use hookline_amqp::names::SOURCE_REQUESTS_QUEUE;
use hookline_proto::{Message as _, SourceRequests, SCHEMA_VERSION};
use lapin::message::Delivery;
use sqlx::PgConnection;

use super::consume::Sink;
use crate::metrics::Metrics;
use crate::store::sources::{self, RequestRow};
use crate::store::{clean, parked};

/// Writes request notes where `GET …/sources/{id}/requests` reads them.
pub(crate) struct SourceRequestSink {
    /// The parked count.
    pub metrics: Metrics,
}

/// Reads one message as rows, or says why it is not a batch of notes.
pub(crate) fn decode(data: &[u8]) -> Result<Vec<RequestRow>, String> {
    let batch =
        SourceRequests::decode(data).map_err(|e| format!("not a SourceRequests protobuf: {e}"))?;
    if batch.schema_version != SCHEMA_VERSION {
        return Err(format!(
            "SourceRequests schema_version {} (this build reads {SCHEMA_VERSION})",
            batch.schema_version
        ));
    }
    Ok(batch
        .requests
        .into_iter()
        .filter(|r| !r.id.is_empty() && !r.source_id.is_empty())
        .map(|r| RequestRow {
            id: clean(&r.id, 128),
            source_id: clean(&r.source_id, 128),
            tenant: clean(&r.tenant, 128),
            received_at: DateTime::<Utc>::from_timestamp_micros(r.received_at_us)
                .unwrap_or_else(Utc::now),
            status: i32::try_from(r.status).unwrap_or(0),
            reason: (!r.reason.is_empty()).then(|| clean(&r.reason, 128)),
            event_id: (!r.event_id.is_empty()).then(|| clean(&r.event_id, 256)),
        })
        .collect())
}

impl Sink for SourceRequestSink {
    const QUEUE: &'static str = SOURCE_REQUESTS_QUEUE;
    // Each message already holds up to 500 notes.
    const PREFETCH: u16 = 16;
    const BATCH: usize = 16;
    type Outcome = u64;

    async fn write(
        &self,
        tx: &mut PgConnection,
        deliveries: &[Delivery],
    ) -> Result<u64, sqlx::Error> {
        let mut parked_count = 0;
        for delivery in deliveries {
            match decode(&delivery.data) {
                Ok(rows) => {
                    sources::insert_requests(tx, &rows).await?;
                }
                Err(reason) => {
                    tracing::warn!(queue = SOURCE_REQUESTS_QUEUE, %reason, "parking an undecodable message");
                    parked::insert(tx, SOURCE_REQUESTS_QUEUE, &reason, &delivery.data).await?;
                    parked_count += 1;
                }
            }
        }
        Ok(parked_count)
    }

    async fn committed(&self, parked_count: u64) {
        self.metrics.parked_messages.inc_by(parked_count);
    }
}

#[cfg(test)]
mod tests {
    use hookline_proto::SourceRequest;

    use super::*;

    #[test]
    fn a_batch_becomes_rows_and_garbage_is_refused() {
        let batch = SourceRequests {
            schema_version: SCHEMA_VERSION,
            requests: vec![
                SourceRequest {
                    id: "sreq_1".into(),
                    source_id: "src_1".into(),
                    tenant: "acme".into(),
                    received_at_us: 1_768_392_443_884_000,
                    status: 202,
                    reason: String::new(),
                    event_id: "evt_1".into(),
                },
                SourceRequest::default(),
            ],
        };
        let rows = decode(&batch.encode_to_vec()).unwrap();
        assert_eq!(rows.len(), 1, "a note without ids is skipped");
        assert_eq!((rows[0].status, rows[0].reason.as_deref()), (202, None));
        assert_eq!(rows[0].event_id.as_deref(), Some("evt_1"));
        assert!(decode(&[0xff, 0x01]).is_err());
    }
}
