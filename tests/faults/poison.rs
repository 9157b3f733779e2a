//! Poison messages in every queue Hookline consumes: bytes that are not
//! JSON or protobuf, the wrong shape, another schema version. Each must be
//! parked once with its reason while the consumer goes on with the next
//! message; none may come back again and again. Poison disturbs nobody
//! else, so these tests use a vhost and database of the shared servers.

use std::time::Duration;

use chrono::Utc;
use hookline_amqp::names::{
    ATTEMPTS_QUEUE, DEAD_QUEUE, DELIVERIES_QUEUE, ERROR_HEADER, EVENTS_EXCHANGE, INVALID_QUEUE,
    RETRY_QUEUE,
};
use hookline_proto::{
    AttemptBatch, AttemptRecord, DeadLetter, DeliveryTask, Message, SCHEMA_VERSION,
};
use hookline_tests::faults::env::wait_subscriptions_loaded;
use hookline_tests::faults::probe::{metric_sum, parked_messages, publish_raw, ready_messages};
use hookline_tests::{eventually, Receiver, TestEnv};
use serde_json::json;

/// Waits until `event_id` reached `path`.
async fn delivered(receiver: &Receiver, path: &str, event_id: &str) {
    eventually(
        Duration::from_secs(15),
        &format!("{event_id} at {path}"),
        || async {
            receiver
                .requests(path)
                .iter()
                .any(|r| r.json()["id"] == event_id)
                .then_some(())
        },
    )
    .await;
}

/// Waits until exactly `count` messages are parked, and returns them.
async fn parked(env: &TestEnv, count: usize) -> Vec<(String, String)> {
    let database = env.settings.database.url.expose().to_string();
    let rows = eventually(
        Duration::from_secs(15),
        &format!("{count} parked messages"),
        || async {
            let rows = parked_messages(&database).await;
            (rows.len() >= count).then_some(rows)
        },
    )
    .await;
    assert_eq!(rows.len(), count, "parked more than once: {rows:?}");
    rows
}

#[tokio::test]
async fn poison_events_are_parked_once_with_their_reason_and_fanout_keeps_going() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    env.subscribe("acme", &receiver.url("/p"), &["lead.*"])
        .await;
    wait_subscriptions_loaded(&env.fanout, 1).await;
    let poisons: [&[u8]; 4] = [
        b"\xff\xfe\x00 not json at all",
        b"[1, 2, 3]",
        br#"{"tenant": "acme", "type": "lead.created", "data": "not an object"}"#,
        br#"{"type": "lead.created", "data": {}}"#,
    ];
    for body in poisons {
        publish_raw(env.amqp_url(), EVENTS_EXCHANGE, "lead.created", body, &[]).await;
    }
    let good =
        json!({"id": "evt_after_poison", "tenant": "acme", "type": "lead.created", "data": {}});
    env.publish_amqp("lead.created", good.to_string().as_bytes())
        .await;
    delivered(&receiver, "/p", "evt_after_poison").await;

    eventually(
        Duration::from_secs(10),
        "every poison in the invalid queue",
        || async { (ready_messages(env.amqp_url(), INVALID_QUEUE).await >= 4).then_some(()) },
    )
    .await;
    let connection = hookline_amqp::connect(env.amqp_url(), "poison-reader")
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let mut bodies = Vec::new();
    while let Some(message) = channel
        .basic_get(INVALID_QUEUE.into(), Default::default())
        .await
        .expect("get")
    {
        let reason =
            hookline_amqp::header_str(message.delivery.properties.headers().as_ref(), ERROR_HEADER)
                .unwrap_or_default()
                .to_string();
        assert!(!reason.is_empty(), "parked without a reason");
        bodies.push(message.delivery.data.clone());
    }
    assert_eq!(
        bodies,
        poisons.map(<[u8]>::to_vec),
        "each poison once, as sent"
    );
    let invalid = metric_sum(
        &env.metrics(&env.fanout).await,
        "hookline_fanout_events_total",
        &[("outcome", "invalid")],
    );
    assert_eq!(invalid, 4.0);
    assert_eq!(receiver.all().len(), 1, "only the good event was delivered");
}

#[tokio::test]
async fn poison_delivery_tasks_are_parked_once_with_their_reason_and_the_deliverer_keeps_going() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let sub = env
        .subscribe("acme", &receiver.url("/p"), &["lead.*"])
        .await;
    wait_subscriptions_loaded(&env.fanout, 1).await;
    // A task from a future version, otherwise valid: it must not be sent.
    let future = DeliveryTask {
        schema_version: SCHEMA_VERSION + 98,
        delivery_id: "msg_future".into(),
        tenant: "acme".into(),
        event_id: "evt_future".into(),
        event_type: "lead.created".into(),
        subscription_id: sub["id"].as_str().expect("id").into(),
        url: receiver.url("/poison"),
        body: br#"{"id": "evt_future"}"#.to_vec().into(),
        attempt: 1,
        ..DeliveryTask::default()
    };
    publish_raw(
        env.amqp_url(),
        "",
        DELIVERIES_QUEUE,
        b"\xff\xff\xff garbage",
        &[],
    )
    .await;
    publish_raw(
        env.amqp_url(),
        "",
        DELIVERIES_QUEUE,
        &future.encode_to_vec(),
        &[],
    )
    .await;
    publish_raw(
        env.amqp_url(),
        "",
        RETRY_QUEUE,
        b"{\"json\": \"is not protobuf\"}",
        &[],
    )
    .await;
    env.post_event(
        json!({"id": "evt_after_poison", "tenant": "acme", "type": "lead.created", "data": {}}),
    )
    .await;
    delivered(&receiver, "/p", "evt_after_poison").await;

    // The deliverer parks them in the dead queue with its reason; the api's
    // dead-letter recorder finds no dead letter there and keeps them.
    let rows = parked(&env, 3).await;
    assert!(
        rows.iter().all(|(queue, _)| queue == DEAD_QUEUE),
        "{rows:?}"
    );
    let reasons: Vec<&str> = rows.iter().map(|(_, reason)| reason.as_str()).collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("not a DeliveryTask"))
            .count(),
        2,
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("schema_version 99")),
        "{reasons:?}"
    );
    assert!(
        receiver.requests("/poison").is_empty(),
        "a future task was sent"
    );
    let (_, dead) = env.api_get("/v1/tenants/acme/dead-letters").await;
    assert_eq!(dead["data"].as_array().map(Vec::len), Some(0), "{dead}");
    for queue in [DELIVERIES_QUEUE, RETRY_QUEUE, DEAD_QUEUE] {
        assert_eq!(ready_messages(env.amqp_url(), queue).await, 0, "{queue}");
    }
    let sub_id = sub["id"].as_str().expect("id");
    eventually(
        Duration::from_secs(10),
        "the good attempt recorded",
        || async {
            let (_, body) = env
                .api_get(&format!("/v1/tenants/acme/subscriptions/{sub_id}/attempts"))
                .await;
            (body["data"].as_array().map(Vec::len) == Some(1)).then_some(())
        },
    )
    .await;
    parked(&env, 3).await;
}

