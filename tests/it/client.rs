//! The `hookline-client` crate against the real broker, ingest and pipeline:
//! what it publishes arrives at a receiver as the contract's delivery, and
//! what the contract forbids never leaves the producer.

use std::time::Duration;

use hookline_client::{
    AmqpOptions, AmqpPublisher, Event, EventError, HttpOptions, HttpPublisher, PublishError,
    Publisher,
};
use hookline_tests::{eventually, Receiver, Reply, TestEnv};
use serde::Serialize;
use serde_json::json;

/// A producer's trace context, as its OpenTelemetry SDK would format it.
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// A producer's own type, as the builder takes it.
#[derive(Serialize)]
struct Lead {
    email: String,
    score: u32,
}

fn lead(id: &str) -> Event {
    Event::builder("acme", "lead.created")
        .id(id)
        .data(&Lead {
            email: format!("{id}@example.com"),
            score: 7,
        })
        .build()
        .expect("a valid event")
}

/// Waits until `path` received each of `ids`, and checks each body's data.
async fn delivered(receiver: &Receiver, path: &str, ids: &[&str]) {
    eventually(Duration::from_secs(20), "every event delivered", || async {
        let bodies: Vec<_> = receiver.requests(path).iter().map(|r| r.json()).collect();
        ids.iter()
            .all(|id| {
                bodies.iter().any(|b| {
                    b["id"] == *id
                        && b["type"] == "lead.created"
                        && b["data"] == json!({"email": format!("{id}@example.com"), "score": 7})
                })
            })
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_amqp_publish_returns_after_the_confirm_and_the_event_is_delivered() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    env.subscribe("acme", &receiver.url("/amqp"), &["lead.*"])
        .await;
    let publisher = AmqpPublisher::new(env.amqp_url(), AmqpOptions::default());
    // The producer's own trace context travels with the event.
    let traced = Event::builder("acme", "lead.created")
        .id("evt_amqp_1")
        .data(&Lead {
            email: "evt_amqp_1@example.com".into(),
            score: 7,
        })
        .traceparent(TRACEPARENT)
        .build()
        .expect("valid");
    let published = publisher.publish(&traced).await.expect("confirmed");
    assert_eq!(published.id, "evt_amqp_1");
    let batch: Vec<Event> = (2..=4).map(|i| lead(&format!("evt_amqp_{i}"))).collect();
    let results = publisher.publish_batch(&batch).await.expect("batch");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    delivered(
        &receiver,
        "/amqp",
        &["evt_amqp_1", "evt_amqp_2", "evt_amqp_3", "evt_amqp_4"],
    )
    .await;
    let first = receiver
        .requests("/amqp")
        .into_iter()
        .find(|r| r.json()["id"] == "evt_amqp_1")
        .expect("evt_amqp_1");
    let header = first.header("traceparent").unwrap_or_default().to_string();
    assert!(header.starts_with(&TRACEPARENT[..35]), "{header}");
    env.stop().await;
}

#[tokio::test]
async fn an_http_publish_and_a_batch_go_through_ingest_and_are_delivered() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    env.subscribe("acme", &receiver.url("/http"), &["lead.*"])
        .await;
    // The same code path a backend takes when the transport is configured.
    let publisher = hookline_client::from_url(&env.ingest, None).expect("publisher");
    let published = publisher.publish(&lead("evt_http_1")).await.expect("202");
    assert_eq!(published.id, "evt_http_1");
    let batch: Vec<Event> = (2..=3).map(|i| lead(&format!("evt_http_{i}"))).collect();
    let results = publisher.publish_batch(&batch).await.expect("batch");
    let ids: Vec<String> = results
        .into_iter()
        .map(|r| r.expect("accepted").id)
        .collect();
    assert_eq!(ids, ["evt_http_2", "evt_http_3"]);
    delivered(
        &receiver,
        "/http",
        &["evt_http_1", "evt_http_2", "evt_http_3"],
    )
    .await;
    env.stop().await;
}

#[tokio::test]
async fn an_http_publish_retries_a_503_with_the_same_id_and_stops_at_a_refusal() {
    // A stand-in ingest that is briefly unavailable, then accepts.
    let flaky = Receiver::start().await;
    flaky.script("/v1/events", vec![Reply::status(503), Reply::status(503)]);
    let options = HttpOptions {
        backoff_initial: Duration::from_millis(20),
        ..HttpOptions::default()
    };
    let publisher = HttpPublisher::new(&flaky.base, options.clone()).expect("publisher");
    let event = lead("evt_retry_1");
    let published = publisher.publish(&event).await.expect("accepted at last");
    assert_eq!(published.id, "evt_retry_1");
    let bodies: Vec<_> = flaky
        .requests("/v1/events")
        .iter()
        .map(|r| r.json())
        .collect();
    assert_eq!(bodies.len(), 3);
    assert!(
        bodies.iter().all(|b| b["id"] == "evt_retry_1"),
        "{bodies:?}"
    );

    // A 4xx is the producer's mistake: no retry.
    flaky.set_default("/v1/events", Reply::status(401));
    let error = publisher
        .publish(&lead("evt_retry_2"))
        .await
        .expect_err("401");
    assert!(
        matches!(error, PublishError::Refused { status: 401, .. }),
        "{error}"
    );
    assert!(!error.may_retry());
    let again: Vec<_> = flaky
        .requests("/v1/events")
        .iter()
        .map(|r| r.json())
        .collect();
    assert_eq!(again.iter().filter(|b| b["id"] == "evt_retry_2").count(), 1);
}

#[tokio::test]
async fn a_real_ingest_refusal_reaches_the_producer_with_its_code() {
    let env = TestEnv::start_with(|o| {
        o.settings.ingest.tokens = vec![hookline_config::Secret::new("producer-token-1")]
    })
    .await;
    let without = HttpPublisher::new(&env.ingest, HttpOptions::default()).expect("publisher");
    let error = without.publish(&lead("evt_tok_1")).await.expect_err("401");
    assert!(
        matches!(error, PublishError::Refused { status: 401, .. }),
        "{error}"
    );
    let with = HttpPublisher::new(
        &env.ingest,
        HttpOptions {
            token: Some("producer-token-1".into()),
            ..HttpOptions::default()
        },
    )
    .expect("publisher");
    with.publish(&lead("evt_tok_2"))
        .await
        .expect("202 with the token");
    env.stop().await;
}

#[tokio::test]
async fn an_event_that_breaks_the_envelope_rules_never_leaves_the_producer() {
    let build = |tenant: &str, event_type: &str| Event::builder(tenant, event_type).build();
    assert!(matches!(
        build("acme corp", "lead.created"),
        Err(EventError::Tenant(_))
    ));
    assert!(matches!(
        build("acme", "Lead.Created"),
        Err(EventError::Type(_))
    ));
    let list = Event::builder("acme", "lead.created")
        .data(&vec![1, 2])
        .build();
    assert!(matches!(list, Err(EventError::Data(_))));
}

#[tokio::test]
async fn an_amqp_publish_to_a_broker_without_hooklines_topology_fails_within_its_deadline() {
    let env = TestEnv::bare().await;
    // The vhost exists but nothing declared `hookline.events` in it.
    let publisher = AmqpPublisher::new(
        env.amqp_url(),
        AmqpOptions {
            deadline: Duration::from_secs(2),
            ..AmqpOptions::default()
        },
    );
    let error = publisher
        .publish(&lead("evt_none"))
        .await
        .expect_err("no exchange");
    assert!(error.may_retry(), "{error}");
    assert!(error.to_string().contains("NOT_FOUND"), "{error}");
    env.stop().await;
}

/// The client keeps its own copy of the envelope rules (it is published
/// without Hookline's internal crates); this keeps the copy from drifting
/// from what ingest and fanout accept.
#[test]
fn the_client_accepts_exactly_the_envelopes_hookline_accepts() {
    let long = |n: usize| "a".repeat(n);
    let cases: Vec<(String, String, String)> = [
        ("acme", "lead.created", "evt_1"),
        ("t.-_9", "a_1.b2", "a:b.c-d_e"),
        ("", "lead.created", "evt_1"),
        ("ac me", "lead.created", "evt_1"),
        ("acme", "Lead.created", "evt_1"),
        ("acme", "lead..created", "evt_1"),
        ("acme", "lead.created.", "evt_1"),
        ("acme", "lead-created", "evt_1"),
        ("acme", "lead.created", "id with space"),
        ("acme", "lead.created", "evt/1"),
    ]
    .into_iter()
    .map(|(t, ty, id)| (t.to_string(), ty.to_string(), id.to_string()))
    .chain([
        (long(64), "lead.created".into(), "evt_1".into()),
        (long(65), "lead.created".into(), "evt_1".into()),
        ("acme".into(), format!("{}.x", long(253)), "evt_1".into()),
        ("acme".into(), format!("{}.x", long(254)), "evt_1".into()),
        ("acme".into(), "lead.created".into(), long(128)),
        ("acme".into(), "lead.created".into(), long(129)),
    ])
    .collect();
    for (tenant, event_type, id) in &cases {
        let client = Event::builder(tenant.as_str(), event_type.as_str())
            .id(id.as_str())
            .data(&json!({}))
            .build()
            .is_ok();
        let body = json!({"tenant": tenant, "type": event_type, "id": id, "data": {}});
        let hookline = hookline_model::Event::parse(
            body.to_string().as_bytes(),
            chrono::Utc::now(),
            String::new,
        )
        .is_ok();
        assert_eq!(
            client, hookline,
            "tenant {tenant:?}, type {event_type:?}, id {id:?}"
        );
    }
}
