//! The load generator: publishes ~1 KiB events to `hookline.events` like
//! any producer (persistent, publisher confirms), either closed loop (at
//! most a window of events not yet fully delivered) or open loop (a fixed
//! schedule; each event carries its *scheduled* send time in
//! `data.sent_ns`, so a generator that falls behind cannot hide latency).
//! Every event has the same lead fields beside it, which the option runs'
//! template reads and their filter admits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hookline_amqp::names::EVENTS_EXCHANGE;
use hookline_amqp::{ConfirmedPublisher, PendingConfirm};
use lapin::{BasicProperties, Connection};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::sink::{Phase, Sink};

/// Size the event envelopes are padded to.
pub const EVENT_BYTES: usize = 1024;

/// The fields of `data` besides `sent_ns` and `pad`: what the template of
/// `options::template` reads, and true for `options::FILTER`
/// (`amount > 100`, `stage == 'won'`).
const LEAD: &str = r#""amount":150,"stage":"won","contact":{"email":"ana@example.com","first_name":"Ana","last_name":"Lima"},"tags":["vip","spring"]"#;

/// Which events a phase publishes: `<prefix><seq>` of `tenant`, type
/// `event_type`.
#[derive(Debug, Clone)]
pub struct Events {
    /// The tenant whose subscriptions the phase set up.
    pub tenant: String,
    /// Routing key and `type`.
    pub event_type: String,
    /// Event id prefix, unique per phase (the sink keys on it).
    pub prefix: String,
}

/// What an open-loop run did.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoop {
    /// Events published.
    pub published: u64,
    /// Longest a publish started after its scheduled time.
    pub max_behind: Duration,
}

/// A confirmed publisher on its own connection; confirms are awaited in
/// order by a separate task so publishing never waits for a round trip.
pub struct Generator {
    connection: Connection,
    publisher: ConfirmedPublisher,
    confirms: Option<mpsc::Sender<PendingConfirm>>,
    drain: Option<JoinHandle<()>>,
    failed: Arc<AtomicU64>,
    pad: String,
}

impl Generator {
    /// Connects to `amqp_url` with `window` outstanding confirms.
    pub async fn connect(amqp_url: &str, window: usize) -> anyhow::Result<Self> {
        let connection = hookline_amqp::connect(amqp_url, "hookline-bench-load")
            .await
            .context("connecting the load generator")?;
        let publisher = ConfirmedPublisher::open(&connection, window, None).await?;
        let (tx, mut rx) = mpsc::channel::<PendingConfirm>(window);
        let failed = Arc::new(AtomicU64::new(0));
        let counter = failed.clone();
        let drain = tokio::spawn(async move {
            while let Some(pending) = rx.recv().await {
                if pending.confirmed().await.is_err() {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let mut generator = Self {
            connection,
            publisher,
            confirms: Some(tx),
            drain: Some(drain),
            failed,
            pad: String::new(),
        };
        let probe = Events {
            tenant: "t".repeat(16),
            event_type: "bench.".repeat(2),
            prefix: "p".repeat(4),
        };
        let unpadded = generator.body(&probe, u64::from(u32::MAX), u64::MAX).len();
        generator.pad = "x".repeat(EVENT_BYTES.saturating_sub(unpadded));
        Ok(generator)
    }

    /// Publishes not confirmed by the broker so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    fn body(&self, events: &Events, seq: u64, sent_ns: u64) -> Vec<u8> {
        format!(
            r#"{{"id":"{}{seq}","tenant":"{}","type":"{}","data":{{"sent_ns":{sent_ns},{LEAD},"pad":"{}"}}}}"#,
            events.prefix, events.tenant, events.event_type, self.pad
        )
        .into_bytes()
    }

    /// Publishes event `seq`, stamped `sent_ns`; waits for a window slot,
    /// not for the confirm.
    pub async fn publish(&self, events: &Events, seq: u64, sent_ns: u64) -> anyhow::Result<()> {
        let body = self.body(events, seq, sent_ns);
        let properties = BasicProperties::default().with_content_type("application/json".into());
        let pending = self
            .publisher
            .publish(EVENTS_EXCHANGE, &events.event_type, &body, properties)
            .await?;
        if let Some(confirms) = &self.confirms {
            confirms
                .send(pending)
                .await
                .context("the confirm task stopped")?;
        }
        Ok(())
    }

    /// Publishes as fast as the window allows for `duration`: a new event
    /// each time one completes at the sink. Returns how many were published.
    pub async fn closed_loop(
        &self,
        sink: &Sink,
        phase: &Phase,
        events: &Events,
        duration: Duration,
    ) -> anyhow::Result<u64> {
        let window = phase
            .window()
            .context("a closed-loop phase needs a window")?
            .clone();
        let deadline = Instant::now() + duration;
        let mut seq = 0;
        loop {
            tokio::select! {
                permit = window.acquire() => permit?.forget(),
                _ = tokio::time::sleep_until(deadline) => break,
            }
            self.publish(events, seq, sink.now_ns()).await?;
            seq += 1;
        }
        Ok(seq)
    }

    /// Publishes `rate` events per second for `duration` on a fixed
    /// schedule; each event is stamped with when it *should* have been sent.
    pub async fn open_loop(
        &self,
        sink: &Sink,
        events: &Events,
        rate: f64,
        duration: Duration,
    ) -> anyhow::Result<OpenLoop> {
        let start = Instant::now();
        let start_ns = sink.now_ns();
        let total = (rate * duration.as_secs_f64()).floor() as u64;
        let mut max_behind = Duration::ZERO;
        for seq in 0..total {
            let offset = Duration::from_secs_f64(seq as f64 / rate);
            let scheduled = start + offset;
            tokio::time::sleep_until(scheduled).await;
            max_behind = max_behind.max(Instant::now().saturating_duration_since(scheduled));
            self.publish(events, seq, start_ns + offset.as_nanos() as u64)
                .await?;
        }
        Ok(OpenLoop {
            published: total,
            max_behind,
        })
    }

    /// Waits for the outstanding confirms and closes the connection.
    pub async fn close(mut self) {
        self.confirms = None;
        if let Some(drain) = self.drain.take() {
            let _ = drain.await;
        }
        let _ = self.connection.close(200, "bench done".into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lead_fields_are_what_the_filter_admits() {
        let lead: serde_json::Value =
            serde_json::from_str(&format!("{{{LEAD}}}")).expect("LEAD is JSON object members");
        assert!(lead["amount"].as_i64().is_some_and(|amount| amount > 100));
        assert_eq!(lead["stage"], "won");
        assert!(lead["contact"]["email"].is_string());
    }
}
