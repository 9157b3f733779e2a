//! The ceiling R of the local RabbitMQ for the pipeline's hop pattern, with
//! no Hookline code and no HTTP in the way: persistent 1 KiB messages with
//! publisher confirms through classic durable queues, consumed the way the
//! services consume (same prefetch, same confirm window).
//!
//! * R1, one hop: publish → A → a consumer acks.
//! * R2, two hops: publish → A → a consumer republishes to B, awaits the
//!   confirm, acks A (like fanout) → a consumer of B acks (like a deliverer).
//!
//! Like the pipeline runs, it is closed loop: at most `window` messages are
//! between the first publish and the last ack, so no backlog builds up and
//! the rate is what the broker sustains.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt;
use hookline_amqp::{ConfirmedPublisher, PendingConfirm};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::Acker;
use lapin::{BasicProperties, Channel, Connection};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::report::Ceiling;

/// How the ceiling is measured.
#[derive(Debug, Clone)]
pub struct RawConfig {
    /// Measured time of each pattern (the first second is warm-up).
    pub duration: Duration,
    /// Messages in flight end to end.
    pub window: usize,
    /// Outstanding confirms per publisher (the services' `amqp.confirm_window`).
    pub confirm_window: usize,
    /// Prefetch of the republishing hop (fanout's `fanout.prefetch`).
    pub hop_prefetch: u16,
    /// Prefetch of the last consumer (a deliverer's `delivery.concurrency`).
    pub last_prefetch: u16,
    /// Message size.
    pub message_bytes: usize,
}

/// What one pattern achieved.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Messages per second through the last consumer, after warm-up.
    pub rate: f64,
    /// Messages the last consumer acked in all (for CPU per message).
    pub messages: u64,
}

/// R1 then R2, with the broker's CPU seconds per 1,000 messages of each
/// (`broker_cpu` reads its CPU time so far, when it is known).
pub async fn ceiling(
    amqp_url: &str,
    config: &RawConfig,
    seconds: u64,
    broker_cpu: impl Fn() -> Option<Duration>,
) -> anyhow::Result<Ceiling> {
    let mut measured = Vec::new();
    for hops in [1, 2] {
        eprintln!("bench: raw ceiling R{hops} ({seconds} s)…");
        let before = broker_cpu();
        let run = measure(amqp_url, hops, config).await?;
        let per_1k = before.zip(broker_cpu()).map(|(before, after)| {
            after.saturating_sub(before).as_secs_f64() / (run.messages.max(1) as f64 / 1000.0)
        });
        eprintln!("bench: R{hops} = {:.0} msg/s", run.rate);
        measured.push((run.rate, per_1k));
    }
    Ok(Ceiling {
        r1: measured[0].0,
        r2: measured[1].0,
        r1_broker_cpu_per_1k: measured[0].1,
        r2_broker_cpu_per_1k: measured[1].1,
    })
}

/// Runs messages through `hops` (1 or 2) queues on `amqp_url`.
pub async fn measure(amqp_url: &str, hops: u8, config: &RawConfig) -> anyhow::Result<Measured> {
    let name = |q: &str| format!("bench.r{hops}.{q}");
    let (first, second) = (name("a"), name("b"));
    let last = if hops == 1 { &first } else { &second };

    let producer = hookline_amqp::connect(amqp_url, "hookline-bench-raw-producer").await?;
    let publisher = ConfirmedPublisher::open(&producer, config.confirm_window, None).await?;
    declare(publisher.channel(), &first).await?;
    if hops == 2 {
        declare(publisher.channel(), &second).await?;
    }

    let window = Arc::new(Semaphore::new(config.window));
    let done = Arc::new(AtomicU64::new(0));
    let consumer_connection = hookline_amqp::connect(amqp_url, "hookline-bench-raw-last").await?;
    let last_channel = consumer_connection.create_channel().await?;
    spawn_last(
        &last_channel,
        last,
        config.last_prefetch,
        window.clone(),
        done.clone(),
    )
    .await?;
    let hop_connection = if hops == 2 {
        let connection = hookline_amqp::connect(amqp_url, "hookline-bench-raw-hop").await?;
        spawn_hop(&connection, &first, &second, config).await?;
        Some(connection)
    } else {
        None
    };

    let (confirms, confirmer) = confirm_in_order();
    let payload = vec![b'x'; config.message_bytes];
    let started = Instant::now();
    let warm = started + Duration::from_secs(1).min(config.duration / 4);
    let deadline = started + config.duration;
    let mut at_warm = None;
    loop {
        tokio::select! {
            permit = window.acquire() => permit?.forget(),
            _ = tokio::time::sleep_until(deadline) => break,
        }
        if at_warm.is_none() && Instant::now() >= warm {
            at_warm = Some((Instant::now(), done.load(Ordering::Relaxed)));
        }
        let pending = publisher
            .publish("", &first, &payload, BasicProperties::default())
            .await?;
        confirms.send(pending).await?;
    }
    let (warm_at, warm_done) = at_warm.unwrap_or((started, 0));
    let rate = (done.load(Ordering::Relaxed) - warm_done) as f64
        / Instant::now().duration_since(warm_at).as_secs_f64();

    drop(confirms);
    let _ = confirmer.await;
    // Let what is in flight arrive, so the CPU spent on it is matched by
    // its count.
    let published = config.window as u64;
    let settle = Instant::now() + Duration::from_secs(5);
    let mut last = u64::MAX;
    while Instant::now() < settle {
        let now = done.load(Ordering::Relaxed);
        if now == last && window.available_permits() as u64 >= published {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = producer.close(200, "raw done".into()).await;
    if let Some(connection) = hop_connection {
        let _ = connection.close(200, "raw done".into()).await;
    }
    let _ = consumer_connection.close(200, "raw done".into()).await;
    Ok(Measured {
        rate,
        messages: done.load(Ordering::Relaxed),
    })
}

async fn declare(channel: &Channel, queue: &str) -> anyhow::Result<()> {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("classic".into()),
    );
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), options, args)
        .await
        .with_context(|| format!("declaring {queue}"))?;
    Ok(())
}

