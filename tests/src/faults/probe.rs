//! Looking at the broker and the database from outside the services:
//! publishing raw bytes where a poison message would land, counting a
//! queue, reading what the recorders parked.

use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;

/// Publishes `body` to `exchange` with `routing_key` (the default exchange
/// `""` routes to the queue of that name), with string `headers`, and
/// waits for the broker's confirm.
pub async fn publish_raw(
    url: &str,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) {
    let mut table = FieldTable::default();
    for (name, value) in headers {
        table.insert((*name).into(), AMQPValue::LongString((*value).into()));
    }
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(table);
    publish(url, exchange, routing_key, body, properties).await;
}

/// Publishes `body` with `properties` on a connection of its own, as any
/// producer outside Hookline would, and waits for the broker's confirm.
pub async fn publish(
    url: &str,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
) {
    let connection = hookline_amqp::connect(url, "test-producer")
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(Default::default())
        .await
        .expect("confirm mode");
    channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    let _ = connection.close(200, "done".into()).await;
}

/// Messages ready in `queue` (not those delivered and unacked), from a
/// passive declare.
pub async fn ready_messages(url: &str, queue: &str) -> u32 {
    let connection = hookline_amqp::connect(url, "fault-test-probe")
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("passive declare of {queue}: {e}"));
    let _ = connection.close(200, "done".into()).await;
    declared.message_count()
}

/// `(queue, reason)` of every row of `parked_messages`, oldest first.
pub async fn parked_messages(database_url: &str) -> Vec<(String, String)> {
    use sqlx::{Connection, Row};
    let mut connection = sqlx::PgConnection::connect(database_url)
        .await
        .expect("connect to the test database");
    sqlx::query("SELECT queue, reason FROM parked_messages ORDER BY parked_at, id")
        .fetch_all(&mut connection)
        .await
        .expect("read parked_messages")
        .iter()
        .map(|row| (row.get("queue"), row.get("reason")))
        .collect()
}

/// The sum of the samples of counter or gauge `name` in a `/metrics` text
/// whose labels include every pair of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let lines = text.lines().map(|line| Ok(line.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("metrics parse");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// `GET base/metrics` as text (empty when unreachable).
pub async fn metrics_text(base: &str) -> String {
    match reqwest::get(format!("{base}/metrics")).await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}
