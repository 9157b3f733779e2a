//! The control exchange, `hookline.control`, as an attacker with write
//! access (or a newer version) would use it: unknown changes are ignored
//! and counted, and "slow" notes cannot make a deliverer consume more than
//! `delivery.max_lanes` lanes.

use std::time::Duration;

use hookline_amqp::names::CONTROL_EXCHANGE;
use hookline_proto::{ChangeKind, Message, SubscriptionChanged};
use hookline_tests::faults::probe::{metric_sum, metrics_text, publish};
use hookline_tests::{eventually, TestEnv};
use serde_json::Value;

async fn broadcast(env: &TestEnv, message: &SubscriptionChanged) {
    publish(
        env.amqp_url(),
        CONTROL_EXCHANGE,
        "",
        &message.encode_to_vec(),
        hookline_amqp::protobuf_properties(),
    )
    .await;
}

#[tokio::test]
async fn slow_notes_for_many_subscriptions_open_at_most_max_lanes_and_unknown_changes_are_ignored()
{
    let env = TestEnv::start_with(|o| o.settings.delivery.max_lanes = 3).await;
    for i in 0..10 {
        let note = SubscriptionChanged::of(ChangeKind::Slow, "acme", &format!("sub_forged_{i}"));
        broadcast(&env, &note).await;
    }
    eventually(Duration::from_secs(20), "7 lanes refused", || async {
        let refused = metric_sum(
            &metrics_text(&env.deliverer).await,
            "hookline_deliverer_lanes_refused_total",
            &[],
        );
        (refused == 7.0).then_some(())
    })
    .await;
    let queues: Vec<Value> = env
        .http
        .get(format!("http://127.0.0.1:15672/api/queues/{}", env.vhost()))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .expect("management API")
        .json()
        .await
        .expect("queues");
    let lanes = queues
        .iter()
        .filter(|q| {
            q["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("hookline.lane."))
        })
        .count();
    assert_eq!(lanes, 3, "{queues:?}");

    let unknown = SubscriptionChanged {
        subscription_id: "sub_x".into(),
        tenant: "acme".into(),
        kind: 42,
        change: "revived".into(),
        ..SubscriptionChanged::default()
    };
    broadcast(&env, &unknown).await;
    for base in [&env.deliverer, &env.fanout] {
        eventually(
            Duration::from_secs(10),
            "the unknown change counted",
            || async {
                let ignored = metric_sum(
                    &metrics_text(base).await,
                    "hookline_control_messages_ignored_total",
                    &[],
                );
                (ignored == 1.0).then_some(())
            },
        )
        .await;
    }
}
