//! Events in, signed deliveries out: the healthy path.

use std::time::Duration;

use hookline_tests::signature::standard_signature_valid;
use hookline_tests::{eventually, Receiver, TestEnv};
use serde_json::json;

#[tokio::test]
async fn an_event_posted_to_ingest_reaches_its_subscription_signed() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let sub = env
        .subscribe("acme", &receiver.url("/crm"), &["lead.created"])
        .await;
    let (status, accepted) = env
        .post_event(json!({"tenant": "acme", "type": "lead.created", "data": {"name": "Ada"}}))
        .await;
    assert_eq!(status, 202, "{accepted}");
    let event_id = accepted["id"].as_str().expect("id").to_string();

    let request = eventually(Duration::from_secs(40), "the delivery", || async {
        receiver.requests("/crm").into_iter().next()
    })
    .await;
    let body = request.json();
    assert_eq!(body["type"], "lead.created");
    assert_eq!(body["tenant"], "acme");
    assert_eq!(body["id"], event_id.as_str());
    assert_eq!(body["data"]["name"], "Ada");
    assert!(body["timestamp"].as_str().is_some());
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(request
        .header("user-agent")
        .unwrap_or_default()
        .starts_with("Hookline/"));
    assert!(request
        .header("webhook-id")
        .unwrap_or_default()
        .starts_with("msg_"));
    let secret = sub["secret"].as_str().expect("secret");
    assert!(
        standard_signature_valid(&request, secret),
        "signature must verify: {:?}",
        request.headers
    );
    assert!(!standard_signature_valid(
        &request,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    ));
}

#[tokio::test]
async fn an_amqp_event_reaches_every_matching_subscription_once_and_no_other() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    env.subscribe("acme", &receiver.url("/exact"), &["lead.created"])
        .await;
    env.subscribe("acme", &receiver.url("/prefix"), &["lead.*"])
        .await;
    env.subscribe("acme", &receiver.url("/all"), &["*", "lead.created"])
        .await;
    env.subscribe("acme", &receiver.url("/other-type"), &["appointment.*"])
        .await;
    env.subscribe("globex", &receiver.url("/other-tenant"), &["*"])
        .await;

    let event =
        json!({"id": "evt_amqp_1", "tenant": "acme", "type": "lead.created", "data": {"n": 1}});
    env.publish_amqp("lead.created", event.to_string().as_bytes())
        .await;

    eventually(Duration::from_secs(40), "three deliveries", || async {
        (receiver.all().len() >= 3).then_some(())
    })
    .await;
    // A duplicate or a stray delivery would still be queued or on the wire.
    env.wait_nothing_pending(Duration::from_secs(15)).await;
    for path in ["/exact", "/prefix", "/all"] {
        let requests = receiver.requests(path);
        assert_eq!(requests.len(), 1, "{path} gets exactly one delivery");
        assert_eq!(requests[0].json()["id"], "evt_amqp_1");
    }
    assert!(receiver.requests("/other-type").is_empty());
    assert!(receiver.requests("/other-tenant").is_empty());
    let ids: std::collections::HashSet<_> = receiver
        .all()
        .iter()
        .map(|r| r.header("webhook-id").unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids.len(), 3, "each subscription has its own webhook-id");
}

#[tokio::test]
async fn an_invalid_amqp_event_is_parked_with_its_reason() {
    let env = TestEnv::start().await;
    env.publish_amqp(
        "lead.created",
        br#"{"tenant": "acme", "type": "Not Valid", "data": {}}"#,
    )
    .await;
    let connection = hookline_amqp::connect(env.amqp_url(), "test-reader")
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let message = eventually(Duration::from_secs(30), "the invalid message", || {
        let channel = channel.clone();
        async move {
            channel
                .basic_get(
                    hookline_amqp::names::INVALID_QUEUE.into(),
                    Default::default(),
                )
                .await
                .ok()
                .flatten()
        }
    })
    .await;
    let reason = hookline_amqp::header_str(
        message.delivery.properties.headers().as_ref(),
        "x-hookline-error",
    )
    .expect("reason header")
    .to_string();
    assert!(reason.contains("invalid_type"), "{reason}");
    assert!(String::from_utf8_lossy(&message.delivery.data).contains("Not Valid"));
}

#[tokio::test]
async fn a_disabled_subscription_receives_nothing_and_a_change_applies_within_a_second() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let sub = env
        .subscribe("acme", &receiver.url("/s"), &["lead.created"])
        .await;
    // An enabled subscription to the same events proves that the event was
    // fanned out: without it, "nothing arrived" would hold for a dead pipeline.
    env.subscribe("acme", &receiver.url("/control"), &["lead.created"])
        .await;
    let id = sub["id"].as_str().expect("id");
    let response = env
        .http
        .patch(format!("{}/v1/tenants/acme/subscriptions/{id}", env.api))
        .bearer_auth(hookline_tests::env::ADMIN_TOKEN)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status().as_u16(), 200);
    eventually(
        Duration::from_secs(1),
        "fanout to drop the disabled subscription within the contract's second",
        || async {
            let loaded = hookline_tests::faults::probe::metric_sum(
                &env.metrics(&env.fanout).await,
                "hookline_fanout_subscriptions_loaded",
                &[],
            );
            (loaded == 1.0).then_some(())
        },
    )
    .await;
    env.post_event(json!({"tenant": "acme", "type": "lead.created", "data": {}}))
        .await;
    eventually(Duration::from_secs(10), "the control delivery", || async {
        receiver.requests("/control").into_iter().next()
    })
    .await;
    assert!(
        receiver.requests("/s").is_empty(),
        "a disabled subscription receives nothing"
    );
}
