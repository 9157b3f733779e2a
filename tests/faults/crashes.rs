//! `kill -9` in the middle of the work: a deliverer while its requests are
//! on the wire, a fanout while it is working through a burst. What they
//! held unacked goes back to the broker; everything arrives, and each
//! duplicate carries the `webhook-id` of its original.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hookline_config::QueueType;
use hookline_tests::faults::env::wait_subscriptions_loaded;
use hookline_tests::faults::probe::{metric_sum, metrics_text, ready_messages};
use hookline_tests::faults::{assert_same_ids, FaultEnv, Ledger, Service};
use hookline_tests::{eventually, Receiver, Reply};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deliverer_killed_mid_send_has_every_task_redelivered_with_the_same_webhook_id() {
    const EVENTS: usize = 10;
    let env = FaultEnv::start_with(|o| {
        o.settings.amqp.queue_type = QueueType::Classic;
        o.services = vec![Service::Api, Service::Ingest, Service::Fanout];
    })
    .await;
    let receiver = Receiver::start().await;
    // The first sends hang: the deliverer is mid-send when it dies.
    let hang = Reply {
        status: 200,
        delay: Duration::from_secs(120),
        headers: Vec::new(),
    };
    receiver.script("/slow", vec![hang; EVENTS]);
    let sub = env
        .subscribe("acme", &receiver.url("/slow"), &["lead.*"])
        .await;
    let mut deliverer = env.spawn_process(Service::Deliverer, &[]);
    deliverer.wait_ready(Duration::from_secs(30)).await;

    let ids: BTreeSet<String> = (0..EVENTS).map(|i| format!("evt_kill_{i}")).collect();
    for id in &ids {
        let event = json!({"id": id, "tenant": "acme", "type": "lead.created", "data": {}});
        assert_eq!(env.post_event(&event).await.map(|a| a.0), Some(202));
    }
    eventually(
        Duration::from_secs(15),
        "every send on the wire",
        || async { (receiver.requests("/slow").len() == EVENTS).then_some(()) },
    )
    .await;
    deliverer.kill9();

    let replacement = env.spawn_process(Service::Deliverer, &[]);
    replacement.wait_ready(Duration::from_secs(30)).await;
    let sub_id = sub["id"].as_str().expect("id");
    let history = eventually(
        Duration::from_secs(30),
        "a recorded success per event",
        || async {
            let history = env.history("acme", sub_id).await;
            (history.len() >= EVENTS).then_some(history)
        },
    )
    .await;
    let ledger = Ledger::of(&receiver.all());
    assert_same_ids("/slow", &ledger.event_ids("/slow"), &ids);
    for id in &ids {
        assert_eq!(
            ledger.copies("/slow", id),
            2,
            "{id}: the killed send and its redelivery"
        );
    }
    assert_eq!(ledger.duplicates(), EVENTS);
    ledger.assert_one_webhook_id_per_delivery();
    // The killed sends never finished, so they left no record: one
    // success per event, as attempt 1 (a redelivery is not a retry).
    assert_eq!(history.len(), EVENTS, "{history:?}");
    assert!(history
        .iter()
        .all(|a| a["status"] == "succeeded" && a["attempt"] == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fanout_killed_mid_batch_loses_no_delivery_and_its_duplicates_share_their_webhook_id() {
    const BATCHES: usize = 3;
    const PER_BATCH: usize = 1000;
    const PREFETCH: usize = 64;
    let env = FaultEnv::start_with(|o| {
        o.settings.amqp.queue_type = QueueType::Classic;
        o.services = vec![Service::Api, Service::Ingest, Service::Deliverer];
    })
    .await;
    let receiver = Receiver::start().await;
    for path in ["/a", "/b"] {
        env.subscribe("acme", &receiver.url(path), &["lead.*"])
            .await;
    }
    // The burst waits in hookline.events.fanout before any fanout runs.
    let mut ids = BTreeSet::new();
    for batch in 0..BATCHES {
        let events: Vec<_> = (0..PER_BATCH)
            .map(|i| json!({"id": format!("evt_{batch}_{i}"), "tenant": "acme", "type": "lead.created", "data": {"i": i}}))
            .collect();
        let response = env
            .http
            .post(format!("{}/v1/events/batch", env.ingest))
            .json(&json!({ "events": events }))
            .send()
            .await
            .expect("ingest");
        let body: serde_json::Value = response.json().await.expect("results");
        for result in body["results"].as_array().expect("results") {
            ids.insert(result["id"].as_str().expect("accepted").to_string());
        }
    }
    assert_eq!(ids.len(), BATCHES * PER_BATCH);

    let prefetch = PREFETCH.to_string();
    let extra = [("HOOKLINE__FANOUT__PREFETCH", prefetch.as_str())];
    let mut fanout = env.spawn_process(Service::Fanout, &extra);
    // Kill it as soon as it is well into the burst; polling tightly, since
    // the whole burst takes it only a second or two.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tasks = metric_sum(
            &metrics_text(&fanout.base).await,
            "hookline_fanout_tasks_total",
            &[],
        );
        if tasks >= 400.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the fanout never got going");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    fanout.kill9();
    let url = env.settings.amqp.url.expose().to_string();
    let left = ready_messages(&url, "hookline.events.fanout").await;
    assert!(
        left > 0,
        "the fanout finished the burst before it was killed"
    );

    let replacement = env.spawn_process(Service::Fanout, &extra);
    wait_subscriptions_loaded(&replacement.base, 2).await;
    let ledger = eventually(
        Duration::from_secs(60),
        "every event at both subscriptions",
        || async {
            let ledger = Ledger::of(&receiver.all());
            (ledger.event_ids("/a").len() == ids.len() && ledger.event_ids("/b").len() == ids.len())
                .then_some(ledger)
        },
    )
    .await;
    assert_same_ids("/a", &ledger.event_ids("/a"), &ids);
    assert_same_ids("/b", &ledger.event_ids("/b"), &ids);
    ledger.assert_one_webhook_id_per_delivery();
    // Only events unacked at the kill can be fanned out twice: at most the
    // prefetch window, once per subscription.
    let duplicates = ledger.duplicates();
    eprintln!("killed with {left} events left; {duplicates} duplicate deliveries");
    assert!(
        duplicates <= 2 * PREFETCH,
        "{duplicates} duplicates from a window of {PREFETCH}"
    );
}
