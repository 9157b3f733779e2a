//! The receiver every subscription points at: an HTTP server in the bench
//! process that answers `200` at once on `/fast/{n}` (after a delay on
//! `/slow/{n}`) and records, for the phase running, each delivery's event
//! id and arrival time. Sender and receiver share one clock (the run's
//! epoch), so latency needs no clock synchronisation. A body is JSON with
//! `id` and `data.sent_ns` (the standard body, or a template that keeps
//! them), or a form with `id` and `data[sent_ns]` (the standard body
//! flattened).

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Most fast subscriptions one phase may have (the dedup key packs the
/// subscription index into 6 bits).
pub const MAX_FANOUT: u32 = 64;

/// The running receiver.
pub struct Sink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    epoch: Instant,
    slow_delay: Duration,
    phase: Mutex<Option<Arc<Phase>>>,
}

/// What the sink records for one phase: deliveries of events whose id
/// starts with its prefix.
pub struct Phase {
    prefix: String,
    fanout: u32,
    started_ns: u64,
    window: Option<Arc<Semaphore>>,
    record: Mutex<Record>,
}

#[derive(Default)]
struct Record {
    /// `seq << 6 | subscription index` of every fast delivery seen.
    seen: HashSet<u64>,
    /// Fast deliveries seen per event sequence number.
    per_event: Vec<u8>,
    events_complete: u64,
    deliveries: u64,
    duplicates: u64,
    slow: u64,
    latencies_ns: Vec<u64>,
    per_second: Vec<u64>,
    last_ns: u64,
}

/// A phase's results.
#[derive(Debug, Clone, Default)]
pub struct PhaseStats {
    /// Events every fast subscription received.
    pub events_complete: u64,
    /// Distinct fast deliveries; a redelivery counts in `duplicates` instead.
    pub deliveries: u64,
    /// Fast deliveries received again (at-least-once redeliveries).
    pub duplicates: u64,
    /// Deliveries to `/slow/…` that completed.
    pub slow: u64,
    /// From each fast delivery's scheduled send time to its arrival, sorted.
    pub latencies_ns: Vec<u64>,
    /// Fast deliveries per second since the phase began.
    pub per_second: Vec<u64>,
    /// Last fast arrival, ns since the epoch.
    pub last_ns: u64,
}

/// The part of a delivery body the sink reads.
#[derive(Deserialize)]
struct Delivered<'a> {
    #[serde(borrow)]
    id: &'a str,
    data: Stamp,
}

#[derive(Deserialize)]
struct Stamp {
    sent_ns: u64,
}

