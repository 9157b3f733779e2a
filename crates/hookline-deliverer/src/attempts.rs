//! Batches attempt records: many records per AMQP message, one confirm per
//! batch. A caller's `record` resolves only once its batch is confirmed, so
//! the task it belongs to is acked after its history is safe.

use hookline_amqp::names::ATTEMPTS_QUEUE;
use hookline_amqp::{AmqpError, ConfirmedPublisher};
use hookline_proto::{AttemptBatch, AttemptRecord, Message, SCHEMA_VERSION};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

type Waiter = oneshot::Sender<Result<(), String>>;

/// Most records in one batch message.
const MAX_BATCH: usize = 256;

/// Hands records to the batcher.
#[derive(Clone)]
pub struct RecordSink {
    tx: mpsc::Sender<(AttemptRecord, Waiter)>,
}

impl RecordSink {
    /// Queues a record and waits until its batch is confirmed.
    pub async fn record(&self, record: AttemptRecord) -> Result<(), AmqpError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((record, done))
            .await
            .map_err(|_| AmqpError::Unavailable("attempt batcher stopped".into()))?;
        wait.await
            .map_err(|_| AmqpError::Unavailable("attempt batcher stopped".into()))?
            .map_err(AmqpError::Unavailable)
    }
}

/// Starts the batcher on `publisher`; it stops when every sink is dropped.
pub fn spawn(publisher: ConfirmedPublisher) -> (RecordSink, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<(AttemptRecord, Waiter)>(MAX_BATCH * 4);
    let handle = tokio::spawn(async move {
        let mut records = Vec::with_capacity(MAX_BATCH);
        let mut waiters = Vec::with_capacity(MAX_BATCH);
        while let Some((record, waiter)) = rx.recv().await {
            records.push(record);
            waiters.push(waiter);
            // Whatever queued up while the last batch was being confirmed
            // goes into this one: batches grow with load, latency stays low.
            while records.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok((record, waiter)) => {
                        records.push(record);
                        waiters.push(waiter);
                    }
                    Err(_) => break,
                }
            }
            let batch = AttemptBatch {
                schema_version: SCHEMA_VERSION,
                records: std::mem::take(&mut records),
            };
            let result = publisher
                .publish_confirmed(
                    "",
                    ATTEMPTS_QUEUE,
                    &batch.encode_to_vec(),
                    hookline_amqp::protobuf_properties(),
                )
                .await
                .map_err(|e| e.to_string());
            for waiter in waiters.drain(..) {
                let _ = waiter.send(result.clone());
            }
        }
    });
    (RecordSink { tx }, handle)
}
