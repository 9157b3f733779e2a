//! The retry ladder, dead letters, history and replay against the real
//! broker, with the ladder shortened to 1s,2s by configuration.

use std::time::Duration;

use hookline_tests::{eventually, Receiver, Reply, TestEnv};
use serde_json::json;

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_three_requests_with_one_webhook_id_spaced_by_the_ladder()
{
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    receiver.script("/flaky", vec![Reply::status(500), Reply::status(503)]);
    let sub = env
        .subscribe("acme", &receiver.url("/flaky"), &["lead.created"])
        .await;
    env.post_event(json!({"tenant": "acme", "type": "lead.created", "data": {}}))
        .await;

    let requests = eventually(Duration::from_secs(45), "three attempts", || async {
        let r = receiver.requests("/flaky");
        (r.len() >= 3).then_some(r)
    })
    .await;
    // A retry scheduled after the success would still be on the ladder.
    env.wait_nothing_pending(Duration::from_secs(15)).await;
    let requests_after = receiver.requests("/flaky");
    assert_eq!(requests_after.len(), 3, "a success ends the retries");
    let id = requests[0].header("webhook-id").expect("webhook-id");
    assert!(requests.iter().all(|r| r.header("webhook-id") == Some(id)));
    assert!(
        requests[1].at - requests[0].at >= Duration::from_millis(950),
        "first wait is 1s"
    );
    assert!(
        requests[2].at - requests[1].at >= Duration::from_millis(1950),
        "second wait is 2s"
    );

    let sub_id = sub["id"].as_str().expect("id");
    let history = eventually(Duration::from_secs(30), "three history records", || async {
        let (_, body) = env
            .api_get(&format!("/v1/tenants/acme/subscriptions/{sub_id}/attempts"))
            .await;
        let data = body["data"].as_array().cloned().unwrap_or_default();
        (data.len() == 3).then_some(data)
    })
    .await;
    let statuses: Vec<_> = history
        .iter()
        .map(|a| a["response_status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(statuses, vec![200, 503, 500], "newest first");
    assert_eq!(history[0]["status"], "succeeded");
    assert_eq!(history[2]["status"], "failed");
    assert_eq!(history[0]["attempt"], 3);
}

#[tokio::test]
async fn a_receiver_that_always_fails_ends_as_a_dead_letter_that_replays_once_fixed() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    receiver.set_default("/down", Reply::status(500));
    let sub = env
        .subscribe("acme", &receiver.url("/down"), &["lead.created"])
        .await;
    env.post_event(json!({"id": "evt_dead", "tenant": "acme", "type": "lead.created", "data": {}}))
        .await;

    let dead = env.first_dead_letter("acme", Duration::from_secs(60)).await;
    assert_eq!(
        receiver.requests("/down").len(),
        3,
        "1 + len(delays) attempts"
    );
    assert_eq!(dead["event_id"], "evt_dead");
    assert_eq!(dead["subscription_id"], sub["id"]);
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["last_response_status"], 500);

    let sub_id = sub["id"].as_str().expect("id");
    // The dead letter and the attempt records travel on different queues.
    let dead_attempts = eventually(
        Duration::from_secs(30),
        "the dead attempt in history",
        || async {
            let (_, history) = env
                .api_get(&format!(
                    "/v1/tenants/acme/subscriptions/{sub_id}/attempts?status=dead"
                ))
                .await;
            history["data"]
                .as_array()
                .filter(|d| !d.is_empty())
                .cloned()
        },
    )
    .await;
    assert_eq!(dead_attempts.len(), 1);
    assert_eq!(dead_attempts[0]["attempt"], 3);

    receiver.set_default("/down", Reply::status(200));
    assert_eq!(env.replay("acme", &dead).await, 202);
    let requests = eventually(Duration::from_secs(30), "the replay", || async {
        let r = receiver.requests("/down");
        (r.len() >= 4).then_some(r)
    })
    .await;
    assert_eq!(
        requests[3].header("webhook-id"),
        requests[0].header("webhook-id")
    );
    let (status, _) = env
        .api_post("/v1/tenants/acme/dead-letters/dl_unknown/replay", json!({}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_410_gone_disables_the_subscription_without_retrying() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    receiver.set_default("/gone", Reply::status(410));
    let sub = env
        .subscribe("acme", &receiver.url("/gone"), &["lead.created"])
        .await;
    env.post_event(json!({"tenant": "acme", "type": "lead.created", "data": {}}))
        .await;
    let sub_id = sub["id"].as_str().expect("id").to_string();
    eventually(
        Duration::from_secs(15),
        "the subscription disabled",
        || async {
            let (_, body) = env
                .api_get(&format!("/v1/tenants/acme/subscriptions/{sub_id}"))
                .await;
            (body["enabled"] == false).then_some(())
        },
    )
    .await;
    env.wait_nothing_pending(Duration::from_secs(15)).await;
    assert_eq!(receiver.requests("/gone").len(), 1, "no retry after 410");
}

#[tokio::test]
async fn a_task_waiting_on_the_ladder_is_not_sent_after_its_subscription_is_deleted() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    receiver.set_default("/deleted", Reply::status(500));
    let sub = env
        .subscribe("acme", &receiver.url("/deleted"), &["lead.created"])
        .await;
    env.post_event(json!({"tenant": "acme", "type": "lead.created", "data": {}}))
        .await;
    eventually(Duration::from_secs(30), "the first attempt", || async {
        (!receiver.requests("/deleted").is_empty()).then_some(())
    })
    .await;
    let id = sub["id"].as_str().expect("id");
    let response = env
        .http
        .delete(format!("{}/v1/tenants/acme/subscriptions/{id}", env.api))
        .bearer_auth(hookline_tests::env::ADMIN_TOKEN)
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status().as_u16(), 204);
    // The retry comes back from the ladder and is dropped, not sent.
    eventually(Duration::from_secs(15), "the retry dropped", || async {
        let text = env.metrics(&env.deliverer).await;
        let dropped = hookline_tests::faults::probe::metric_sum(
            &text,
            "hookline_deliverer_superseded_tasks_total",
            &[("outcome", "dropped")],
        );
        (dropped >= 1.0).then_some(())
    })
    .await;
    assert_eq!(
        receiver.requests("/deleted").len(),
        1,
        "no delivery starts after the delete"
    );
}