impl Sink {
    /// Listens on a free loopback port; `/slow/…` answers after `slow_delay`.
    pub async fn start(epoch: Instant, slow_delay: Duration) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            epoch,
            slow_delay,
            phase: Mutex::new(None),
        });
        let app = Router::new()
            .route("/fast/{index}", post(fast))
            .route("/slow/{index}", post(slow))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("bench: the sink stopped: {error}");
            }
        });
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    /// URL of fast endpoint `index`.
    pub fn fast_url(&self, index: u32) -> String {
        format!("http://{}/fast/{index}", self.addr)
    }

    /// URL of slow endpoint `index`.
    pub fn slow_url(&self, index: u32) -> String {
        format!("http://{}/slow/{index}", self.addr)
    }

    /// Nanoseconds since the run's epoch.
    pub fn now_ns(&self) -> u64 {
        self.shared.epoch.elapsed().as_nanos() as u64
    }

    /// Starts recording events `<prefix><seq>` that each go to `fanout` fast
    /// endpoints. With a `window`, the returned phase's semaphore starts with
    /// that many permits and gets one back per completed event (closed loop).
    pub fn begin(&self, prefix: &str, fanout: u32, window: Option<usize>) -> Arc<Phase> {
        assert!((1..=MAX_FANOUT).contains(&fanout), "fan-out 1..=64");
        let phase = Arc::new(Phase {
            prefix: prefix.to_string(),
            fanout,
            started_ns: self.now_ns(),
            window: window.map(|w| Arc::new(Semaphore::new(w))),
            record: Mutex::new(Record::default()),
        });
        *lock(&self.shared.phase) = Some(phase.clone());
        phase
    }

    /// Stops recording (late deliveries of the phase are ignored).
    pub fn end(&self) {
        *lock(&self.shared.phase) = None;
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Phase {
    /// The closed-loop window, if any.
    pub fn window(&self) -> Option<&Arc<Semaphore>> {
        self.window.as_ref()
    }

    /// Events whose every fast delivery arrived.
    pub fn events_complete(&self) -> u64 {
        lock(&self.record).events_complete
    }

    /// Waits until `events` events are complete; false after `within`.
    pub async fn wait_for(&self, events: u64, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.events_complete() < events {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// What was recorded, latencies sorted.
    pub fn stats(&self) -> PhaseStats {
        let record = lock(&self.record);
        let mut latencies_ns = record.latencies_ns.clone();
        latencies_ns.sort_unstable();
        PhaseStats {
            events_complete: record.events_complete,
            deliveries: record.deliveries,
            duplicates: record.duplicates,
            slow: record.slow,
            latencies_ns,
            per_second: record.per_second.clone(),
            last_ns: record.last_ns,
        }
    }

    fn sequence(&self, id: &str) -> Option<u64> {
        id.strip_prefix(self.prefix.as_str())?.parse().ok()
    }

    fn fast(&self, index: u32, id: &str, sent_ns: u64, arrived_ns: u64) {
        let (Some(seq), true) = (self.sequence(id), index < self.fanout) else {
            return;
        };
        let mut record = lock(&self.record);
        if !record.seen.insert(seq << 6 | u64::from(index)) {
            record.duplicates += 1;
            return;
        }
        record.deliveries += 1;
        record.latencies_ns.push(arrived_ns.saturating_sub(sent_ns));
        record.last_ns = record.last_ns.max(arrived_ns);
        let second = (arrived_ns.saturating_sub(self.started_ns) / 1_000_000_000) as usize;
        if record.per_second.len() <= second {
            record.per_second.resize(second + 1, 0);
        }
        record.per_second[second] += 1;
        let slot = seq as usize;
        if record.per_event.len() <= slot {
            record.per_event.resize(slot + 1, 0);
        }
        record.per_event[slot] += 1;
        if u32::from(record.per_event[slot]) == self.fanout {
            record.events_complete += 1;
            drop(record);
            if let Some(window) = &self.window {
                window.add_permits(1);
            }
        }
    }
}

/// Locks `mutex`, going on past a panic elsewhere.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn current(shared: &Shared) -> Option<Arc<Phase>> {
    lock(&shared.phase).clone()
}

/// `POST /fast/{index}`: record, answer 200. Never anything else: a non-2xx
/// would send the task around the retry ladder and skew the numbers.
async fn fast(
    State(shared): State<Arc<Shared>>,
    Path(index): Path<u32>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let arrived_ns = shared.epoch.elapsed().as_nanos() as u64;
    let form = headers.get(header::CONTENT_TYPE).is_some_and(|value| {
        value
            .as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    });
    let stamp = if form {
        form_stamp(&body)
    } else {
        serde_json::from_slice::<Delivered<'_>>(&body)
            .ok()
            .map(|delivered| (Cow::Borrowed(delivered.id), delivered.data.sent_ns))
    };
    if let (Some(phase), Some((id, sent_ns))) = (current(&shared), stamp) {
        phase.fast(index, &id, sent_ns, arrived_ns);
    }
    StatusCode::OK
}

/// `id` and `data[sent_ns]` of a form-encoded standard body.
fn form_stamp(body: &[u8]) -> Option<(Cow<'static, str>, u64)> {
    let (mut id, mut sent_ns) = (None, None);
    for field in body.split(|b| *b == b'&') {
        let (name, value) = match field.iter().position(|b| *b == b'=') {
            Some(at) => (&field[..at], &field[at + 1..]),
            None => (field, &b""[..]),
        };
        match form_decode(name)?.as_str() {
            "id" => id = Some(form_decode(value)?),
            "data[sent_ns]" => sent_ns = form_decode(value)?.parse().ok(),
            _ => {}
        }
    }
    Some((Cow::Owned(id?), sent_ns?))
}

/// One name or value of a form body: `+` is a space, `%XX` a byte. By hand,
/// since the sink needs two fields and the bench no form crate for them.
fn form_decode(text: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let mut hex = || char::from(*bytes.next()?).to_digit(16);
                let (high, low) = (hex()?, hex()?);
                out.push((high << 4 | low) as u8);
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok()
}

/// `POST /slow/{index}`: a healthy but slow receiver.
async fn slow(State(shared): State<Arc<Shared>>, Path(_index): Path<u32>) -> StatusCode {
    tokio::time::sleep(shared.slow_delay).await;
    if let Some(phase) = current(&shared) {
        lock(&phase.record).slow += 1;
    }
    StatusCode::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flattened_form_body_gives_its_id_and_send_time() {
        let body = b"data%5Bcontact%5D%5Bemail%5D=ana%40example.com&data%5Bsent_ns%5D=1234&id=form-7&type=bench.form";
        let (id, sent_ns) = form_stamp(body).expect("stamp");
        assert_eq!((id.as_ref(), sent_ns), ("form-7", 1234));
    }

    #[test]
    fn a_form_body_without_a_send_time_is_not_recorded() {
        assert_eq!(form_stamp(b"id=form-7&data%5Bpad%5D=x"), None);
    }

    #[test]
    fn form_decoding_reads_plus_and_percent_escapes() {
        assert_eq!(form_decode(b"Ana+%26+Bo").as_deref(), Some("Ana & Bo"));
        assert_eq!(form_decode(b"bad%4"), None);
    }
}