/// A task awaiting publisher confirms in order.
fn confirm_in_order() -> (mpsc::Sender<PendingConfirm>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<PendingConfirm>(4096);
    let task = tokio::spawn(async move {
        while let Some(pending) = rx.recv().await {
            if let Err(error) = pending.confirmed().await {
                eprintln!("bench: raw publish not confirmed: {error}");
            }
        }
    });
    (tx, task)
}

/// The deliverer-like last hop: every message acked from a task of its own.
async fn spawn_last(
    channel: &Channel,
    queue: &str,
    prefetch: u16,
    window: Arc<Semaphore>,
    done: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "bench-last".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let (window, done) = (window.clone(), done.clone());
            tokio::spawn(async move {
                if delivery.acker.ack(BasicAckOptions::default()).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                window.add_permits(1);
            });
        }
    });
    Ok(())
}

/// A consumer of `queue` on a channel of its own with `prefetch`; keep the
/// channel as long as the consumer.
async fn consume(
    connection: &Connection,
    queue: &str,
    tag: &str,
    prefetch: u16,
) -> anyhow::Result<(Channel, lapin::Consumer)> {
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((channel, consumer))
}

/// The fanout-like middle hop: republish with confirm, ack after it.
async fn spawn_hop(
    connection: &Connection,
    from: &str,
    to: &str,
    config: &RawConfig,
) -> anyhow::Result<()> {
    let publisher = ConfirmedPublisher::open(connection, config.confirm_window, None).await?;
    let (channel, mut consumer) =
        consume(connection, from, "bench-hop", config.hop_prefetch).await?;
    let (tx, mut rx) = mpsc::channel::<(Acker, PendingConfirm)>(usize::from(config.hop_prefetch));
    tokio::spawn(async move {
        while let Some((acker, pending)) = rx.recv().await {
            if pending.confirmed().await.is_ok() {
                let _ = acker.ack(BasicAckOptions::default()).await;
            }
        }
    });
    let to = to.to_string();
    tokio::spawn(async move {
        // The channel must outlive the consumer loop.
        let _channel = channel;
        while let Some(Ok(delivery)) = consumer.next().await {
            let Ok(pending) = publisher
                .publish("", &to, &delivery.data, BasicProperties::default())
                .await
            else {
                break;
            };
            if tx.send((delivery.acker, pending)).await.is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// The broker alone at a fixed rate: the R2 hop pattern open loop, each
/// message timed from its scheduled send to the last consumer, exactly as
/// the pipeline's open-loop runs time events to the sink. It is the floor
/// under the pipeline's latency on this machine.
pub async fn latency(
    amqp_url: &str,
    config: &RawConfig,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<crate::report::Latency> {
    let (first, second) = ("bench.l2.a", "bench.l2.b");
    let producer = hookline_amqp::connect(amqp_url, "hookline-bench-raw-producer").await?;
    let publisher = ConfirmedPublisher::open(&producer, config.confirm_window, None).await?;
    declare(publisher.channel(), first).await?;
    declare(publisher.channel(), second).await?;
    let hop = hookline_amqp::connect(amqp_url, "hookline-bench-raw-hop").await?;
    spawn_hop(&hop, first, second, config).await?;

    let epoch = Instant::now();
    let total = (rate * duration.as_secs_f64()).ceil() as u64;
    let arrived = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total as usize)));
    let last = hookline_amqp::connect(amqp_url, "hookline-bench-raw-last").await?;
    let (_channel, mut consumer) =
        consume(&last, second, "bench-latency", config.last_prefetch).await?;
    let record = arrived.clone();
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let at = epoch.elapsed().as_nanos() as u64;
            let scheduled = delivery
                .data
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map_or(at, u64::from_be_bytes);
            if let Ok(mut arrived) = record.lock() {
                arrived.push(at.saturating_sub(scheduled));
            }
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
        }
    });

    let (confirms, confirmer) = confirm_in_order();
    let mut payload = vec![b'x'; config.message_bytes.max(8)];
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    for i in 0..total {
        let scheduled = interval * i as u32;
        tokio::time::sleep_until(epoch + scheduled).await;
        payload[..8].copy_from_slice(&(scheduled.as_nanos() as u64).to_be_bytes());
        let pending = publisher
            .publish("", first, &payload, BasicProperties::default())
            .await?;
        confirms.send(pending).await?;
    }
    drop(confirms);
    let _ = confirmer.await;
    let settle = Instant::now() + Duration::from_secs(10);
    while Instant::now() < settle && arrived.lock().map_or(0, |a| a.len() as u64) < total {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for connection in [&producer, &hop, &last] {
        let _ = connection.close(200, "latency done".into()).await;
    }
    let mut sorted = arrived.lock().map(|a| a.clone()).unwrap_or_default();
    sorted.sort_unstable();
    Ok(crate::report::Latency::of(&sorted))
}
