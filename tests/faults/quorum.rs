//! With quorum queues, a task waiting out a retry delay sits in a wait
//! queue with a TTL and an at-least-once dead-letter route back to the
//! deliverers; restarting the broker meanwhile must lose none of them.
//! (Quorum queues live on this test's own node: creating and deleting them
//! per test on the shared broker has crashed its quorum storage before.)

use std::collections::BTreeSet;
use std::time::Duration;

use hookline_config::QueueType;
use hookline_tests::faults::probe::ready_messages;
use hookline_tests::faults::{assert_same_ids, FaultEnv, Ledger};
use hookline_tests::{eventually, Receiver, Reply};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_waiting_in_quorum_retry_queues_survive_a_broker_restart() {
    const EVENTS: usize = 12;
    let env = FaultEnv::start_with(|o| {
        o.settings.amqp.queue_type = QueueType::Quorum;
        o.settings.delivery.retry_delays = vec![Duration::from_secs(8)];
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.script("/q", vec![Reply::status(500); EVENTS]);
    let sub = env
        .subscribe("acme", &receiver.url("/q"), &["lead.*"])
        .await;
    let ids: BTreeSet<String> = (0..EVENTS).map(|i| format!("evt_q_{i}")).collect();
    for id in &ids {
        let event = json!({"id": id, "tenant": "acme", "type": "lead.created", "data": {}});
        assert_eq!(env.post_event(&event).await.map(|a| a.0), Some(202));
    }
    eventually(Duration::from_secs(15), "every first attempt", || async {
        (receiver.requests("/q").len() == EVENTS).then_some(())
    })
    .await;
    let url = env.settings.amqp.url.expose().to_string();
    eventually(
        Duration::from_secs(5),
        "every task waiting on the 8s rung",
        || async {
            (ready_messages(&url, "hookline.wait.8s").await as usize == EVENTS).then_some(())
        },
    )
    .await;

    env.broker.stop_app().await;
    env.broker.start_app().await;

    let ledger = eventually(
        Duration::from_secs(40),
        "every task's second attempt",
        || async {
            let ledger = Ledger::of(&receiver.all());
            ids.iter()
                .all(|id| ledger.copies("/q", id) >= 2)
                .then_some(ledger)
        },
    )
    .await;
    assert_same_ids("/q", &ledger.event_ids("/q"), &ids);
    for id in &ids {
        assert_eq!(ledger.copies("/q", id), 2, "{id}: one failure, one retry");
    }
    ledger.assert_one_webhook_id_per_delivery();

    let sub_id = sub["id"].as_str().expect("id");
    let history = eventually(
        Duration::from_secs(20),
        "both attempts of every event in the history",
        || async {
            let history = env.history("acme", sub_id).await;
            (history.len() >= 2 * EVENTS).then_some(history)
        },
    )
    .await;
    let retried: BTreeSet<String> = history
        .iter()
        .filter(|a| a["attempt"] == 2 && a["status"] == "succeeded")
        .map(|a| a["event_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_same_ids("succeeded second attempts", &retried, &ids);
}
