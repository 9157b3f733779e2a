//! Per-endpoint fairness: a slow endpoint's tasks move into its own lane
//! (`hookline.lane.<subscription id>`) and wait there, while a fast endpoint
//! subscribed to the same events gets every delivery at once.

use std::collections::HashSet;
use std::time::Duration;

use hookline_config::QueueType;
use hookline_tests::{eventually, Receiver, Reply, TestEnv};
use serde_json::json;

/// The sum of every series of `name` in `base`'s `/metrics`.
async fn metric(env: &TestEnv, base: &str, name: &str) -> f64 {
    crate::observability::value(&crate::observability::scrape(env, base).await, name, &[])
}

fn ids(requests: &[hookline_tests::Captured]) -> Vec<String> {
    requests
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_slow_endpoint_waits_in_its_own_lane_while_the_fast_one_gets_everything_at_once() {
    slow_endpoint_in_its_lane(QueueType::Classic).await;
}

#[tokio::test]
async fn a_slow_lane_works_the_same_on_quorum_queues() {
    slow_endpoint_in_its_lane(QueueType::Quorum).await;
}

async fn slow_endpoint_in_its_lane(queue_type: QueueType) {
    const FIRST: usize = 30;
    const SECOND: usize = 10;
    let env = TestEnv::start_with(|o| {
        o.settings.amqp.queue_type = queue_type;
        o.settings.delivery.max_inflight_per_subscription = 2;
        o.settings.delivery.concurrency = 16;
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_default(
        "/slow",
        Reply {
            delay: Duration::from_millis(600),
            ..Reply::status(200)
        },
    );
    env.subscribe("acme", &receiver.url("/fast"), &["lead.created"])
        .await;
    env.subscribe("acme", &receiver.url("/slow"), &["lead.created"])
        .await;
    let mut sent = Vec::new();
    for i in 0..FIRST {
        let id = format!("evt_fair_{i:03}");
        env.post_event(
            json!({"tenant": "acme", "type": "lead.created", "id": id, "data": {"i": i}}),
        )
        .await;
        sent.push(id);
    }

    // The fast endpoint is not held up: it has every event while the slow
    // one (two at a time, 0.6 s each) has taken only a few.
    eventually(Duration::from_secs(10), "every fast delivery", || async {
        (receiver.requests("/fast").len() >= FIRST).then_some(())
    })
    .await;
    let slow_so_far = receiver.requests("/slow").len();
    assert!(
        slow_so_far < FIRST / 2,
        "the slow endpoint cannot have served {slow_so_far} of {FIRST} yet"
    );
    // Tasks that waited their turn too long moved into the lane (after the
    // line's short wait), without counting an attempt.
    eventually(
        Duration::from_secs(10),
        "tasks moved into the lane",
        || async {
            let deferred = metric(&env, &env.deliverer, "hookline_deliveries_deferred_total").await;
            (deferred >= 1.0).then_some(())
        },
    )
    .await;

    // Fanout has heard that the subscription is slow: the next tasks go
    // straight into its lane.
    for i in FIRST..FIRST + SECOND {
        let id = format!("evt_fair_{i:03}");
        env.post_event(
            json!({"tenant": "acme", "type": "lead.created", "id": id, "data": {"i": i}}),
        )
        .await;
        sent.push(id);
    }
    eventually(
        Duration::from_secs(10),
        "tasks routed into the lane",
        || async {
            let routed = metric(&env, &env.fanout, "hookline_fanout_lane_tasks_total").await;
            (routed >= SECOND as f64).then_some(())
        },
    )
    .await;

    // Nothing is lost or doubled on the way through the lane.
    let slow = eventually(Duration::from_secs(60), "every slow delivery", || async {
        let requests = receiver.requests("/slow");
        (requests.len() >= FIRST + SECOND).then_some(requests)
    })
    .await;
    env.wait_nothing_pending(Duration::from_secs(30)).await;
    let slow_ids = ids(&receiver.requests("/slow"));
    assert_eq!(
        slow_ids.len(),
        FIRST + SECOND,
        "no duplicates: {slow_ids:?}"
    );
    let distinct: HashSet<_> = slow_ids.iter().cloned().collect();
    let expected: HashSet<_> = sent.iter().cloned().collect();
    assert_eq!(distinct, expected);
    assert!(slow.iter().all(|r| r.header("webhook-signature").is_some()));
    let fast_ids = ids(&receiver.requests("/fast"));
    assert_eq!(fast_ids.len(), FIRST + SECOND, "fast: {fast_ids:?}");
    // Every attempt was a first attempt: moving into the lane is not a retry.
    let attempts = metric(&env, &env.deliverer, "hookline_retries_scheduled_total").await;
    assert_eq!(attempts, 0.0);
}
