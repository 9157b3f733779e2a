//! PostgreSQL stops while events flow. Deliveries must not notice (fanout
//! matches from the index it last loaded; deliverers never need the
//! database), the attempt records must wait in their queue and be written
//! when it returns, and the api must say it is not ready meanwhile.

use std::collections::BTreeSet;
use std::time::Duration;

use hookline_config::QueueType;
use hookline_tests::api_client::{wait_not_ready, wait_ready};
use hookline_tests::faults::probe::parked_messages;
use hookline_tests::faults::{assert_same_ids, FaultEnv, Ledger};
use hookline_tests::{eventually, Receiver};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgresql_down_deliveries_continue_and_attempt_records_wait_for_its_return() {
    let env = FaultEnv::start_with(|o| {
        o.settings.amqp.queue_type = QueueType::Classic;
        o.settings.fanout.refresh_interval = Duration::from_secs(1);
    })
    .await;
    let receiver = Receiver::start().await;
    let sub = env
        .subscribe("acme", &receiver.url("/pg"), &["lead.*"])
        .await;
    let sub_id = sub["id"].as_str().expect("id").to_string();
    let post_all = |ids: &BTreeSet<String>| {
        let (env, ids) = (&env, ids.clone());
        async move {
            for id in ids {
                let event = json!({"id": id, "tenant": "acme", "type": "lead.created", "data": {}});
                assert_eq!(env.post_event(&event).await.map(|a| a.0), Some(202), "{id}");
            }
        }
    };
    let delivered = |ids: &BTreeSet<String>| {
        let (receiver, ids) = (&receiver, ids.clone());
        async move {
            eventually(Duration::from_secs(20), "deliveries", || async {
                ids.is_subset(&Ledger::of(&receiver.all()).event_ids("/pg"))
                    .then_some(())
            })
            .await
        }
    };

    let before: BTreeSet<String> = (0..5).map(|i| format!("evt_before_{i}")).collect();
    post_all(&before).await;
    delivered(&before).await;

    env.postgres.stop().await;
    wait_not_ready(&env.api, Duration::from_secs(15)).await;
    let readiness: serde_json::Value = env
        .http
        .get(format!("{}/readyz", env.api))
        .send()
        .await
        .expect("api")
        .json()
        .await
        .expect("readiness body");
    assert_eq!(readiness["checks"]["database"], false, "{readiness}");
    // Fanout turns red once a reload failed: matching now runs on the index
    // it loaded before the outage.
    wait_not_ready(&env.fanout, Duration::from_secs(15)).await;
    let (status, body) = env.api_get("/v1/tenants/acme/subscriptions").await;
    assert_eq!(
        status, 503,
        "a database outage is a 503, never a 500: {body}"
    );

    let during: BTreeSet<String> = (0..10).map(|i| format!("evt_during_{i}")).collect();
    post_all(&during).await;
    delivered(&during).await;
    eventually(
        Duration::from_secs(15),
        "attempt records held in hookline.attempts",
        || async {
            let (ready, unacked) = env.broker.queue_counts("hookline.attempts").await;
            (ready + unacked > 0).then_some(())
        },
    )
    .await;

    env.postgres.resume().await;
    wait_ready(&env.api, Duration::from_secs(30)).await;
    wait_ready(&env.fanout, Duration::from_secs(30)).await;
    let all: BTreeSet<String> = before.union(&during).cloned().collect();
    let history = eventually(
        Duration::from_secs(40),
        "every attempt recorded after the outage",
        || async {
            let history = env.history("acme", &sub_id).await;
            (history.len() >= all.len()).then_some(history)
        },
    )
    .await;
    let recorded: BTreeSet<String> = history
        .iter()
        .map(|a| a["event_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_same_ids("history", &recorded, &all);
    assert_eq!(history.len(), all.len(), "one record per delivery");
    assert!(history.iter().all(|a| a["status"] == "succeeded"));
    assert_eq!(
        env.broker.queue_counts("hookline.attempts").await,
        (0, 0),
        "every record acked once written"
    );
    let database = env.settings.database.url.expose().to_string();
    assert!(
        parked_messages(&database).await.is_empty(),
        "an outage is waited out, not parked"
    );
    let ledger = Ledger::of(&receiver.all());
    assert_same_ids("/pg", &ledger.event_ids("/pg"), &all);
    assert_eq!(ledger.duplicates(), 0);
}