#[tokio::test]
async fn poison_attempt_records_and_dead_letters_are_parked_once_and_the_recorders_keep_going() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let sub = env
        .subscribe("acme", &receiver.url("/p"), &["lead.*"])
        .await;
    let sub_id = sub["id"].as_str().expect("id").to_string();
    wait_subscriptions_loaded(&env.fanout, 1).await;
    let record = AttemptRecord {
        schema_version: SCHEMA_VERSION,
        id: "att_future".into(),
        tenant: "acme".into(),
        subscription_id: sub_id.clone(),
        event_id: "evt_future".into(),
        ..AttemptRecord::default()
    };
    let future_batch = AttemptBatch {
        schema_version: SCHEMA_VERSION + 98,
        records: vec![record],
    };
    let taskless = DeadLetter {
        schema_version: SCHEMA_VERSION,
        ..DeadLetter::default()
    };
    let url = env.amqp_url();
    publish_raw(
        url,
        "",
        ATTEMPTS_QUEUE,
        b"\x08\xff\xff\xff\xff\xff\xff",
        &[],
    )
    .await;
    publish_raw(url, "", ATTEMPTS_QUEUE, &future_batch.encode_to_vec(), &[]).await;
    publish_raw(url, "", DEAD_QUEUE, b"not a dead letter", &[]).await;
    publish_raw(url, "", DEAD_QUEUE, &taskless.encode_to_vec(), &[]).await;

    // The attempt recorder goes on: a real delivery reaches the history.
    env.post_event(
        json!({"id": "evt_after_poison", "tenant": "acme", "type": "lead.created", "data": {}}),
    )
    .await;
    delivered(&receiver, "/p", "evt_after_poison").await;
    eventually(
        Duration::from_secs(15),
        "the good attempt recorded",
        || async {
            let (_, body) = env
                .api_get(&format!("/v1/tenants/acme/subscriptions/{sub_id}/attempts"))
                .await;
            let data = body["data"].as_array().cloned().unwrap_or_default();
            (data.len() == 1 && data[0]["event_id"] == "evt_after_poison").then_some(())
        },
    )
    .await;
    // The dead-letter recorder goes on: a real dead letter is listed.
    let dead = DeadLetter {
        schema_version: SCHEMA_VERSION,
        task: Some(DeliveryTask {
            schema_version: SCHEMA_VERSION,
            delivery_id: "msg_dead_direct".into(),
            tenant: "acme".into(),
            event_id: "evt_dead_direct".into(),
            event_type: "lead.created".into(),
            subscription_id: sub_id.clone(),
            url: receiver.url("/p"),
            attempt: 3,
            ..DeliveryTask::default()
        }),
        attempts: 3,
        last_response_status: 500,
        last_error: "boom".into(),
        dead_at_ms: Utc::now().timestamp_millis(),
    };
    publish_raw(url, "", DEAD_QUEUE, &dead.encode_to_vec(), &[]).await;
    eventually(Duration::from_secs(15), "the good dead letter", || async {
        let (_, body) = env.api_get("/v1/tenants/acme/dead-letters").await;
        let data = body["data"].as_array().cloned().unwrap_or_default();
        (data.len() == 1 && data[0]["event_id"] == "evt_dead_direct").then_some(())
    })
    .await;

    let rows = parked(&env, 4).await;
    let count = |queue: &str, needle: &str| {
        rows.iter()
            .filter(|(q, r)| q == queue && r.contains(needle))
            .count()
    };
    assert_eq!(count(ATTEMPTS_QUEUE, "AttemptBatch"), 2, "{rows:?}");
    assert_eq!(count(ATTEMPTS_QUEUE, "schema_version 99"), 1, "{rows:?}");
    assert_eq!(count(DEAD_QUEUE, "not a DeadLetter"), 1, "{rows:?}");
    assert_eq!(count(DEAD_QUEUE, "without its task"), 1, "{rows:?}");
    for queue in [ATTEMPTS_QUEUE, DEAD_QUEUE] {
        assert_eq!(ready_messages(url, queue).await, 0, "{queue}");
    }
    let parked_total = metric_sum(
        &env.metrics(&env.api).await,
        "hookline_api_parked_messages_total",
        &[],
    );
    assert_eq!(parked_total, 4.0);
}
