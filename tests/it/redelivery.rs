//! The broker's delivery limit on quorum queues: a task or event delivered
//! too often without an ack is parked by Hookline itself one delivery
//! before the limit, with its reason, instead of being dropped by the
//! broker into a queue where nothing explains it. A task ends as a real dead
//! letter with a `dead` attempt, and its replay delivers it.

use std::time::Duration;

use hookline_amqp::names::DELIVERIES_QUEUE;
use hookline_config::QueueType;
use hookline_runtime::Shutdown;
use hookline_tests::api_client::wait_ready;
use hookline_tests::faults::services::{spawn_in_process, Service};
use hookline_tests::{eventually, Receiver, TestEnv};
use lapin::options::{BasicGetOptions, BasicRejectOptions};
use lapin::types::AMQPValue;
use serde_json::json;

/// Takes the one message of `queue` and gives it back until the broker
/// counts `returns` deliveries of it, as deliverers crashing on it would.
async fn give_back(url: &str, queue: &str, returns: i64) {
    let connection = hookline_amqp::connect(url, "crashing-consumer")
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let mut given_back = 0;
    while given_back < returns {
        let Some(message) = channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .expect("basic.get")
        else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let count = match message
            .delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-delivery-count").cloned())
        {
            Some(AMQPValue::LongLongInt(n)) => n,
            Some(AMQPValue::LongInt(n)) => i64::from(n),
            _ => 0,
        };
        assert!(
            count < hookline_amqp::DELIVERY_LIMIT,
            "the broker counted {count}"
        );
        message
            .delivery
            .acker
            .reject(BasicRejectOptions { requeue: true })
            .await
            .expect("reject");
        given_back += 1;
    }
}

#[tokio::test]
async fn a_task_given_back_until_the_delivery_limit_ends_as_a_dead_letter_with_history() {
    let env = TestEnv::start_with(|o| {
        o.settings.amqp.queue_type = QueueType::Quorum;
        o.deliverer = false;
    })
    .await;
    let receiver = Receiver::start().await;
    let sub = env
        .subscribe("acme", &receiver.url("/hook"), &["lead.created"])
        .await;
    let id = sub["id"].as_str().expect("id");
    env.post_event(json!({"tenant": "acme", "type": "lead.created", "data": {"n": 1}}))
        .await;
    give_back(
        env.amqp_url(),
        DELIVERIES_QUEUE,
        hookline_amqp::DELIVERY_LIMIT - 1,
    )
    .await;

    let shutdown = Shutdown::new();
    let deliverer = spawn_in_process(Service::Deliverer, &env.settings, &shutdown).await;
    wait_ready(&deliverer, Duration::from_secs(30)).await;
    let dead = env.first_dead_letter("acme", Duration::from_secs(20)).await;
    let error = dead["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("without being acked"), "{dead}");
    let history = eventually(Duration::from_secs(20), "the dead attempt", || async {
        let (_, page) = env
            .api_get(&format!("/v1/tenants/acme/subscriptions/{id}/attempts"))
            .await;
        page["data"].as_array().and_then(|d| d.first().cloned())
    })
    .await;
    assert_eq!(history["status"], "dead", "{history}");
    assert!(receiver.all().is_empty(), "nothing was sent");

    assert_eq!(env.replay("acme", &dead).await, 202);
    eventually(Duration::from_secs(20), "the replay", || async {
        receiver.requests("/hook").into_iter().next()
    })
    .await;
    shutdown.token.cancel();
}
