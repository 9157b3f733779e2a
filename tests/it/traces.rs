//! W3C trace context from producer to receiver: ingest continues a
//! producer's `traceparent` (or starts a trace), the event and its tasks
//! carry it, and every attempt sends a child of it, so the receiver's trace
//! continues the producer's.

use std::time::Duration;

use hookline_model::trace::TraceParent;
use hookline_tests::{eventually, Captured, Receiver, Reply, TestEnv};
use serde_json::json;

const PRODUCER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const PRODUCER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn trace_of(request: &Captured) -> TraceParent {
    let header = request.header("traceparent").expect("a traceparent header");
    TraceParent::parse(header).unwrap_or_else(|| panic!("malformed traceparent {header}"))
}

async fn requests(receiver: &Receiver, path: &str, count: usize) -> Vec<Captured> {
    eventually(Duration::from_secs(20), "the deliveries", || async {
        let got = receiver.requests(path);
        (got.len() >= count).then_some(got)
    })
    .await
}

#[tokio::test]
async fn a_producers_trace_reaches_the_receiver_and_each_attempt_is_its_own_span() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    // The first attempt fails, so a retry shows a second span.
    receiver.script("/traced", vec![Reply::status(500)]);
    env.subscribe("acme", &receiver.url("/traced"), &["lead.*"])
        .await;
    let answer = env
        .http
        .post(format!("{}/v1/events", env.ingest))
        .header("traceparent", PRODUCER)
        .json(&json!({"id": "evt_traced", "tenant": "acme", "type": "lead.created", "data": {}}))
        .send()
        .await
        .expect("ingest answers");
    assert_eq!(answer.status().as_u16(), 202);
    let got = requests(&receiver, "/traced", 2).await;
    let (first, retry) = (trace_of(&got[0]), trace_of(&got[1]));
    assert_eq!(
        first.trace_id(),
        PRODUCER_TRACE,
        "the producer's trace continues"
    );
    assert_eq!(
        retry.trace_id(),
        PRODUCER_TRACE,
        "the retry is in the same trace"
    );
    assert_ne!(
        first.span_id(),
        retry.span_id(),
        "each attempt is its own span"
    );
    assert_ne!(
        first.span_id(),
        "00f067aa0ba902b7",
        "Hookline's hops add spans"
    );
    env.stop().await;
}

#[tokio::test]
async fn an_event_without_a_trace_starts_one_and_an_amqp_producers_trace_is_continued() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    env.subscribe("acme", &receiver.url("/fresh"), &["lead.*"])
        .await;
    let (status, _) = env
        .post_event(
            json!({"id": "evt_fresh", "tenant": "acme", "type": "lead.created", "data": {}}),
        )
        .await;
    assert_eq!(status, 202);
    // A malformed context is not trusted: a new trace, not an error.
    let answer = env
        .http
        .post(format!("{}/v1/events", env.ingest))
        .header("traceparent", "00-not-a-trace-01")
        .json(&json!({"id": "evt_bad_trace", "tenant": "acme", "type": "lead.created", "data": {}}))
        .send()
        .await
        .expect("ingest answers");
    assert_eq!(answer.status().as_u16(), 202);
    let got = requests(&receiver, "/fresh", 2).await;
    let traces: Vec<String> = got.iter().map(|r| trace_of(r).trace_id()).collect();
    assert_ne!(
        traces[0], traces[1],
        "two events without a trace: two traces"
    );

    // An AMQP producer sets the header itself.
    let connection =
        lapin::Connection::connect(env.amqp_url(), lapin::ConnectionProperties::default())
            .await
            .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let mut headers = lapin::types::FieldTable::default();
    headers.insert(
        "traceparent".into(),
        lapin::types::AMQPValue::LongString(PRODUCER.into()),
    );
    let body =
        json!({"id": "evt_amqp_traced", "tenant": "acme", "type": "lead.created", "data": {}});
    channel
        .basic_publish(
            "hookline.events".into(),
            "lead.created".into(),
            lapin::options::BasicPublishOptions::default(),
            body.to_string().as_bytes(),
            lapin::BasicProperties::default()
                .with_delivery_mode(2)
                .with_headers(headers),
        )
        .await
        .expect("publish");
    let got = requests(&receiver, "/fresh", 3).await;
    let amqp = got
        .iter()
        .find(|r| r.json()["id"] == "evt_amqp_traced")
        .expect("the AMQP event");
    assert_eq!(trace_of(amqp).trace_id(), PRODUCER_TRACE);
    env.stop().await;
}
