//! The attempt recorder: `AttemptBatch` messages from `hookline.attempts`
//! become rows of `attempts`, many messages per transaction.

use chrono::Utc;
use hookline_amqp::names::ATTEMPTS_QUEUE;
use hookline_model::trace::TraceParent;
use hookline_proto::{AttemptBatch, AttemptRecord, Message as _, SCHEMA_VERSION};
use lapin::message::Delivery;
use sqlx::PgConnection;

use std::sync::Arc;

use hookline_model::sealed::Keyring;

use super::consume::Sink;
use crate::control::{Announcement, Notifier};
use crate::metrics::{Metrics, Verification};
use crate::store::attempts::{self, Written};
use crate::store::parked;
use crate::store::subscriptions::SubscriptionRow;
use crate::store::verification::{self, By, Taken};

/// Writes attempt batches; disables subscriptions whose receiver is gone,
/// and verifies those whose endpoint echoed its challenge.
pub(crate) struct AttemptSink {
    /// Written count and lag.
    pub metrics: Metrics,
    /// Announces 410 disables and verifications.
    pub notifier: Notifier,
    /// Builds the shape a verified subscription is announced with.
    pub keyring: Arc<Keyring>,
}

/// What one committed write did.
pub(crate) struct Outcome {
    written: Written,
    recorded: Vec<Recorded>,
    parked: u64,
    verifications: Vec<Verification>,
    verified: Vec<SubscriptionRow>,
}

/// What is kept of a written record for after the commit: its lag, and its
/// span in the event's trace.
struct Recorded {
    at_ms: i64,
    attempt: u32,
    id: String,
    traceparent: String,
}

/// Decodes one message, refusing what this build cannot trust: a bad
/// protobuf, another schema version, or a record without its ids.
pub(crate) fn decode(data: &[u8]) -> Result<Vec<AttemptRecord>, String> {
    let batch =
        AttemptBatch::decode(data).map_err(|e| format!("not an AttemptBatch protobuf: {e}"))?;
    if batch.schema_version != SCHEMA_VERSION {
        return Err(format!(
            "AttemptBatch schema_version {} (this build reads {SCHEMA_VERSION})",
            batch.schema_version
        ));
    }
    for record in &batch.records {
        if record.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "AttemptRecord schema_version {}",
                record.schema_version
            ));
        }
        if record.id.is_empty() || record.tenant.is_empty() || record.subscription_id.is_empty() {
            return Err("an AttemptRecord lacks its id, tenant or subscription_id".into());
        }
    }
    Ok(batch.records)
}

impl Sink for AttemptSink {
    const QUEUE: &'static str = ATTEMPTS_QUEUE;
    // Deliverers batch records already, so 64 messages can hold thousands of
    // attempts; enough for one transaction per ~50 messages to stay cheap.
    const PREFETCH: u16 = 64;
    const BATCH: usize = 50;
    type Outcome = Outcome;

    async fn write(
        &self,
        tx: &mut PgConnection,
        deliveries: &[Delivery],
    ) -> Result<Outcome, sqlx::Error> {
        let mut records = Vec::new();
        let mut parked = 0;
        for delivery in deliveries {
            match decode(&delivery.data) {
                Ok(batch) => records.extend(batch),
                Err(reason) => {
                    tracing::warn!(queue = ATTEMPTS_QUEUE, %reason, "parking an undecodable message");
                    parked::insert(tx, ATTEMPTS_QUEUE, &reason, &delivery.data).await?;
                    parked += 1;
                }
            }
        }
        let written = attempts::write(tx, &records).await?;
        let mut verifications = Vec::new();
        let mut verified = Vec::new();
        for record in records.iter().filter(|r| r.challenge) {
            if !record.challenge_echoed {
                verifications.push(Verification::Unanswered);
                continue;
            }
            // In the history's transaction: the attempt and the verified
            // subscription are written together or not at all.
            let by = By::EventId(&record.event_id);
            match verification::take(tx, &record.tenant, &record.subscription_id, by).await? {
                Taken::Verified(row) => {
                    verifications.push(Verification::Echoed);
                    verified.push(*row);
                }
                // Expired, or answered after a newer challenge replaced it.
                Taken::Expired | Taken::NoMatch => verifications.push(Verification::Expired),
            }
        }
        Ok(Outcome {
            verifications,
            verified,
            written,
            recorded: records
                .into_iter()
                .map(|r| Recorded {
                    at_ms: r.at_ms,
                    attempt: r.attempt,
                    id: r.id,
                    traceparent: r.traceparent,
                })
                .collect(),
            parked,
        })
    }

    async fn committed(&self, outcome: Outcome) {
        self.metrics
            .attempt_records_written
            .inc_by(outcome.written.inserted);
        self.metrics.parked_messages.inc_by(outcome.parked);
        let now_ms = Utc::now().timestamp_millis();
        for recorded in outcome.recorded {
            let lag_ms = (now_ms - recorded.at_ms).max(0);
            self.metrics
                .attempt_record_lag
                .observe(lag_ms as f64 / 1000.0);
            // The last hop of the event's trace: the attempt is in history.
            if let Some(parent) = TraceParent::parse(&recorded.traceparent) {
                let span = tracing::info_span!(
                    "api.record_attempt",
                    otel.kind = "consumer",
                    hookline.attempt = recorded.attempt,
                    hookline.attempt_id = %recorded.id,
                    hookline.record_lag_ms = lag_ms,
                );
                hookline_runtime::telemetry::attach(&span, Some(parent));
            }
        }
        for outcome in &outcome.verifications {
            self.metrics.verification(*outcome);
        }
        for row in &outcome.verified {
            tracing::info!(tenant = %row.tenant, subscription_id = %row.id, "endpoint echoed its verification challenge; subscription verified");
            match Announcement::of_row(row, &self.keyring) {
                Ok(announcement) => self.notifier.announce(announcement).await,
                Err(error) => {
                    tracing::error!(%error, subscription_id = %row.id, "cannot announce a verified subscription; fanouts pick it up at their next full reload")
                }
            }
        }
        for gone in outcome.written.disabled {
            tracing::info!(tenant = %gone.tenant, subscription_id = %gone.id, "receiver answered 410 Gone; subscription disabled");
            self.notifier
                .announce(Announcement::disabled(
                    &gone.tenant,
                    &gone.id,
                    gone.revision,
                ))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> AttemptRecord {
        AttemptRecord {
            schema_version: SCHEMA_VERSION,
            id: id.into(),
            tenant: "acme".into(),
            subscription_id: "sub_1".into(),
            ..AttemptRecord::default()
        }
    }

    fn encoded(schema_version: u32, records: Vec<AttemptRecord>) -> Vec<u8> {
        AttemptBatch {
            schema_version,
            records,
        }
        .encode_to_vec()
    }

    #[test]
    fn a_batch_of_this_version_decodes_to_its_records() {
        let records = decode(&encoded(
            SCHEMA_VERSION,
            vec![record("att_1"), record("att_2")],
        ))
        .unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].id, "att_2");
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let reason = decode(&[0xff, 0xff, 0xff]).unwrap_err();
        assert!(reason.contains("AttemptBatch"), "{reason}");
    }

    #[test]
    fn another_schema_version_is_refused() {
        assert!(decode(&encoded(SCHEMA_VERSION + 1, vec![record("att_1")])).is_err());
        let mut old = record("att_1");
        old.schema_version = 0;
        assert!(decode(&encoded(SCHEMA_VERSION, vec![old])).is_err());
    }

    #[test]
    fn a_record_without_ids_is_refused() {
        assert!(decode(&encoded(SCHEMA_VERSION, vec![record("")])).is_err());
    }
}
